"""The offline backend's settings: everything it takes from the environment, read once into one object that
whoever starts the server passes to it (:mod:`helpers.config` for a learner's client, the command line for
``python -m helpers.offline``). Its own module so that the server and the package's door both import it, and
neither imports the other.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from helpers.errors import ConfigurationError

__all__ = ["Budget", "DEFAULT_HOLD_SECONDS", "OFF_VALUES", "ServerSettings"]

#: What switches a ``VISION_OFFLINE_*`` setting off (any case), for every setting that can be switched off.
OFF_VALUES = frozenset({"off", "0", "false", "no", "none"})
DEFAULT_HOLD_SECONDS = 30.0      # the "timeout" fault holds the connection this long
MIB = 1024 * 1024
#: The stores' byte budgets (:mod:`helpers.offline.stores`): our own numbers for a teacher's laptop serving a
#: room of about 30: at most 256 MiB of uploaded files and 256 MiB of stored responses in all (half a gigabyte at
#: worst), and for one learner 64 MiB of files (a few large photos; the API's own per-image limit is 50 MB) and
#: 32 MiB of stored responses (hundreds of turns with small images; a conversation's shared turns count once).
FILE_STORE_MIB, FILE_STORE_MIB_PER_LEARNER = 256, 64
RESPONSE_STORE_MIB, RESPONSE_STORE_MIB_PER_LEARNER = 256, 32
FILES_PER_LEARNER = 256          # files one learner may hold (a listing stays short)


@dataclass(frozen=True)
class Budget:
    """A store's bounds: ``total`` bytes for the room, ``per_learner`` bytes and ``per_learner_items`` items for
    one learner."""

    total: int
    per_learner: int
    per_learner_items: int = 10_000


@dataclass(frozen=True)
class ServerSettings:
    """Everything the offline backend takes from the environment, read once, passed to the server.

    ``port`` (``VISION_OFFLINE_PORT``; 0 = any free port), ``recording`` (``VISION_RECORDING``: a teacher's
    recording to replay), ``fault`` (a fault every request gets, ``--fault``), ``hold_seconds``
    (``VISION_OFFLINE_TIMEOUT_SECONDS``: how long the ``timeout`` fault holds a connection), ``analysis_cache``
    (``VISION_OFFLINE_CACHE``, else ``$XDG_CACHE_HOME/gpt-vision-course`` or ``~/.cache/gpt-vision-course``; None
    = analyses kept in memory only), and ``switches``: where the two run-time switches are looked up on every
    request, ``VISION_OFFLINE_FAULT`` and ``VISION_OFFLINE_DOWNLOADS`` (``off``: never download from the
    internet). Lesson 09 switches a fault on and off in its own kernel, so ``helpers.config`` passes the live
    ``os.environ``; None = no switches.

    The stores' budgets, in bytes (:mod:`helpers.offline.stores`; set in MiB): ``file_store_bytes``
    (``VISION_OFFLINE_FILES_MB``, default 256) and ``file_store_bytes_per_learner``
    (``VISION_OFFLINE_FILES_MB_PER_LEARNER``, 64) for uploaded files, ``response_store_bytes``
    (``VISION_OFFLINE_RESPONSES_MB``, 256) and ``response_store_bytes_per_learner``
    (``VISION_OFFLINE_RESPONSES_MB_PER_LEARNER``, 32) for stored responses. A learner's budget may not exceed
    the whole store's.

    >>> ServerSettings.from_environ({"VISION_OFFLINE_PORT": "8000", "VISION_OFFLINE_CACHE": "off"}).port
    8000
    >>> ServerSettings(switches={"VISION_OFFLINE_DOWNLOADS": "Off"}).downloads_allowed()
    False
    """

    port: int = 0
    recording: str | None = None
    fault: str | None = None
    hold_seconds: float = DEFAULT_HOLD_SECONDS
    analysis_cache: Path | None = None
    file_store_bytes: int = FILE_STORE_MIB * MIB
    file_store_bytes_per_learner: int = FILE_STORE_MIB_PER_LEARNER * MIB
    response_store_bytes: int = RESPONSE_STORE_MIB * MIB
    response_store_bytes_per_learner: int = RESPONSE_STORE_MIB_PER_LEARNER * MIB
    switches: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, recording: str | None = None,
                     switches: Mapping[str, str] | None = None) -> ServerSettings:
        """Read the ``VISION_OFFLINE_*`` variables of ``environ`` (``os.environ``, or the course's merged
        environment and ``.env``); a :class:`ConfigurationError` naming the variable for a bad value.
        ``recording``: a checked path (``VISION_RECORDING`` is resolved by ``helpers.config``); ``switches``:
        where the run-time switches are looked up (default ``environ`` itself)."""
        port = _number(environ, "VISION_OFFLINE_PORT", 0, integer=True, low=0, high=65535,
                       fix="set it to a number between 1024 and 65535, or 0 (any free port).")
        hold = _number(environ, "VISION_OFFLINE_TIMEOUT_SECONDS", DEFAULT_HOLD_SECONDS, integer=False, low=0,
                       high=3600, fix=f"set it to a number of seconds, e.g. {DEFAULT_HOLD_SECONDS:g}, or unset it.")
        raw = environ.get("VISION_OFFLINE_CACHE", "").strip()
        if raw.lower() in OFF_VALUES:
            cache = None
        elif raw:
            cache = Path(raw).expanduser()
        else:
            cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-vision-course"
        budgets: dict[str, int] = {}
        for name, field_name, default in (
                ("VISION_OFFLINE_FILES_MB", "file_store_bytes", FILE_STORE_MIB),
                ("VISION_OFFLINE_FILES_MB_PER_LEARNER", "file_store_bytes_per_learner", FILE_STORE_MIB_PER_LEARNER),
                ("VISION_OFFLINE_RESPONSES_MB", "response_store_bytes", RESPONSE_STORE_MIB),
                ("VISION_OFFLINE_RESPONSES_MB_PER_LEARNER", "response_store_bytes_per_learner",
                 RESPONSE_STORE_MIB_PER_LEARNER)):
            budgets[field_name] = int(_number(environ, name, default, integer=True, low=1, high=1024 * 1024,
                                              fix=f"set it to a number of MiB, e.g. {default}, or unset it.") * MIB)
        for room, one in (("FILES", "file_store_bytes"), ("RESPONSES", "response_store_bytes")):
            if budgets[one + "_per_learner"] > budgets[one]:
                raise ConfigurationError(
                    f"VISION_OFFLINE_{room}_MB_PER_LEARNER ({budgets[one + '_per_learner'] // MIB}) is more than "
                    f"VISION_OFFLINE_{room}_MB ({budgets[one] // MIB}), the whole store.",
                    fix=f"lower VISION_OFFLINE_{room}_MB_PER_LEARNER or raise VISION_OFFLINE_{room}_MB.")
        return cls(port=int(port), recording=recording, hold_seconds=hold, analysis_cache=cache,
                   switches=environ if switches is None else switches,
                   file_store_bytes=budgets["file_store_bytes"],
                   file_store_bytes_per_learner=budgets["file_store_bytes_per_learner"],
                   response_store_bytes=budgets["response_store_bytes"],
                   response_store_bytes_per_learner=budgets["response_store_bytes_per_learner"])

    @classmethod
    def defaults(cls) -> ServerSettings:
        """The defaults, with the run-time switches looked up in this process's ``os.environ`` (what a server
        made without settings uses, e.g. a test's)."""
        return cls(switches=os.environ)

    def file_budget(self) -> Budget:
        """The budget of uploaded files (:mod:`helpers.offline.stores`)."""
        return Budget(self.file_store_bytes, self.file_store_bytes_per_learner, FILES_PER_LEARNER)

    def response_budget(self) -> Budget:
        """The budget of stored responses (:mod:`helpers.offline.stores`)."""
        return Budget(self.response_store_bytes, self.response_store_bytes_per_learner)

    def fault_switch(self) -> str | None:
        """``VISION_OFFLINE_FAULT`` as it is now (None without switches)."""
        return (self.switches or {}).get("VISION_OFFLINE_FAULT") or None

    def downloads_allowed(self) -> bool:
        """False when ``VISION_OFFLINE_DOWNLOADS`` is off now (the server's own ``/images/`` stay allowed)."""
        return (self.switches or {}).get("VISION_OFFLINE_DOWNLOADS", "on").strip().lower() not in OFF_VALUES


def _number(environ: Mapping[str, str], name: str, default: float, *, integer: bool, low: float, high: float,
            fix: str) -> float:
    raw = environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw) if integer else float(raw)
    except ValueError:
        value = None
    if value is None or not low <= value <= high:
        kind = "a port number" if name == "VISION_OFFLINE_PORT" else "a number of seconds" if not integer \
            else "a whole number of MiB" if name.endswith(("_MB", "_MB_PER_LEARNER")) else "a whole number"
        raise ConfigurationError(f"{name}={raw!r} is not {kind}.", fix=fix)
    return value
