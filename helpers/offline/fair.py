"""Fair scheduling of the offline backend's CPU-bound work (image decoding, OCR, analysis) between learners.

A classroom server (``python -m helpers.offline --classroom``) is shared by a whole room on a few cores. Without
a scheduler every request gets its own worker thread at once, so one learner who sends a hundred images makes
everyone else's answer wait behind (or compete with) all of them. :class:`FairScheduler` gives out ``workers``
slots (default: the number of cores), at most ``per_learner`` of them to one learner at a time, in round-robin
order between the learners who are waiting. A request that holds a slot offers it back between its expensive
steps (each download, decode and analysis: the backend's ``cancelled`` checks), so a 100-image request is served
one image per turn while others are waiting, and runs at full speed when nobody is.

Each learner has a bounded queue: a request beyond ``max_queued`` waiting ones is refused at once
(:class:`QueueFull`, a 429 with ``Retry-After``); another learner's request is never refused or dropped because
of it.

>>> scheduler = FairScheduler(workers=1)
>>> ticket = scheduler.admit("ann")
>>> ticket.run_now(lambda check: check() or "done")          # acquire, run, release (threads: see acquire())
'done'
>>> scheduler.snapshot()
{'free': 1, 'waiting': {}, 'running': {}}
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

__all__ = ["FairScheduler", "QueueFull", "Ticket"]

T = TypeVar("T")
DEFAULT_MAX_QUEUED = 8          # requests one learner may have waiting (beyond the ones running): then 429


class QueueFull(Exception):
    """One learner already has ``max_queued`` requests waiting; ``retry_after`` is an estimate in seconds."""

    def __init__(self, learner: str, queued: int, retry_after: int) -> None:
        super().__init__(f"learner {learner!r} has {queued} requests waiting")
        self.learner, self.queued, self.retry_after = learner, queued, retry_after


@dataclass(eq=False)
class _Waiter:
    """One wait for a slot: from the event loop (a future) or from a worker thread (an event)."""

    ticket: Ticket
    loop: asyncio.AbstractEventLoop | None = None
    future: asyncio.Future[None] | None = None
    event: threading.Event = field(default_factory=threading.Event)

    def wake(self) -> None:
        if self.future is not None and self.loop is not None:
            future = self.future
            self.loop.call_soon_threadsafe(lambda: future.done() or future.set_result(None))
        self.event.set()


class Ticket:
    """One admitted request of one learner: :meth:`acquire` a slot, :meth:`checkpoint` between steps,
    :meth:`release` at the end (idempotent)."""

    def __init__(self, scheduler: FairScheduler, learner: str) -> None:
        self.scheduler, self.learner = scheduler, learner
        self.holding = False          # has a slot now (guarded by the scheduler's lock)
        self.finished = False
        self._waiter: _Waiter | None = None

    async def acquire(self) -> None:
        """Wait (on the event loop, holding no thread) until this request's turn comes."""
        loop = asyncio.get_running_loop()
        waiter = _Waiter(self, loop, loop.create_future())
        self.scheduler._enqueue(waiter, front=False)
        try:
            await waiter.future  # type: ignore[misc]
        except BaseException:           # cancelled (the client went away): leave the queue, or give the slot back
            self.release()
            raise

    def checkpoint(self) -> None:
        """Between two expensive steps, in the worker thread: if another learner is waiting for a slot, hand it
        over and wait for this request's next turn (it keeps its place at the head of its learner's queue)."""
        waiter = self.scheduler._yield(self)
        if waiter is not None:
            waiter.event.wait()

    def abandon(self) -> None:
        """The client went away: stop waiting in :meth:`checkpoint` (the work then sees it is cancelled)."""
        self.scheduler._abandon(self)

    def release(self) -> None:
        """The request is done (or gone): free its slot and its place in the learner's queue."""
        self.scheduler._release(self)

    def run_now(self, work: Callable[[Callable[[], bool]], T]) -> T:
        """Wait for a slot in this thread, run ``work(check)``, release (for scripts and tests)."""
        waiter = _Waiter(self)
        self.scheduler._enqueue(waiter, front=False)
        waiter.event.wait()
        try:
            return work(lambda: self.checkpoint() or False)
        finally:
            self.release()


