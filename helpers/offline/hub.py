"""The offline backend as a JupyterHub service: one backend for a whole hub, learners identified by the hub.

Started by the hub itself (``jupyterhub_config.py`` at the repository's top, docs/TEACHING.md section 12)::

    c.JupyterHub.services = [{"name": "vision-course", "url": "http://127.0.0.1:8765",
                              "command": [sys.executable, "-m", "helpers.offline", "--hub"]}]

Every learner's server has its hub API token in ``JUPYTERHUB_API_TOKEN``; ``helpers.setup()`` sends it as the API
key (``Authorization: Bearer TOKEN``, what the OpenAI SDK sends), to the URL the hub configuration puts in
``VISION_HUB_SERVICE_URL``. This service asks the hub who the token belongs to (``GET {JUPYTERHUB_API_URL}/user``
with that token: the hub's "who am I", which every token may ask), keeps the answer for
:data:`CACHE_SECONDS`, and hands the hub's user name to the server as the learner (``offline.learner``, as the
classroom's :class:`~helpers.offline.classroom.Classroom` does): fair scheduling, queues, files and stored
responses belong to it. A learner cannot choose it: nothing in a request but the token says who is asking. A
missing or unknown token is the API's 401 ``invalid_api_key``; a token the hub knows but that does not carry the
scope ``access:services!service=NAME`` is a 403 (the hub's roles say who may use the service). Tokens are kept
only as SHA-256 digests (in the cache) and never logged.

Hub admins (the hub's ``admin`` flag) read ``GET /status`` (JSON): requests waiting and running per learner, what
each learner ran, errors, and the last requests (time, learner, path, status, milliseconds; never a body).

The hub's API is asked with ``httpx``'s asynchronous client, on the server's event loop: a slow hub delays only
the requests whose token is not cached yet, and a hub that does not answer is a 503 (the SDK retries it).

>>> room = HubRoom("http://127.0.0.1:8081/hub/api", service="vision-course")
>>> room
HubRoom(http://127.0.0.1:8081/hub/api, service='vision-course')
>>> room.check({}, "127.0.0.1")
Traceback (most recent call last):
...
helpers.offline.protocol.ApiError: You didn't provide an API key. ...
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import logging
import sys
import threading
import time
from collections import Counter, OrderedDict, deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import httpx

from helpers.errors import ConfigurationError
from helpers.offline.completions import json_bytes
from helpers.offline.protocol import ApiError

__all__ = ["CACHE_SECONDS", "HubRoom", "HubUser", "main"]

log = logging.getLogger("helpers.offline.hub")

CACHE_SECONDS = 60.0          # how long the hub's answer for a token is kept (a revoked token works this long)
REFUSED_SECONDS = 5.0         # how long an unknown token's refusal is kept (a flood of bad tokens asks the hub once)
CACHE_SIZE = 4096             # tokens remembered at most (least recently used dropped first)
HUB_TIMEOUT = 10.0            # seconds for the hub to answer "who is this"
RECENT = 200                  # requests kept for the admins' status

_MISSING = ("You didn't provide an API key. This is your class's JupyterHub service: requests must carry your hub "
            "API token (JUPYTERHUB_API_TOKEN in your server's environment). In a notebook on the hub, setup() "
            "does this for you: restart the kernel and run `from helpers import setup; client, model = setup()`.")
_UNKNOWN = ("Incorrect API key provided. This is your class's JupyterHub service: it accepts only hub API tokens "
            "(JUPYTERHUB_API_TOKEN in your server's environment), and the hub does not know this one (expired, "
            "revoked, or from another hub). Restart your server from the hub's control panel (File > Hub Control "
            "Panel: Stop My Server, then Start), then run setup() again.")


@dataclass(frozen=True)
class HubUser:
    """Who a token belongs to, as the hub said: its user's ``name``, whether they are a hub ``admin``, and
    whether the token may use this service (``allowed``)."""

    name: str
    admin: bool
    allowed: bool


class HubRoom:
    """Checks requests against a JupyterHub: the learner is the hub user whose API token the request carries.

    ``api_url`` is the hub's API (``JUPYTERHUB_API_URL``, e.g. ``http://127.0.0.1:8081/hub/api``), ``service``
    this service's name (the scope ``access:services!service=NAME`` a token needs; ``require_access=False``
    accepts every token the hub knows). Same interface as the classroom's room: :meth:`check` (blocking) and
    :meth:`acheck` (on the event loop, what the server calls), both ``(headers, client_ip) -> learner``.
    """

    per_learner = True            # the token is the identity (nothing in a request picks another name)

    def __init__(self, api_url: str, *, service: str = "vision-course", require_access: bool = True,
                 cache_seconds: float = CACHE_SECONDS, prefix: str = "/") -> None:
        parts = urlsplit(api_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"the hub's API URL must be an http(s) URL, not {api_url!r} (JUPYTERHUB_API_URL)")
        self.api_url, self.service = api_url.rstrip("/"), service
        self.require_access, self.cache_seconds = require_access, cache_seconds
        self.prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
        self._cache: OrderedDict[bytes, tuple[float, HubUser | None]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future[HubUser | None]] = {}
        self._client: httpx.AsyncClient | None = None
        self._client_loop: asyncio.AbstractEventLoop | None = None
        self._lock = threading.Lock()
        self.stats = Stats()

    def __repr__(self) -> str:
        return f"HubRoom({self.api_url}, service={self.service!r})"

    # --- who is asking ------------------------------------------------------------------------------------

    @staticmethod
    def _token(headers: Mapping[str, str]) -> str:
        scheme, _, bearer = headers.get("authorization", "").strip().partition(" ")
        key = bearer.strip() if scheme.lower() in ("bearer", "token") else ""
        return key or headers.get("api-key", "").strip()

    def _cached(self, digest: bytes) -> tuple[bool, HubUser | None]:
        with self._lock:
            found = self._cache.get(digest)
            if found is None:
                return False, None
            if found[0] < time.monotonic():
                del self._cache[digest]
                return False, None
            self._cache.move_to_end(digest)
            return True, found[1]

    def _remember(self, digest: bytes, user: HubUser | None) -> None:
        keep = self.cache_seconds if user is not None else min(self.cache_seconds, REFUSED_SECONDS)
        with self._lock:
            self._cache[digest] = (time.monotonic() + keep, user)
            self._cache.move_to_end(digest)
            while len(self._cache) > CACHE_SIZE:
                self._cache.popitem(last=False)

    def _learner(self, user: HubUser | None) -> str:
        if user is None:
            raise ApiError(401, _UNKNOWN, code="invalid_api_key")
        if self.require_access and not user.allowed:
            raise ApiError(403, f"Your hub account ({user.name}) may not use the {self.service!r} service: your "
                                f"token lacks the scope access:services!service={self.service}. Ask the hub's "
                                "administrator to grant it (jupyterhub_config.py: c.JupyterHub.load_roles).",
                           type="invalid_request_error", code="forbidden")
        return user.name

    def _parse(self, status: int, model: Any) -> HubUser | None:
        if status in (401, 403, 404):
            return None
        if status != 200 or not isinstance(model, dict) or not isinstance(model.get("name"), str):
            raise ApiError(503, f"The hub answered {status} when asked who a token belongs to; try again in a "
                                "moment (the OpenAI SDK retries by itself).", type="server_error", code=None)
        if model.get("kind", "user") != "user":   # a service's token is not a learner
            return None
        scopes = set(model.get("scopes") or ())
        allowed = bool(scopes & {"access:services", f"access:services!service={self.service}"})
        return HubUser(model["name"], bool(model.get("admin")), allowed)

    def _unreachable(self, err: Exception) -> ApiError:
        log.warning("hub service: the hub's API at %s did not answer (%s)", self.api_url, type(err).__name__)
        return ApiError(503, "Your class's hub did not answer when this service asked who you are; try again in "
                             "a moment (the OpenAI SDK retries by itself). If it lasts, tell your teacher.",
                        type="server_error", code=None)

    def user_for_token(self, token: str) -> HubUser | None:
        """The hub's user for ``token`` (None: unknown), cached; blocking (for scripts and tests)."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        known, user = self._cached(digest)
        if known:
            return user
        try:
            answer = httpx.get(self.api_url + "/user", headers={"Authorization": f"token {token}"},
                               timeout=HUB_TIMEOUT)
        except httpx.HTTPError as err:
            raise self._unreachable(err) from None
        user = self._parse(answer.status_code, _json(answer))
        self._remember(digest, user)
        return user

    async def auser_for_token(self, token: str) -> HubUser | None:
        """:meth:`user_for_token` on the event loop: concurrent requests with one new token ask the hub once."""
        digest = hashlib.sha256(token.encode("utf-8", "replace")).digest()
        known, user = self._cached(digest)
        if known:
            return user
        pending = self._pending.get(digest)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[HubUser | None] = asyncio.get_running_loop().create_future()
        self._pending[digest] = future
        try:
            loop = asyncio.get_running_loop()
            if self._client is None or self._client_loop is not loop:    # one client per event loop (a restart)
                self._client, self._client_loop = httpx.AsyncClient(timeout=HUB_TIMEOUT), loop
            try:
                answer = await self._client.get(self.api_url + "/user",
                                                headers={"Authorization": f"token {token}"})
            except httpx.HTTPError as err:
                raise self._unreachable(err) from None
            user = self._parse(answer.status_code, _json(answer))
            self._remember(digest, user)
            if user is not None:
                log.info("hub service: a token of hub user %r (admin: %s)", user.name, user.admin)
            future.set_result(user)
            return user
        except BaseException as err:
            future.set_exception(err if isinstance(err, Exception) else ApiError(503, "cancelled"))
            future.exception()          # retrieved: waiters get it; nobody else needs a warning about it
            raise
        finally:
            self._pending.pop(digest, None)

    def check(self, headers: Mapping[str, str], client_ip: str | None) -> str:
        """The hub user behind a request (blocking); else the API's 401 (or 403, 503)."""
        token = self._token(headers)
        if not token:
            raise ApiError(401, _MISSING, code="invalid_api_key")
        return self._learner(self.user_for_token(token))

    async def acheck(self, headers: Mapping[str, str], client_ip: str | None) -> str:
        """:meth:`check` without blocking the event loop (what the server's middleware awaits)."""
        token = self._token(headers)
        if not token:
            raise ApiError(401, _MISSING, code="invalid_api_key")
        return self._learner(await self.auser_for_token(token))

    # --- the server's application, with the service's prefix and the admins' status ----------------------

    def wrap(self, app: Any, state: Any) -> Any:
        """The ASGI application the hub's proxy and learners reach: requests under the service's prefix
        (``/services/NAME/...``, through the hub's proxy) are served as if sent to ``/...``; ``GET /status``
        is the admins' JSON; every request is counted for it."""
        room = self

        async def application(scope: dict[str, Any], receive: Any, send: Any) -> None:
            if scope["type"] != "http":
                return await app(scope, receive, send)
            path = scope["path"]
            if room.prefix != "/" and (path + "/").startswith(room.prefix):
                path = "/" + path[len(room.prefix):]
                scope = dict(scope, path=path, raw_path=path.encode("latin-1", "replace"))
            if path.rstrip("/") == "/status":
                return await room._status(scope, receive, send, state)
            started, status = time.perf_counter(), [0]

            async def counted(message: dict[str, Any]) -> None:
                if message["type"] == "http.response.start":
                    status[0] = message["status"]
                await send(message)

            try:
                await app(scope, receive, counted)
            finally:
                if path.startswith(("/v1/", "/openai/")):
                    room.stats.record(scope.get("offline.learner"), scope["method"], path, status[0],
                                      time.perf_counter() - started)
        return application

    async def _status(self, scope: dict[str, Any], receive: Any, send: Any, state: Any) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        try:
            token = self._token(headers)
            if not token:
                raise ApiError(401, _MISSING, code="invalid_api_key")
            user = await self.auser_for_token(token)
            if user is None:
                raise ApiError(401, _UNKNOWN, code="invalid_api_key")
            if not user.admin:
                raise ApiError(403, f"The status of the {self.service!r} service is for the hub's admins; "
                                    f"{user.name} is not one.", code="forbidden")
            scheduler = getattr(state, "scheduler", None)
            body = {"service": self.service, "hub": self.api_url,
                    "scheduler": scheduler.snapshot() if scheduler is not None else None,
                    "workers": getattr(scheduler, "workers", None),
                    "recording": _recording_label(state), **self.stats.snapshot()}
            status, payload = 200, json_bytes(body)
        except ApiError as err:
            status, payload = err.status, json_bytes(err.body())
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode()),
                                (b"cache-control", b"no-store")]})
        await send({"type": "http.response.body", "body": payload})


