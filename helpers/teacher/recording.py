"""Recording a real model's answers once, for replaying them to a class without keys (the file format:
:mod:`helpers.recordings`; the offline backend replays it).

``python -m helpers.teacher record 05 09 --out recordings/class.json`` starts a *recording proxy* on 127.0.0.1
that forwards every request to the provider configured in ``.env`` (OpenAI, Azure or a compatible engine), with
the real key added on the way out, and writes down each successful chat completion (normalised: model, messages
with images by the SHA-256 of their bytes, the parameters that change an answer) with its answer. The chosen
notebooks run in kernels pointed at the proxy (as a ``compatible`` provider, or as Azure with the same deployment
and api-version) with a random key for this run only (the proxy refuses other keys, other ``Host`` names and
every route a recording does not need): the real key never enters a kernel, a notebook or the file.

Why a proxy and not a hook in ``helpers.client``: the lessons also send raw ``requests.post`` calls (notebook 02),
the Responses API and file uploads; a proxy sees exactly what goes over the wire, whichever code sent it, and the
notebooks run unmodified, exactly as a learner's would.

>>> from helpers.teacher.recording import assemble_stream
>>> raw = (b'data: {"id":"c1","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"Hi"},'
...        b'"finish_reason":null}]}\\n\\ndata: {"id":"c1","created":1,"model":"m","choices":[{"index":0,"delta":{},'
...        b'"finish_reason":"stop"}]}\\n\\ndata: [DONE]\\n\\n')
>>> assemble_stream(raw)["choices"][0]["message"]["content"]
'Hi'
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hmac
import json
import os
import re
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx

from helpers.config import Settings
from helpers.course_images import IMAGES_DIR, public_copy
from helpers.errors import ConfigurationError
from helpers.images import to_data_url
from helpers.recordings import FORMAT, course_image_names, course_version, image_ref, normalise
from helpers.redaction import host_of, mask_secret, redact_url

__all__ = ["PROXY_KEY", "RecordingProxy", "assemble_stream", "kernel_env", "record", "write_recording"]

#: The key the kernels send to the proxy (the proxy replaces it with the real one): random for each run of the
#: recording, so nothing else on the computer (another user's program, a web page through DNS rebinding) can send
#: requests through the proxy with the teacher's key. It opens nothing but this proxy while it runs.
PROXY_KEY = "recording-" + secrets.token_urlsafe(24)
#: What a recording needs to send (``METHOD path`` patterns; ``{id}``: a file this proxy saw uploaded): every other
#: request (``GET /v1/organization/users``, deleting someone else's file...) is refused with a 403.
ALLOWED_ROUTES = (
    ("POST", re.compile(r"/v1/chat/completions")),
    ("POST", re.compile(r"/v1/responses")),
    ("POST", re.compile(r"/v1/files")),
    ("POST", re.compile(r"/openai/deployments/[^/]+/(extensions/)?chat/completions")),
    ("POST", re.compile(r"/openai(/v1)?/responses")),
    ("POST", re.compile(r"/openai(/v1)?/files")),
)
_OWN_FILE = re.compile(r"(?:/v1|/openai(?:/v1)?)/files/([A-Za-z0-9_.-]{1,200})")
#: Variables a kernel must not inherit from the teacher's shell: the proxy holds the only real key.
SECRET_VARS = ("OPENAI_API_KEY", "OPENAI_BASE_URL", "OPENAI_ORG_ID", "OPENAI_PROJECT_ID", "AZURE_OPENAI_ENDPOINT",
               "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_API_VERSION", "VISION_RECORDING")
_RELAYED = ("content-type", "retry-after", "retry-after-ms", "x-request-id", "x-should-retry", "openai-model",
            "openai-processing-ms", "apim-request-id", "x-ratelimit-limit-requests", "x-ratelimit-limit-tokens",
            "x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests",
            "x-ratelimit-reset-tokens")
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".gif")


def assemble_stream(raw: bytes) -> dict[str, Any]:
    """The ``chat.completion`` object a stream of ``chat.completion.chunk`` events adds up to (content and tool
    calls per choice, finish reasons, the final ``usage`` if the stream carried one)."""
    body: dict[str, Any] = {"object": "chat.completion", "choices": []}
    choices: dict[int, dict[str, Any]] = {}
    for line in raw.decode("utf-8", "replace").splitlines():
        data = line[5:].strip() if line.startswith("data:") else ""
        if not data or data == "[DONE]":
            continue
        chunk = json.loads(data)
        for key in ("id", "created", "model", "system_fingerprint"):
            if chunk.get(key) is not None:
                body.setdefault(key, chunk[key])
        if chunk.get("usage"):
            body["usage"] = chunk["usage"]
        for item in chunk.get("choices") or []:
            choice = choices.setdefault(int(item.get("index", 0)), {"message": {"role": "assistant", "content": ""},
                                                                    "finish_reason": None, "calls": {}})
            delta = item.get("delta") or {}
            choice["message"]["content"] += delta.get("content") or ""
            for call in delta.get("tool_calls") or []:
                slot = choice["calls"].setdefault(int(call.get("index", 0)),
                                                  {"id": "", "type": "function", "function": {"name": "", "arguments": ""}})
                slot["id"] = call.get("id") or slot["id"]
                function = call.get("function") or {}
                slot["function"]["name"] += function.get("name") or ""
                slot["function"]["arguments"] += function.get("arguments") or ""
            choice["finish_reason"] = item.get("finish_reason") or choice["finish_reason"]
    for index in sorted(choices):
        choice = choices[index]
        if choice["calls"]:
            choice["message"]["tool_calls"] = [choice["calls"][i] for i in sorted(choice["calls"])]
            choice["message"]["content"] = choice["message"]["content"] or None
        body["choices"].append({"index": index, "message": choice["message"], "finish_reason": choice["finish_reason"]})
    return body


def image_aliases(settings: Settings) -> dict[str, str]:
    """SHA-256 of each course image as a real provider receives it (``course_image_url``: a data URL of the
    prepared image when it has no public copy) -> SHA-256 of the course file, which is what the offline backend's
    ``/images/`` URL of the same image resolves to at replay."""
    if settings.images_base_url:
        return {}
    aliases = {}
    for path in sorted(IMAGES_DIR.iterdir()):
        if path.suffix.lower() in _IMAGE_SUFFIXES and public_copy(path.name) is None:
            sent = image_ref(to_data_url(path, model=settings.model))["sha256"]
            aliases[sent] = image_ref(f"http://127.0.0.1/images/{path.name}")["sha256"]
    return {k: v for k, v in aliases.items() if k != v}


class RecordingProxy:
    """A local HTTP server that forwards to the configured real provider and records chat completions.

    >>> with RecordingProxy(settings) as proxy:                           # doctest: +SKIP
    ...     proxy.base_url
    'http://127.0.0.1:PORT'
    """

    def __init__(self, settings: Settings, *, aliases: dict[str, str] | None = None, key: str = PROXY_KEY) -> None:
        if settings.provider == "offline":
            raise ConfigurationError("Recording needs a real provider, but the configured one is offline.",
                                     fix="put OPENAI_API_KEY (or your Azure or compatible settings) in .env, then "
                                         "run the record command again.")
        self.settings, self.aliases, self.key = settings, aliases or {}, key
        self.uploaded: set[str] = set()          # ids of the files uploaded through this proxy
        self.entries: list[dict[str, Any]] = []
        self.failures: Counter[str] = Counter()
        self.notebook = ""
        self._lock = threading.Lock()
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self.port = 0

    # --- where a request goes ----------------------------------------------------------------------
    def _target(self, path: str, query: str) -> tuple[str, dict[str, str]]:
        s = self.settings
        if s.provider == "azure":
            url, auth = (s.azure_endpoint or "").rstrip("/") + path, {"api-key": s.api_key or ""}
        else:
            url = (s.base_url or "").rstrip("/") + (path[3:] if path.startswith("/v1/") else path)
            auth = {"Authorization": f"Bearer {s.api_key}"} if s.api_key else {}
        return url + (f"?{query}" if query else ""), auth

    def refusal(self, method: str, path: str, headers: Any) -> tuple[int, str] | None:
        """Why the proxy will not forward a request (``(status, message)``), or None: a ``Host`` other than its
        own loopback address (DNS rebinding), a key other than this run's :data:`PROXY_KEY`, or a route a
        recording does not need (:data:`ALLOWED_ROUTES`; a file only if it was uploaded through this proxy)."""
        host = headers.get("host", "")
        if host not in (f"127.0.0.1:{self.port}", f"localhost:{self.port}"):
            return 421, "The recording proxy answers only requests addressed to 127.0.0.1."
        scheme, _, bearer = headers.get("authorization", "").partition(" ")
        given = (bearer.strip() if scheme.lower() == "bearer" else "") or headers.get("api-key", "")
        if not hmac.compare_digest(given.encode("utf-8", "replace"), self.key.encode()):
            return 401, "The recording proxy needs this run's key (the kernels it starts have it)."
        if any(method == m and pattern.fullmatch(path) for m, pattern in ALLOWED_ROUTES):
            return None
        own = _OWN_FILE.fullmatch(path)
        if method in ("GET", "DELETE") and own is not None and own.group(1) in self.uploaded:
            return None
        return 403, f"The recording proxy forwards only what a recording needs, not {method} {path[:200]}."

    def _note_upload(self, path: str, status: int, raw: bytes) -> None:
        if status == 200 and path.endswith("/files"):
            with contextlib.suppress(ValueError, AttributeError, TypeError):
                file_id = json.loads(raw).get("id")
                if isinstance(file_id, str):
                    with self._lock:
                        self.uploaded.add(file_id)

    def _model(self, path: str, payload: dict[str, Any]) -> str:
        s = self.settings
        if s.provider == "azure" and "/deployments/" in path:
            deployment = path.split("/deployments/", 1)[1].split("/", 1)[0]
            return s.model if deployment == s.azure_deployment else deployment
        return str(payload.get("model") or s.model)

    def _capture(self, path: str, body: bytes, status: int, raw: bytes) -> None:
        if status != 200:
            with self._lock:
                self.failures[f"HTTP {status}"] += 1
            return
        try:
            payload = json.loads(body)
            response = assemble_stream(raw) if payload.get("stream") else json.loads(raw)
        except ValueError:
            with self._lock:
                self.failures["unreadable"] += 1
            return
        normal = normalise(payload, model=self._model(path, payload), images_base_url=self.settings.images_base_url,
                           aliases=self.aliases)
        entry = {"key": normal["key"], "notebook": self.notebook, "stream": bool(payload.get("stream")),
                 "request": normal["request"], "response": response}
        with self._lock:
            self.entries.append(entry)

    # --- the server ----------------------------------------------------------------------------------
    def _app(self) -> Any:
        from starlette.applications import Starlette
        from starlette.requests import Request
        from starlette.responses import Response, StreamingResponse
        from starlette.routing import Route

        clients: list[httpx.AsyncClient] = []

        @asynccontextmanager
        async def lifespan(app: Any) -> Any:
            clients.append(httpx.AsyncClient(timeout=httpx.Timeout(self.settings.timeout * 5, connect=15.0)))
            yield
            await clients[0].aclose()

        async def forward(request: Request) -> Response:
            refused = self.refusal(request.method, request.url.path, request.headers)
            if refused is not None:
                return Response(json.dumps({"error": {"message": refused[1], "type": "proxy_error"}}), refused[0],
                                media_type="application/json")
            body = await request.body()
            url, auth = self._target(request.url.path, request.url.query)
            headers = {"content-type": request.headers.get("content-type", "application/json"),
                       "accept": request.headers.get("accept", "application/json"), "accept-encoding": "identity",
                       **auth}
            try:
                upstream = await clients[0].send(clients[0].build_request(request.method, url, content=body,
                                                                           headers=headers), stream=True)
            except httpx.HTTPError as err:
                with self._lock:
                    self.failures[type(err).__name__] += 1
                message = f"The recording proxy could not reach {host_of(url)} ({type(err).__name__})."
                return Response(json.dumps({"error": {"message": message, "type": "proxy_error"}}), 502,
                                media_type="application/json")
            capture = request.method == "POST" and request.url.path.endswith("/chat/completions")

            async def relay() -> Any:
                seen = []
                try:
                    async for piece in upstream.aiter_bytes():
                        seen.append(piece)
                        yield piece
                finally:
                    await upstream.aclose()
                    self._note_upload(request.url.path, upstream.status_code, b"".join(seen))
                    if capture:
                        self._capture(request.url.path, body, upstream.status_code, b"".join(seen))

            kept = {k: v for k, v in upstream.headers.items() if k.lower() in _RELAYED}
            return StreamingResponse(relay(), status_code=upstream.status_code, headers=kept)

        route = Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])
        return Starlette(routes=[route], lifespan=lifespan)

    def start(self) -> str:
        """Listen on a free loopback port; return ``http://127.0.0.1:PORT``."""
        import uvicorn

        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        self.port = int(sock.getsockname()[1])
        config = uvicorn.Config(self._app(), log_config=None, access_log=False, lifespan="on", loop="asyncio")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]}, daemon=True,
                                        name="recording-proxy")
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.base_url

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            if self._thread is not None:
                self._thread.join(timeout=10)
            self._server = None

    def __enter__(self) -> RecordingProxy:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def kernel_env(settings: Settings, proxy_url: str, base: dict[str, str] | None = None,
               key: str = PROXY_KEY) -> dict[str, str]:
    """The environment of a recording kernel: the teacher's, without keys, endpoints or ``.env``, pointed at the
    proxy with this run's proxy key and the same model (and, on Azure, the same deployment and api-version)."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if k not in SECRET_VARS}
    env.update(VISION_DOTENV="off", VISION_MODEL=settings.model, VISION_TIMEOUT=str(settings.timeout),
               VISION_MAX_RETRIES=str(settings.max_retries))
    if settings.provider == "azure":
        env.update(VISION_PROVIDER="azure", AZURE_OPENAI_ENDPOINT=proxy_url, AZURE_OPENAI_API_KEY=key,
                   AZURE_OPENAI_API_VERSION=settings.azure_api_version or "",
                   AZURE_OPENAI_DEPLOYMENT=settings.azure_deployment or "")
    else:
        env.update(VISION_PROVIDER="compatible", OPENAI_BASE_URL=proxy_url + "/v1", OPENAI_API_KEY=key)
    if settings.images_base_url:
        env["COURSE_IMAGES_BASE_URL"] = settings.images_base_url
    return env


def _scrubbed(text: str, settings: Settings) -> str:
    for secret in settings.secrets():
        if secret and len(secret) >= 4:
            text = text.replace(secret, mask_secret(secret))
    return text


def record(paths: Sequence[Path], out: Path, settings: Settings,
           run: Callable[[Path, dict[str, str]], tuple[float, int]]) -> dict[str, Any]:
    """Run ``paths`` through a :class:`RecordingProxy` to the provider of ``settings`` (``run(path, env)`` executes
    one notebook, without saving it) and write the recording to ``out``; return a summary.

    >>> record(notebook_paths(["05"]), Path("recordings/class.json"), load_settings(), run)   # doctest: +SKIP
    {'answers': 6, 'seconds': 41.2, 'bytes': 18234, ...}
    """
    started = time.perf_counter()
    errors: dict[str, int] = {}
    with RecordingProxy(settings, aliases=image_aliases(settings)) as proxy:
        for path in paths:
            proxy.notebook = path.name
            errors[path.name] = run(path, kernel_env(settings, proxy.base_url, key=proxy.key))[1]
    summary = write_recording(proxy, [p.name for p in paths], out, error_cells=errors)
    return {**summary, "seconds": round(time.perf_counter() - started, 1)}


def write_recording(proxy: RecordingProxy, notebooks: list[str], out: Path, *,
                    error_cells: dict[str, int] | None = None) -> dict[str, Any]:
    """Write what ``proxy`` recorded to ``out`` (JSON, no key: the settings' secrets are checked for and
    masked); return ``{"out", "answers", "failed", "error_cells", "bytes"}``."""
    settings = proxy.settings
    course = course_image_names()
    images: dict[str, str] = {}
    for entry in proxy.entries:
        for message in entry["request"]["messages"]:
            for part in message.get("content") if isinstance(message.get("content"), list) else []:
                if isinstance(part, dict) and part.get("type") == "image":
                    digest = part.get("sha256") or part.get("url_sha256", "")
                    images.setdefault(digest, course.get(digest) or part.get("url") or "(an image sent inline)")
    endpoint = settings.azure_endpoint if settings.provider == "azure" else settings.base_url
    document = {
        "format": FORMAT,
        "about": "Answers of a real model to the course's requests, recorded with `python -m helpers.teacher "
                 "record` and replayed offline with VISION_RECORDING=<this file> (helpers/offline/replay.py). "
                 "Images are named by the SHA-256 of their bytes; no key is stored.",
        "model": settings.model, "provider": settings.provider, "endpoint": redact_url(host_of(endpoint or "")),
        "recorded": dt.datetime.now(dt.timezone.utc).date().isoformat(),
        "course_version": course_version(notebooks), "notebooks": notebooks,
        "failed_requests": dict(proxy.failures), "error_cells": error_cells or {},
        "images": dict(sorted(images.items(), key=lambda kv: kv[1])), "image_aliases": proxy.aliases,
        "entries": proxy.entries,
    }
    text = _scrubbed(json.dumps(document, indent=1, ensure_ascii=False), settings) + "\n"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return {"out": str(out), "answers": len(proxy.entries), "failed": dict(proxy.failures),
            "error_cells": error_cells or {}, "bytes": len(text.encode("utf-8"))}
