"""The offline backend shared by a room: learners' keys, who is asking, and the lines learners put in ``.env``.

``python -m helpers.offline --classroom --host 0.0.0.0`` serves a whole class from the teacher's computer (see
docs/TEACHING.md). With ``--roster FILE`` or ``--learners N`` every learner has their own key (:func:`load_roster`,
:func:`generate_keys`): the key is the identity, and it cannot be borrowed by naming someone else. Without them
the room shares one token ("trusting the room"): every API request must then carry the class's access token as its
key (``Authorization:
Bearer TOKEN``, or Azure's ``api-key: TOKEN``), optionally followed by ``.`` and a learner name
(``TOKEN.ann``): the name is how the fair scheduler (below) tells learners apart. Without a name a learner is
known by the ``X-Learner`` header, else by the client's IP address (so learners on one JupyterHub, who all come
from the hub's address, should add their names).

The token is kept only as its SHA-256 digest and compared in constant time; it is never logged, echoed in an
error or shown in a repr. A missing or wrong key is OpenAI's 401 ``invalid_api_key``.

>>> room = Classroom("s3cret-token")
>>> room
Classroom(token=****)
>>> room.learner_of("s3cret-token.ann", {}, "10.0.0.7"), room.learner_of("s3cret-token", {}, "10.0.0.7")
('ann', 'ip:10.0.0.7')
>>> room.learner_of("wrong", {}, "10.0.0.7") is None
True

Fair scheduling of the offline backend's CPU-bound work (image decoding, OCR, analysis) between learners.

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
import contextlib
import hashlib
import hmac
import math
import os
import re
import secrets
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from helpers.offline.protocol import ApiError

# --- fair ------------------------------------------------------------------------------------------------

__all__ = ["admit", "Classroom", "env_lines", "FairScheduler", "generate_keys", "lan_addresses", "load_roster",
           "new_learner_key", "new_token", "QueueFull", "Ticket"]

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
            self.loop.call_soon_threadsafe(lambda: None if future.done() else future.set_result(None))
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

    def _checked(self) -> bool:
        """:meth:`checkpoint` as the work's ``cancelled`` check: it never cancels by itself."""
        self.checkpoint()
        return False

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
            return work(self._checked)
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


_NAME = re.compile(r"[^A-Za-z0-9_.@+-]")
MIN_TOKEN_LENGTH = 12

_MISSING = ("You didn't provide an API key. This is a classroom server: put the access token your teacher gave you "
            "in .env as OPENAI_API_KEY=TOKEN.YOUR-NAME (with VISION_PROVIDER=compatible and OPENAI_BASE_URL set to "
            "the address your teacher gave), then restart the kernel.")
_WRONG = ("Incorrect API key provided. This classroom server accepts only the access token your teacher gave you, "
          "optionally followed by a dot and your name (OPENAI_API_KEY=TOKEN.YOUR-NAME in .env). Copy the token "
          "again, then restart the kernel.")
_MISSING_OWN = ("You didn't provide an API key. This is a classroom server: put the key your teacher gave you (your "
                "own) in .env as OPENAI_API_KEY=YOUR-KEY (with VISION_PROVIDER=compatible and OPENAI_BASE_URL set "
                "to the address your teacher gave), then restart the kernel.")
_WRONG_OWN = ("Incorrect API key provided. This classroom server gives each learner their own key; this one is not "
              "one of them (or it was revoked). Copy your key again into .env as OPENAI_API_KEY=YOUR-KEY (nothing "
              "after it), then restart the kernel; if it still fails, ask your teacher for a new key.")


def new_token() -> str:
    """A fresh access token for a class: ``class-`` and 22 random URL-safe characters (132 bits).

    >>> len(new_token()), new_token().startswith("class-")
    (28, True)
    """
    return "class-" + secrets.token_urlsafe(16)[:22]


def _clean_name(raw: str) -> str:
    return _NAME.sub("_", raw.strip())[:40]


