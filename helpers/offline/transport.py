"""The transport side of a request: its body (capped in size, bounded in time), the worker thread that answers
it, and the early hang-up, shared by every route of :mod:`helpers.offline.app`."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio
from starlette.requests import Request

from helpers.offline.fair import Ticket
from helpers.offline.fetch import Cancelled
from helpers.offline.schema import ApiError

__all__ = ["abort", "read_body", "until_disconnect"]

T = TypeVar("T")


async def read_body(request: Request, state: Any) -> bytes:
    """The request body, counted against the cap as it arrives and bounded in time between pieces."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > state.max_body_bytes:   # h11 has checked it is digits
        raise ApiError(413, f"Request body too large: {declared} bytes; the offline backend accepts at most "
                            f"{state.max_body_bytes} bytes. Send fewer or smaller images (downscale them, or use "
                            "URLs).", code="request_too_large")
    pieces, total = [], 0
    while True:
        try:
            with anyio.fail_after(state.read_timeout):            # no extra task per piece, unlike wait_for
                message = await request.receive()
        except TimeoutError:
            raise ApiError(400, "The request body was incomplete: fewer bytes arrived than Content-Length or the "
                                "chunked framing announced before the connection stalled.", code="incomplete_body",
                           close=True) from None
        if message["type"] == "http.disconnect":
            raise Cancelled()
        total += len(message.get("body", b""))
        if total > state.max_body_bytes:
            raise ApiError(413, f"Request body too large; the offline backend accepts at most "
                                f"{state.max_body_bytes} bytes.", code="request_too_large")
        pieces.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(pieces)


async def until_disconnect(request: Request, work: Callable[[Callable[[], bool]], T],
                           ticket: Ticket | None = None) -> T:
    """Run ``work(cancelled)`` in a worker thread; if the client disconnects first, tell it to stop (it checks
    ``cancelled()`` between steps), stop waiting for it, and raise :class:`Cancelled`.

    With a scheduler ``ticket`` (a classroom server, :mod:`helpers.offline.fair`) the request first waits for
    its turn on the event loop (holding no thread), and each ``cancelled()`` check is also where it hands its
    slot to another learner who is waiting."""
    gone = threading.Event()
    result: list[T] = []
    failed: list[Exception] = []
    started: list[bool] = []

    def check() -> bool:
        if ticket is not None and not gone.is_set():
            ticket.checkpoint()
        return gone.is_set()

    def run() -> T:
        started.append(True)
        try:
            return work(check)
        finally:
            if ticket is not None:
                ticket.release()

    async def watch(scope: anyio.CancelScope) -> None:
        while (await request.receive())["type"] != "http.disconnect":
            pass
        gone.set()
        if ticket is not None:
            ticket.abandon()
        scope.cancel()

    async with anyio.create_task_group() as group:
        group.start_soon(watch, group.cancel_scope)
        try:
            if ticket is not None:
                await ticket.acquire()
            result.append(await anyio.to_thread.run_sync(run, abandon_on_cancel=True))
        except Exception as err:  # noqa: BLE001 - re-raised below, outside the task group
            failed.append(err)
        group.cancel_scope.cancel()
    if ticket is not None and not started:
        ticket.release()          # it never reached a worker thread (which releases it when done)
    if gone.is_set() or not (result or failed):
        raise Cancelled()
    if failed:
        raise failed[0]
    return result[0]


async def abort(request: Request) -> None:
    """Close the connection without an answer (the ``timeout`` fault's end)."""
    close = request.scope.get("extensions", {}).get("offline.abort")
    if close is not None:
        close()
        await asyncio.sleep(0)                 # let the server notice before this handler returns
    raise Cancelled()