class FairScheduler:
    """Round-robin slots for CPU-bound work, per learner (see the module docstring).

    ``workers`` slots in all (default: the number of cores); at most ``per_learner`` held by one learner; at
    most ``max_queued`` requests of one learner waiting for their first slot, beyond which :meth:`admit` raises
    :class:`QueueFull`.
    """

    def __init__(self, workers: int | None = None, *, per_learner: int = 1,
                 max_queued: int = DEFAULT_MAX_QUEUED) -> None:
        if workers is not None and workers < 1 or per_learner < 1 or max_queued < 0:
            raise ValueError("workers and per_learner must be at least 1, max_queued at least 0")
        self.workers = workers or os.cpu_count() or 1
        self.per_learner, self.max_queued = per_learner, max_queued
        self._lock = threading.Lock()
        self._free = self.workers
        self._queues: dict[str, deque[_Waiter]] = {}
        self._ring: deque[str] = deque()            # learners with someone waiting, in the order of their turns
        self._running: Counter[str] = Counter()
        self._admitted: Counter[str] = Counter()
        self._turn_seconds = 0.5                    # running mean of how long a slot is held (for Retry-After)
        self._granted_at: dict[int, float] = {}

    def admit(self, learner: str) -> Ticket:
        """A ticket for one request of ``learner``, or :class:`QueueFull` if that learner's queue is full."""
        with self._lock:
            queued = self._admitted[learner] - self._running[learner]
            if queued >= self.max_queued:
                waiting_learners = max(1, len(self._ring))
                estimate = self._turn_seconds * (queued + 1) * waiting_learners / self.workers
                raise QueueFull(learner, queued, max(1, min(60, math.ceil(estimate))))
            self._admitted[learner] += 1
            return Ticket(self, learner)

    def snapshot(self) -> dict[str, object]:
        """Free slots, waiting and running requests per learner (for logs and tests)."""
        with self._lock:
            return {"free": self._free, "waiting": {k: len(q) for k, q in self._queues.items() if q},
                    "running": {k: n for k, n in self._running.items() if n}}

    # --- internals, all under the lock ------------------------------------------------------------------------

    def _enqueue(self, waiter: _Waiter, *, front: bool) -> None:
        with self._lock:
            ticket = waiter.ticket
            if ticket.finished:
                waiter.wake()
                return
            ticket._waiter = waiter
            queue = self._queues.setdefault(ticket.learner, deque())
            queue.appendleft(waiter) if front else queue.append(waiter)
            if ticket.learner not in self._ring:
                self._ring.append(ticket.learner)
            self._dispatch()

    def _dispatch(self) -> None:
        """Give free slots to waiting learners, one at a time, in ring order."""
        skipped: list[str] = []
        while self._free > 0 and self._ring:
            learner = self._ring.popleft()
            queue = self._queues.get(learner)
            if not queue:
                continue
            if self._running[learner] >= self.per_learner:
                skipped.append(learner)          # keeps its place for the next free slot
                continue
            waiter = queue.popleft()
            self._free -= 1
            self._running[learner] += 1
            waiter.ticket.holding = True
            waiter.ticket._waiter = None
            self._granted_at[id(waiter.ticket)] = _now()
            if queue:
                self._ring.append(learner)
            waiter.wake()
        self._ring.extendleft(reversed(skipped))

    def _give_back(self, ticket: Ticket) -> None:
        ticket.holding = False
        self._free += 1
        self._running[ticket.learner] -= 1
        started = self._granted_at.pop(id(ticket), None)
        if started is not None:
            self._turn_seconds = 0.8 * self._turn_seconds + 0.2 * (_now() - started)

    def _yield(self, ticket: Ticket) -> _Waiter | None:
        """Hand the slot over if another learner could use it; the caller then waits on the waiter returned."""
        with self._lock:
            if not ticket.holding or not any(
                    learner != ticket.learner and self._running[learner] < self.per_learner
                    for learner in self._ring):
                return None
            self._give_back(ticket)
            waiter = _Waiter(ticket)
            ticket._waiter = waiter
            self._queues.setdefault(ticket.learner, deque()).appendleft(waiter)
            if ticket.learner not in self._ring:
                self._ring.append(ticket.learner)
            self._dispatch()
            return waiter

    def _abandon(self, ticket: Ticket) -> None:
        with self._lock:
            waiter = ticket._waiter
            if waiter is not None and waiter.future is None:      # a worker thread waiting in checkpoint()
                self._forget(waiter)
                waiter.event.set()

    def _forget(self, waiter: _Waiter) -> None:
        queue = self._queues.get(waiter.ticket.learner)
        if queue is not None and waiter in queue:
            queue.remove(waiter)
        waiter.ticket._waiter = None

    def _release(self, ticket: Ticket) -> None:
        with self._lock:
            if ticket.finished:
                return
            ticket.finished = True
            if ticket._waiter is not None:
                self._forget(ticket._waiter)
            if ticket.holding:
                self._give_back(ticket)
            self._admitted[ticket.learner] -= 1
            if self._admitted[ticket.learner] <= 0:
                del self._admitted[ticket.learner]
                self._queues.pop(ticket.learner, None)
            self._dispatch()


def _now() -> float:
    return time.monotonic()