class Classroom:
    """Checks a request's key and names the learner behind it, in one of two modes.

    - **One key per learner** (``learners``: the SHA-256 digest of each learner's key → their name, see
      :func:`load_roster` and :func:`generate_keys`): the key *is* the identity; fairness, the queue cap, the
      429s and the set-up hint all key on the name the teacher gave that key, and nothing a request says (a
      ``.name`` after the key, an ``X-Learner`` header) changes it. A learner cannot act as another without
      their key.
    - **One shared token** (``token``, "trusting the room"): every learner has the same token, optionally
      followed by ``.`` and a name (``TOKEN.ann``); the name, else ``X-Learner``, else the client's IP address,
      tells learners apart, so one learner can use many names or another's. For small rooms that trust each
      other.

    ``token`` must be at least 12 characters without spaces (a ``ValueError`` otherwise). Keys and tokens are kept
    only as SHA-256 digests.

    >>> digest = hashlib.sha256(b"lrn-ann-key-0123456789").digest()
    >>> room = Classroom(learners={digest: "ann"})
    >>> room
    Classroom(learners=1)
    >>> room.learner_of("lrn-ann-key-0123456789", {"x-learner": "bob"}, "10.0.0.7")
    'ann'
    >>> room.learner_of("lrn-ann-key-0123456789.bob", {}, "10.0.0.7") is None
    True
    """

    def __init__(self, token: str | None = None, *, learners: Mapping[bytes, str] | None = None) -> None:
        if (token is None) == (learners is None):
            raise ValueError("a classroom needs either one shared token or a key per learner")
        self._learners = dict(learners or {})
        self._digest, self._length = b"", 0
        if token is not None:
            if len(token) < MIN_TOKEN_LENGTH or any(ch.isspace() for ch in token) or not token.isprintable():
                raise ValueError(f"the classroom token must be at least {MIN_TOKEN_LENGTH} printable characters "
                                 "without spaces")
            self._digest = hashlib.sha256(token.encode()).digest()
            self._length = len(token)

    @property
    def per_learner(self) -> bool:
        """True when every learner has their own key (a roster), False for one shared token."""
        return self._length == 0

    def __repr__(self) -> str:
        return f"Classroom(learners={len(self._learners)})" if self.per_learner else "Classroom(token=****)"

    def accepts(self, key: str) -> bool:
        """True if ``key`` is a learner's key, or the shared token optionally followed by ``.`` and a name."""
        if self.per_learner:
            return self._learner_key(key) is not None
        head = key[:self._length].encode("utf-8", "replace")
        same = hmac.compare_digest(hashlib.sha256(head).digest(), self._digest)
        rest = key[self._length:]
        return same and (rest == "" or (rest.startswith(".") and len(rest) > 1))

    def _learner_key(self, key: str) -> str | None:
        # A dictionary lookup of the key's SHA-256 digest: its timing tells nothing about any stored key.
        return self._learners.get(hashlib.sha256(key.encode("utf-8", "replace")).digest())

    def learner_of(self, key: str, headers: dict[str, str], client_ip: str | None) -> str | None:
        """The learner's id for a request with this key, or None if the key is not accepted."""
        if self.per_learner:
            return self._learner_key(key)
        if not self.accepts(key):
            return None
        name = _clean_name(key[self._length + 1:]) or _clean_name(headers.get("x-learner", ""))
        return name or f"ip:{client_ip or 'unknown'}"

    def check(self, headers: dict[str, str], client_ip: str | None) -> str:
        """The learner behind a request, from its ``Authorization: Bearer`` or ``api-key`` header; else the 401
        the real service gives (without echoing the key)."""
        scheme, _, bearer = headers.get("authorization", "").strip().partition(" ")
        key = bearer.strip() if scheme.lower() == "bearer" else ""
        key = key or headers.get("api-key", "").strip()
        if not key:
            raise ApiError(401, _MISSING_OWN if self.per_learner else _MISSING, code="invalid_api_key")
        learner = self.learner_of(key, headers, client_ip)
        if learner is None:
            raise ApiError(401, _WRONG_OWN if self.per_learner else _WRONG, code="invalid_api_key")
        return learner


# --- per-learner keys ------------------------------------------------------------------------------------

KEY_PREFIX = "lrn-"


def new_learner_key() -> str:
    """A fresh key for one learner: ``lrn-`` and 24 random URL-safe characters (144 bits).

    >>> key = new_learner_key()
    >>> len(key), key.startswith("lrn-")
    (28, True)
    """
    return KEY_PREFIX + secrets.token_urlsafe(18)


def generate_keys(count: int) -> tuple[Classroom, dict[str, str]]:
    """``count`` learners named ``learner-01``... with new keys, kept only in memory (valid until the server
    stops): the classroom and ``{name: key}`` to print once.

    >>> room, keys = generate_keys(3)
    >>> list(keys), all(room.learner_of(k, {}, None) == n for n, k in keys.items())
    (['learner-01', 'learner-02', 'learner-03'], True)
    """
    if not 1 <= count <= 10_000:
        raise ValueError("--learners must be between 1 and 10000")
    width = max(2, len(str(count)))
    keys = {f"learner-{i:0{width}d}": new_learner_key() for i in range(1, count + 1)}
    return Classroom(learners={hashlib.sha256(k.encode()).digest(): n for n, k in keys.items()}), keys


def roster_names(path: Path) -> list[str]:
    """The learner names in a roster file: one per line, blank lines and ``#`` comments skipped; a
    :class:`ValueError` naming the file and line for a name with other characters than letters, digits and
    ``_ . - @ +`` (at most 40), or a name given twice."""
    names: list[str] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        name = line.split("#", 1)[0].strip()
        if not name:
            continue
        if _clean_name(name) != name or len(name) > 40:
            raise ValueError(f"{path}, line {number}: {name[:60]!r} is not a learner name (letters, digits and "
                             "_ . - @ + only, at most 40 characters)")
        if name in names:
            raise ValueError(f"{path}, line {number}: {name!r} is listed twice")
        names.append(name)
    if not names:
        raise ValueError(f"{path}: no learner names (one per line)")
    return names


