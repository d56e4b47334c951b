"""What the offline backend keeps for its learners between requests: uploaded files (``/v1/files``) and stored
responses (the Responses API's ``store``), each **owned** by the learner who made it and bounded in **bytes**.

**Owner.** The owner of an item is the learner the request came from: ``request.scope["offline.learner"]``, set
by the classroom middleware from the learner's own key (:meth:`helpers.offline.classroom.Classroom.check`), or
by any other front door that sets the same scope key (a JupyterHub service, from the hub's user name). A server
that is not a classroom has one owner, ``None``. Another learner's id is answered exactly as an unknown id (the
same 404, the same message): nobody learns whether an id exists. Ids are random per item (``file-`` and
``resp_`` + random hex), so the same upload by two learners is two files.

**Budgets** (:class:`~helpers.config.ServerSettings`, see :func:`file_budget`): each store holds at most ``per_learner`` bytes
for one learner and ``total`` bytes for the room. The bytes are counted truthfully: every string, list and dict
an item keeps (``sys.getsizeof``), and a large string (an image's data URL) shared by several items of one
learner (a conversation continued with ``previous_response_id`` shares its earlier turns) once. A stored response
keeps a file's id, never a copy of its bytes.

**Eviction**, when an item arrives:

1. an item larger than ``per_learner`` is refused (a 413 that says what to do);
2. the learner's own oldest items go until the learner is within ``per_learner``;
3. while the room is over ``total``: the learner's own oldest items go while the learner holds more than a fair
   share (``total`` divided by the number of learners holding items); then the oldest items of whoever holds
   the most above their fair share; a learner within their fair share never loses an item to someone else's
   upload. If that is not enough, nothing is evicted and the item is refused (a 400 naming the setting).

>>> store = OwnedStore("files", Budget(total=10_000, per_learner=6_000))
>>> store.put("a1", "ann", b"a" * 4000, [b"a" * 4000])
>>> store.put("b1", "bob", b"b" * 4000, [b"b" * 4000])
>>> store.put("b2", "bob", b"c" * 4000, [b"c" * 4000])     # over Bob's 6,000: his own oldest goes
>>> store.get("b1", "bob"), store.get("a1", "bob"), store.get("a1", "ann") is not None
(None, None, True)
"""

from __future__ import annotations

import sys
import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from helpers.config import ServerSettings
from helpers.offline.protocol import ApiError

__all__ = ["Budget", "OwnedStore", "file_budget", "footprint", "response_budget"]

T = TypeVar("T")
Owner = str | None
#: Strings and bytes at least this long are counted once per learner however many of their items hold them.
LARGE = 4096
MIB = 1024 * 1024
FILES_PER_LEARNER = 256          # files one learner may hold (a listing stays short)


@dataclass(frozen=True)
class Budget:
    """A store's bounds: ``total`` bytes for the room, ``per_learner`` bytes and ``per_learner_items`` items for
    one learner."""

    total: int
    per_learner: int
    per_learner_items: int = 10_000


def file_budget(settings: ServerSettings) -> Budget:
    """The budget of uploaded files (``VISION_OFFLINE_FILES_MB``, ``..._PER_LEARNER``)."""
    return Budget(settings.file_store_bytes, settings.file_store_bytes_per_learner, FILES_PER_LEARNER)


def response_budget(settings: ServerSettings) -> Budget:
    """The budget of stored responses (``VISION_OFFLINE_RESPONSES_MB``, ``..._PER_LEARNER``)."""
    return Budget(settings.response_store_bytes, settings.response_store_bytes_per_learner)


