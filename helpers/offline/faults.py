"""Fault injection for the reliability lessons and tests: answer like an overloaded or rate-limited service.

Request header ``x-offline-fault`` or environment variable ``VISION_OFFLINE_FAULT`` (read on every request;
the header wins) with the syntax ``KIND[;times=N][;key=ID][;retry_after=SECONDS][;seconds=SECONDS]``:

* ``429``: rate limit, ``Retry-After`` (whole seconds) and ``retry-after-ms`` headers (default 1 s,
  ``retry_after=`` changes it), body code ``rate_limit_exceeded`` (Azure route: code ``"429"``).
* ``500`` / ``503``: ``server_error``.
* ``timeout``: no answer; the connection is held for ``seconds=`` (default ``VISION_OFFLINE_TIMEOUT_SECONDS``,
  30 s; at most 600 s), then closed, so the client's own timeout fires first.
* ``times=N``: only the first N requests carrying the same ``key`` fail; later ones are answered normally.
  Requests without ``key=`` share one counter per distinct fault value. ``429;times=2;key=lesson-1`` makes a
  client with ``max_retries=2`` succeed on its third attempt.

Faults apply to the chat completion routes only, after the credentials check.

>>> parse_fault("429;times=2;key=lesson")
FaultSpec(kind='429', times=2, key='lesson', retry_after=1.0, seconds=None)
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass

from helpers.offline.protocol import ApiError, Route

FAULT_KINDS = ("429", "500", "503", "timeout")
MAX_HOLD_SECONDS = 600.0
DEFAULT_RETRY_AFTER = 1.0        # seconds, for the 429 fault
SYNTAX = "KIND[;times=N][;key=ID][;retry_after=S][;seconds=S] with KIND one of 429, 500, 503, timeout"


@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``x-offline-fault`` value (see the module docstring for the syntax)."""

    kind: str
    times: int | None
    key: str
    retry_after: float
    seconds: float | None


def parse_fault(value: str) -> FaultSpec:
    """Parse ``KIND[;times=N][;key=ID][;retry_after=S][;seconds=S]``; ``ValueError`` explains a bad value."""
    fields = [f.strip() for f in value.split(";") if f.strip()]
    if not fields or fields[0].lower() not in FAULT_KINDS:
        raise ValueError(f"unknown fault {value!r}: start with one of {', '.join(FAULT_KINDS)}")
    kind = fields[0].lower()
    options: dict[str, str] = {}
    for item in fields[1:]:
        name, sep, setting = item.partition("=")
        if not sep or name.strip() not in ("times", "key", "retry_after", "seconds"):
            raise ValueError(f"unknown fault option {item!r}: use times=N, key=ID, retry_after=S or seconds=S")
        options[name.strip()] = setting.strip()
    try:
        times = int(options["times"]) if "times" in options else None
        retry_after = float(options.get("retry_after", DEFAULT_RETRY_AFTER))
        seconds = float(options["seconds"]) if "seconds" in options else None
    except ValueError:
        raise ValueError(f"fault options must be numbers in {value!r}") from None
    if (times is not None and times < 0) or not math.isfinite(retry_after) or retry_after < 0 or (
            seconds is not None and (not math.isfinite(seconds) or seconds < 0)):
        raise ValueError(f"fault options must be >= 0 in {value!r}")
    return FaultSpec(kind, times, options.get("key", value.strip()), retry_after, seconds)


def requested_fault(header: str | None, server_default: str | None, environment: str | None) -> FaultSpec | None:
    """The fault a request asks for (header, else the server's default, else the environment), or None.

    A malformed value is a 400 ``invalid_fault`` that names the syntax.
    """
    value = header or server_default or environment
    if not value or not value.strip():
        return None
    try:
        return parse_fault(value)
    except ValueError as err:
        raise ApiError(400, f"Bad x-offline-fault / VISION_OFFLINE_FAULT value: {err}. Syntax: {SYNTAX}.",
                       param="x-offline-fault", code="invalid_fault") from None


class FaultBook:
    """Counts requests per fault key, so ``times=N`` fails exactly the first N of them (thread-safe).

    The oldest keys are forgotten beyond ``capacity``, so a long-running server's memory stays bounded.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def should_fail(self, spec: FaultSpec) -> bool:
        """True when this request must fail."""
        if spec.times is None:
            return True
        with self._lock:
            count = self._counts.pop(spec.key, 0) + 1
            self._counts[spec.key] = count
            if len(self._counts) > self._capacity:
                self._counts.popitem(last=False)
        return count <= spec.times


def hold_seconds(spec: FaultSpec, default: float) -> float:
    """How long the ``timeout`` fault holds the connection (``seconds=`` or the server's default, capped)."""
    hold = spec.seconds if spec.seconds is not None else default
    return min(max(hold, 0.0), MAX_HOLD_SECONDS)


def fault_error(spec: FaultSpec, route: Route, model: str) -> ApiError:
    """The response a real service gives for a 429/500/503 (``timeout`` is handled by the connection)."""
    if spec.kind == "429":
        wait = spec.retry_after
        headers = {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(round(wait * 1000)),
                   "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0",
                   "x-ratelimit-reset-requests": f"{wait:g}s"}
        if route.api == "azure":
            return ApiError(429, f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                                 f"{route.api_version} have exceeded call rate limit of your current OpenAI S0 "
                                 f"pricing tier. Please retry after {math.ceil(wait)} seconds.",
                            type=None, code="429", headers=headers)
        return ApiError(429, f"Rate limit reached for {model} in organization org-offline on requests per min "
                             f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {wait:g}s. Visit "
                             "https://platform.openai.com/account/rate-limits to learn more.",
                        type="requests", code="rate_limit_exceeded", headers=headers)
    if spec.kind == "500":
        return ApiError(500, "The server had an error while processing your request. Sorry about that!",
                        type="server_error")
    return ApiError(503, "The server is overloaded or not ready yet.", type="server_error")