def keys_file(roster: Path) -> Path:
    """Where a roster's key digests are kept: beside it, ``NAME.keys``."""
    return roster.with_name(roster.name + ".keys")


def load_roster(roster: Path) -> tuple[Classroom, dict[str, str]]:
    """The classroom of a roster file, and the keys issued just now (``{name: key}``, to print once).

    The keys' SHA-256 digests are kept in ``ROSTER.keys`` (``name<TAB>hex digest`` lines, never the keys):
    a name of the roster without a digest there gets a new key; a digest whose name is no longer in the roster
    is dropped (that learner's key stops working: **revoking** is removing the name and restarting); deleting a
    learner's line from ``ROSTER.keys`` and restarting issues them a new key (a lost one). Damaged ``.keys``
    lines are a :class:`ValueError` naming the file and line.
    """
    names = roster_names(roster)
    store = keys_file(roster)
    digests: dict[str, str] = {}
    if store.exists():
        for number, line in enumerate(store.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip():
                continue
            name, _, digest = line.partition("\t")
            if not re.fullmatch(r"[0-9a-f]{64}", digest.strip()):
                raise ValueError(f"{store}, line {number}: expected NAME<TAB>SHA-256 hex digest; delete the line "
                                 "to issue that learner a new key")
            digests[name.strip()] = digest.strip()
    issued: dict[str, str] = {}
    for name in names:
        if name not in digests:
            issued[name] = key = new_learner_key()
            digests[name] = hashlib.sha256(key.encode()).hexdigest()
    kept = {name: digests[name] for name in names}
    text = "".join(f"{name}\t{digest}\n" for name, digest in kept.items())
    temp = store.with_name(store.name + f".{os.getpid()}.tmp")
    try:
        temp.write_text(text, encoding="utf-8")
        with contextlib.suppress(OSError):
            temp.chmod(0o600)
        temp.replace(store)
    finally:
        temp.unlink(missing_ok=True)
    return Classroom(learners={bytes.fromhex(d): name for name, d in kept.items()}), issued


def lan_addresses() -> list[str]:
    """This computer's IPv4 addresses that other computers on the network may reach (best effort, no traffic
    is sent: the route to a public address is looked up by connecting a UDP socket).

    >>> all(a.count(".") == 3 for a in lan_addresses())
    True
    """
    found: list[str] = []
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            probe.connect(("192.0.2.1", 9))          # TEST-NET-1: nothing is sent by a UDP connect
            found.append(probe.getsockname()[0])
    except OSError:
        pass
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET):
            address = str(info[4][0])
            if address not in found and not address.startswith("127."):
                found.append(address)
    except OSError:
        pass
    return [a for a in found if not a.startswith(("127.", "0."))]


def env_lines(host: str, port: int, token: str | None, *, own_key: bool = False) -> str:
    """The ``.env`` lines a learner uses to connect to a classroom server at ``host:port``; ``token=None``
    writes ``TOKEN`` where the (teacher-chosen) token goes. ``own_key``: ``token`` is one learner's own key
    (nothing is appended to it).

    >>> print(env_lines("192.168.1.20", 8000, None))
    VISION_PROVIDER=compatible
    OPENAI_BASE_URL=http://192.168.1.20:8000/v1
    OPENAI_API_KEY=TOKEN.YOUR-NAME
    """
    shown = token if token is not None else "TOKEN"
    key = shown if own_key else f"{shown}.YOUR-NAME"
    return f"VISION_PROVIDER=compatible\nOPENAI_BASE_URL=http://{host}:{port}/v1\nOPENAI_API_KEY={key}"


def admit(scheduler: FairScheduler | None, learner: str | None) -> Ticket | None:
    """A scheduler ticket for one request of ``learner`` (None when the server has no scheduler); a full queue
    is the API's 429 ``rate_limit_exceeded`` with ``Retry-After``, for that learner only.

    >>> admit(None, "ann") is None
    True
    """
    if scheduler is None:
        return None
    try:
        return scheduler.admit(learner or "local")
    except QueueFull as full:
        raise ApiError(429, f"Too many requests from you at once: {full.queued} of your requests are already "
                            f"waiting on this classroom server, which queues at most {scheduler.max_queued} per "
                            "learner so that everyone gets answers. Wait for your earlier requests to finish; "
                            f"retry after {full.retry_after} s (the OpenAI SDK does this for you).",
                       type="requests", code="rate_limit_exceeded",
                       headers={"Retry-After": str(full.retry_after)}) from None
