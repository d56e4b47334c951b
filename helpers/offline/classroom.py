"""The offline backend shared by a room: an access token, who is asking, and the lines learners put in ``.env``.

``python -m helpers.offline --classroom --host 0.0.0.0`` serves a whole class from the teacher's computer (see
docs/TEACHING.md). Every API request must then carry the class's access token as its key (``Authorization:
Bearer TOKEN``, or Azure's ``api-key: TOKEN``), optionally followed by ``.`` and a learner name
(``TOKEN.ann``): the name is how :mod:`helpers.offline.fair` tells learners apart. Without a name a learner is
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
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import socket

from helpers.offline.fair import FairScheduler, QueueFull, Ticket
from helpers.offline.protocol import ApiError

__all__ = ["Classroom", "admit", "env_lines", "lan_addresses", "new_token"]

_NAME = re.compile(r"[^A-Za-z0-9_.@+-]")
MIN_TOKEN_LENGTH = 12

_MISSING = ("You didn't provide an API key. This is a classroom server: put the access token your teacher gave you "
            "in .env as OPENAI_API_KEY=TOKEN.YOUR-NAME (with VISION_PROVIDER=compatible and OPENAI_BASE_URL set to "
            "the address your teacher gave), then restart the kernel.")
_WRONG = ("Incorrect API key provided. This classroom server accepts only the access token your teacher gave you, "
          "optionally followed by a dot and your name (OPENAI_API_KEY=TOKEN.YOUR-NAME in .env). Copy the token "
          "again, then restart the kernel.")


def new_token() -> str:
    """A fresh access token for a class: ``class-`` and 22 random URL-safe characters (132 bits).

    >>> len(new_token()), new_token().startswith("class-")
    (28, True)
    """
    return "class-" + secrets.token_urlsafe(16)[:22]


def _clean_name(raw: str) -> str:
    return _NAME.sub("_", raw.strip())[:40]


class Classroom:
    """Checks a request's key against the class token and names the learner behind it.

    ``token`` must be at least 12 characters without spaces (a ``ValueError`` otherwise).
    """

    def __init__(self, token: str) -> None:
        if len(token) < MIN_TOKEN_LENGTH or any(ch.isspace() for ch in token) or not token.isprintable():
            raise ValueError(f"the classroom token must be at least {MIN_TOKEN_LENGTH} printable characters "
                             "without spaces")
        self._digest = hashlib.sha256(token.encode()).digest()
        self._length = len(token)

    def __repr__(self) -> str:
        return "Classroom(token=****)"

    def accepts(self, key: str) -> bool:
        """True if ``key`` is the token, or the token followed by ``.`` and a name (constant-time compare)."""
        head = key[:self._length].encode("utf-8", "replace")
        same = hmac.compare_digest(hashlib.sha256(head).digest(), self._digest)
        rest = key[self._length:]
        return same and (rest == "" or (rest.startswith(".") and len(rest) > 1))

    def learner_of(self, key: str, headers: dict[str, str], client_ip: str | None) -> str | None:
        """The learner's id for a request with this key, or None if the key is not the class token."""
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
            raise ApiError(401, _MISSING, code="invalid_api_key")
        learner = self.learner_of(key, headers, client_ip)
        if learner is None:
            raise ApiError(401, _WRONG, code="invalid_api_key")
        return learner


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


def env_lines(host: str, port: int, token: str | None) -> str:
    """The ``.env`` lines a learner uses to connect to a classroom server at ``host:port``; ``token=None``
    writes ``TOKEN`` where the (teacher-chosen) token goes.

    >>> print(env_lines("192.168.1.20", 8000, None))
    VISION_PROVIDER=compatible
    OPENAI_BASE_URL=http://192.168.1.20:8000/v1
    OPENAI_API_KEY=TOKEN.YOUR-NAME
    """
    shown = token if token is not None else "TOKEN"
    return (f"VISION_PROVIDER=compatible\nOPENAI_BASE_URL=http://{host}:{port}/v1\n"
            f"OPENAI_API_KEY={shown}.YOUR-NAME")


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