class Stats:
    """What ran, per learner, and the last :data:`RECENT` requests (for ``GET /status``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.ran: Counter[str] = Counter()
        self.errors: Counter[str] = Counter()
        self.refused = 0              # requests without a valid hub token (401/403 before a learner was known)
        self.recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    def record(self, learner: str | None, method: str, path: str, status: int, seconds: float) -> None:
        with self._lock:
            if learner is None:
                self.refused += status in (401, 403)
            elif 200 <= status < 400:
                self.ran[learner] += 1
            else:
                self.errors[learner] += 1
            self.recent.append({"at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "learner": learner,
                                "method": method, "path": path[:200], "status": status,
                                "ms": round(seconds * 1000)})

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            learners = sorted(set(self.ran) | set(self.errors))
            return {"learners": {name: {"ran": self.ran[name], "errors": self.errors[name]} for name in learners},
                    "ran": sum(self.ran.values()), "errors": sum(self.errors.values()),
                    "refused": self.refused, "recent": list(self.recent)}


def _json(answer: httpx.Response) -> Any:
    try:
        return answer.json()
    except ValueError:
        return None


def _recording_label(state: Any) -> str | None:
    recording = getattr(getattr(state, "backend", None), "recording", None)
    return getattr(recording, "label", None)


# --- the service's command --------------------------------------------------------------------------------

def service_address(environ: Mapping[str, str]) -> tuple[str, int]:
    """Where to listen: the host and port of ``JUPYTERHUB_SERVICE_URL`` (which the hub sets from the service's
    ``url``); a :class:`ConfigurationError` if it is missing or has no port.

    >>> service_address({"JUPYTERHUB_SERVICE_URL": "http://127.0.0.1:8765"})
    ('127.0.0.1', 8765)
    """
    url = environ.get("JUPYTERHUB_SERVICE_URL", "").strip()
    parts = urlsplit(url)
    if not url or parts.hostname is None or parts.port is None:
        raise ConfigurationError(f"JUPYTERHUB_SERVICE_URL is {url!r}: the hub sets it from the service's url.",
                                 fix="give the service a url with a port in jupyterhub_config.py, e.g. "
                                     "\"url\": \"http://127.0.0.1:8765\", and let the hub start it.")
    return parts.hostname, parts.port


def main(argv: Sequence[str] | None, environ: Mapping[str, str]) -> int:
    """``python -m helpers.offline --hub``: run the service until the hub stops it (SIGINT, SIGTERM) or Ctrl-C;
    the exit status. ``environ``: what the hub passed to the service (the command line's ``os.environ``)."""
    from helpers.offline import ServerSettings, load_recording
    from helpers.offline.server import OfflineServer

    parser = argparse.ArgumentParser(prog="python -m helpers.offline --hub", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recording", default=None, metavar="FILE",
                        help="answer matching requests from a teacher's recording (also: VISION_RECORDING)")
    parser.add_argument("--workers", type=int, default=None, help="image analyses at once (default: one per core)")
    parser.add_argument("--max-queued", type=int, default=8, help="requests one learner may have waiting")
    parser.add_argument("--any-token", action="store_true",
                        help="accept every token the hub knows, without the scope access:services!service=NAME")
    parser.add_argument("--no-warm", action="store_true", help="do not load the OCR models at start-up")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    try:
        host, port = service_address(environ)
        api_url = environ.get("JUPYTERHUB_API_URL", "").strip()
        if not api_url:
            raise ConfigurationError("JUPYTERHUB_API_URL is not set: this command runs as a JupyterHub service.",
                                     fix="let the hub start it (c.JupyterHub.services in jupyterhub_config.py).")
        room = HubRoom(api_url, service=environ.get("JUPYTERHUB_SERVICE_NAME", "vision-course"),
                       require_access=not args.any_token, prefix=environ.get("JUPYTERHUB_SERVICE_PREFIX", "/"))
        recording_path = args.recording or environ.get("VISION_RECORDING") or None
        recording = load_recording(recording_path) if recording_path else None
        settings = replace(ServerSettings.from_environ(environ, recording=recording_path), port=port)
    except (ConfigurationError, ValueError) as err:
        print(err, file=sys.stderr)
        return 2
    server = OfflineServer(host, port, warm_ocr=not args.no_warm, classroom=room,  # type: ignore[arg-type]
                           workers=args.workers, max_queued=args.max_queued, settings=settings)
    # Every API request needs a hub token, which a web page cannot send (no cookies are read), so the DNS-rebinding
    # guard's Host check is not needed here; behind the hub's proxy (or a Kubernetes service) the Host is the
    # hub's public name, which this server cannot know.
    server.state.host_names = lambda name: True
    for url in (environ.get("VISION_HUB_SERVICE_URL", ""), environ.get("JUPYTERHUB_SERVICE_URL", "")):
        parts = urlsplit(url)
        if parts.hostname and parts.port:
            server.policy.own_origins.add((parts.hostname, parts.port))   # its /images/, as learners name them
    try:
        server.start()
    except OSError as err:
        print(f"Cannot listen on {host}:{port}: {err.strerror}.", file=sys.stderr)
        return 1
    print(f"Course backend for the hub at {api_url}, listening on {host}:{port}: learners are the hub's users "
          f"(tokens checked with the hub, cached {CACHE_SECONDS:g} s); admins: GET /status.", flush=True)
    if recording is not None:
        print(recording.label, flush=True)
    return server.serve_until_stopped()        # the hub stops its services with SIGINT