def footprint(values: Iterable[Any], large: list[Any]) -> int:
    """The bytes ``values`` keep (``sys.getsizeof`` of every object reached through dicts, lists and tuples),
    leaving out strings and bytes of at least :data:`LARGE` characters, which are appended to ``large`` (their
    owner counts each once). Dict keys are not counted (short, shared names such as ``"type"``).

    >>> large = []
    >>> footprint([{"text": "hi", "url": "x" * 5000}], large) > 0, [len(s) for s in large]
    (True, [5000])
    """
    small, stack = 0, list(values)
    while stack:
        value = stack.pop()
        if isinstance(value, (str, bytes)):
            if len(value) >= LARGE:
                large.append(value)
            else:
                small += sys.getsizeof(value)
        elif isinstance(value, dict):
            small += sys.getsizeof(value)
            stack.extend(value.values())
        elif isinstance(value, (list, tuple)):
            small += sys.getsizeof(value)
            stack.extend(value)
        else:
            small += sys.getsizeof(value)
    return small


@dataclass
class _Entry(Generic[T]):
    owner: Owner
    value: T
    small: int
    large: list[Any]


class OwnedStore(Generic[T]):
    """Items by id, each owned by one learner, within a :class:`Budget` (thread-safe). ``what`` names the items
    in messages (``"files"``, ``"stored responses"``); ``advice`` says what a learner can do when theirs are
    full; ``setting`` names the settings that raise the budgets."""

    def __init__(self, what: str, budget: Budget, *, advice: str = "", setting: str = "") -> None:
        if budget.per_learner > budget.total:
            raise ValueError(f"the per-learner budget of {what} ({budget.per_learner} bytes) is larger than the "
                             f"whole store's ({budget.total} bytes)")
        self.what, self.budget, self.advice, self.setting = what, budget, advice, setting
        self._items: dict[str, _Entry[T]] = {}
        self._order: dict[Owner, OrderedDict[str, None]] = {}     # each learner's ids, oldest first
        self._held: dict[Owner, int] = {}                         # each learner's bytes
        self._shared: dict[Owner, dict[int, list[Any]]] = {}      # id(large object) -> [object, references]
        self._total = 0
        self._lock = threading.Lock()

    # --- reading ---------------------------------------------------------------------------------------------

    def get(self, item_id: str, owner: Owner) -> T | None:
        """The item, if ``owner`` owns it; None for an unknown id and for another learner's (the same answer)."""
        with self._lock:
            entry = self._items.get(item_id)
            return entry.value if entry is not None and entry.owner == owner else None

    def owned(self, owner: Owner) -> list[T]:
        """``owner``'s items, oldest first."""
        with self._lock:
            return [self._items[i].value for i in self._order.get(owner, ())]

    def usage(self) -> dict[str, Any]:
        """``{"bytes": the room's total, "by_learner": {learner: bytes}, "items": count}`` (a learner ``None``
        is the one owner of a server that is not a classroom)."""
        with self._lock:
            return {"bytes": self._total, "by_learner": dict(self._held), "items": len(self._items)}

    # --- changing --------------------------------------------------------------------------------------------

    def pop(self, item_id: str, owner: Owner) -> T | None:
        """Remove ``owner``'s item; None (and nothing removed) for an unknown id or another learner's."""
        with self._lock:
            entry = self._items.get(item_id)
            if entry is None or entry.owner != owner:
                return None
            self._remove(item_id)
            return entry.value

    def put(self, item_id: str, owner: Owner, value: T, parts: Iterable[Any]) -> None:
        """Keep ``value`` (whose memory is what ``parts`` reach) for ``owner``, evicting as the module says; an
        :class:`ApiError` (nothing changed) when it cannot fit."""
        large: list[Any] = []
        small = footprint(parts, large)
        with self._lock:
            size = self._charge(owner, small, large, dry=True)
            if size > self.budget.per_learner:
                raise self._too_large(size)
            self._add(item_id, _Entry(owner, value, small, large))
            evicted: list[tuple[str, _Entry[T]]] = []
            try:
                self._make_room(owner, evicted)
            except ApiError:
                self._remove(item_id)
                for old_id, entry in reversed(evicted):     # undo: each back as its learner's oldest
                    self._add(old_id, entry, oldest=True)
                raise

    def put_check(self, owner: Owner, parts: Iterable[Any]) -> None:
        """An :class:`ApiError` now if an item reaching ``parts`` could never be kept for ``owner`` (larger than
        a learner's budget): lets a request be refused before its work is done."""
        large: list[Any] = []
        small = footprint(parts, large)
        with self._lock:
            size = self._charge(owner, small, large, dry=True)
        if size > self.budget.per_learner:
            raise self._too_large(size)

    # --- inside the lock ------------------------------------------------------------------------------------

    def _charge(self, owner: Owner, small: int, large: list[Any], *, dry: bool = False) -> int:
        """The bytes an item adds to ``owner``'s (its large objects only if ``owner`` holds them not yet)."""
        shared = self._shared.get(owner, {}) if dry else self._shared.setdefault(owner, {})
        added, seen = small, set()
        for obj in large:
            key = id(obj)
            if key in seen:
                continue
            seen.add(key)
            if key in shared:
                if not dry:
                    shared[key][1] += 1
            else:
                added += sys.getsizeof(obj)
                if not dry:
                    shared[key] = [obj, 1]
        return added

    def _release(self, owner: Owner, small: int, large: list[Any]) -> int:
        shared = self._shared.get(owner, {})
        freed = small
        for key in {id(obj) for obj in large}:
            held = shared.get(key)
            if held is None:
                continue
            held[1] -= 1
            if held[1] == 0:
                freed += sys.getsizeof(held[0])
                del shared[key]
        return freed

    def _add(self, item_id: str, entry: _Entry[T], *, oldest: bool = False) -> None:
        size = self._charge(entry.owner, entry.small, entry.large)
        self._items[item_id] = entry
        order = self._order.setdefault(entry.owner, OrderedDict())
        order[item_id] = None
        if oldest:
            order.move_to_end(item_id, last=False)
        self._held[entry.owner] = self._held.get(entry.owner, 0) + size
        self._total += size

    def _remove(self, item_id: str) -> _Entry[T]:
        entry = self._items.pop(item_id)
        order = self._order[entry.owner]
        del order[item_id]
        freed = self._release(entry.owner, entry.small, entry.large)
        self._held[entry.owner] -= freed
        self._total -= freed
        if not order:
            del self._order[entry.owner], self._held[entry.owner]
            self._shared.pop(entry.owner, None)
        return entry

    def _evict_oldest(self, owner: Owner, evicted: list[tuple[str, _Entry[T]]]) -> None:
        oldest = next(iter(self._order[owner]))
        evicted.append((oldest, self._remove(oldest)))

    def _make_room(self, owner: Owner, evicted: list[tuple[str, _Entry[T]]]) -> None:
        """Evict until the new item (``owner``'s newest) fits, as the module says; an :class:`ApiError` if it
        cannot without taking from a learner within their fair share."""
        def others_of(who: Owner) -> bool:          # holds an item besides the new one
            return len(self._order.get(who, ())) > (1 if who == owner else 0)

        while self._held[owner] > self.budget.per_learner or len(self._order[owner]) > self.budget.per_learner_items:
            self._evict_oldest(owner, evicted)
        while self._total > self.budget.total:
            fair = self.budget.total / len(self._order)
            if self._held[owner] > fair and others_of(owner):
                self._evict_oldest(owner, evicted)
                continue
            above = [who for who in self._order if who != owner and self._held[who] > fair]
            if not above:
                raise ApiError(400, f"This offline server's store of {self.what} is full: {len(self._order)} "
                                    f"learners share {self.budget.total // MIB} MiB and each holds no more than "
                                    f"their share. {self.advice} (The teacher can raise {self.setting}.)",
                               param=None, code="store_full")
            self._evict_oldest(max(above, key=lambda who: self._held[who]), evicted)

    def _too_large(self, size: int) -> ApiError:
        return ApiError(413, f"This is {size / MIB:.1f} MiB; this offline server keeps at most "
                             f"{self.budget.per_learner / MIB:g} MiB of {self.what} per learner. {self.advice} "
                             f"(The teacher can raise {self.setting}.)", param=None, code="too_large")

