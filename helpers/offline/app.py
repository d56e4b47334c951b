"""The offline backend's routes, as a Starlette (ASGI) application.

======  ===================================================================  =====================================
method  path                                                                 auth
======  ===================================================================  =====================================
POST    ``/v1/chat/completions``                                             ``Authorization: Bearer <any key>``
POST    ``/v1/responses`` (:mod:`helpers.offline.responses`)                 ``Authorization: Bearer <any key>``
POST    ``/v1/responses/input_tokens`` (what ``usage.input_tokens`` bills)    ``Authorization: Bearer <any key>``
GET     ``/v1/responses/{id}`` (+ DELETE), ``.../input_items``; POST ``.../cancel``  ``Authorization: Bearer <any key>``
POST    ``/v1/files``; GET ``/v1/files``, ``/v1/files/{id}`` (+ DELETE), ``.../content``  Bearer (in memory)
any     ``/openai/v1/...``: all of the above, Azure's v1 route (``model``: a deployment)  ``api-key`` or Bearer
POST    ``/openai/deployments/{deployment}/chat/completions?api-version=``   ``api-key: <any key>`` (or Bearer)
POST    ``/openai/deployments/{deployment}/extensions/chat/completions``     same (2023-12-01-preview spelling)
GET     ``/v1/models``, ``/v1/models/{model}``                               ``Authorization: Bearer <any key>``
GET     ``/openai/models?api-version=``                                      ``api-key: <any key>`` (or Bearer)
GET     ``/images/{file}``                                                   none (serves the repo's ``images/``)
======  ===================================================================  =====================================

Stored responses and files are each their learner's own (``scope["offline.learner"]``, set by the classroom's
key check; one owner on a server that is not a classroom): another learner's id is answered as an unknown id
(:mod:`helpers.offline.stores`, which also bounds them in bytes).

Anything else is a JSON 404 (``Invalid URL (GET /path)``); a known path with the wrong method is a 405. Errors are
OpenAI-shaped (``{"error": {"message", "type", "param", "code"}}``, see :mod:`helpers.offline.protocol`); a body
over ``max_body_bytes`` is a 413 ``request_too_large``, counted while it streams in (whatever its framing says);
a body that stalls is a 400 ``incomplete_body``. A request whose ``Host`` is not a name of this server is a 421
``invalid_host``: that is how a web page would reach it through DNS rebinding. The work of an answer runs in a
worker thread and stops when the client disconnects. Streams are server-sent events ending in ``data: [DONE]``.
A structured answer (``response_format`` json_object / json_schema, a forced tool call) carries the header
``x-offline-fill: filled=path(source),...; empty=path,...``: which fields local analysis filled and which it left
empty (:mod:`helpers.offline.fill`).

The transport side of a request (at the end of this module): its body (capped in size, bounded in time), the
worker thread that answers it, and the early hang-up, shared by every route.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import mimetypes
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import anyio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route as Path_
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from helpers import images, models, tokens
from helpers.local import is_loopback
from helpers.offline.backend import ChatBackend
from helpers.offline.classroom import Classroom, FairScheduler, Ticket, admit
from helpers.offline.completions import Completion, json_bytes
from helpers.offline.faults import FaultBook, fault_error, hold_seconds, requested_fault
from helpers.offline.fetch import Cancelled, safe_image_path
from helpers.offline.protocol import (
    ApiError,
    ChatRequest,
    Route,
    check_api_version,
    parse_chat_request,
    parse_json_body,
)
from helpers.offline.replay import SOURCE_HEADER
from helpers.offline.responses import (
    FileStore,
    ResponseStore,
    input_items_page,
    parse_upload,
    response_body,
    to_chat_payload,
)
from helpers.offline.responses import events as response_events

log = logging.getLogger("helpers.offline")
#: How a structured answer (``response_format`` or a forced tool call) was filled: ``filled=path(source),...;
#: empty=path,...`` (see :mod:`helpers.offline.fill`).
FILL_HEADER = "x-offline-fill"
T = TypeVar("T")

#: Largest request body accepted (413 above): our own cap, not a documented API number. 96 MiB bounds the memory
#: of one request; it is BELOW OpenAI's documented 512 MB payload limit (guide, checked 2026-12-02), a known
#: difference of the simulator (docs/FACTS.md section 5), and above 50 MB of images (~67 MB of base64 plus JSON).
MAX_BODY_BYTES = 96 * 1024 * 1024
DEFAULT_READ_TIMEOUT = 10.0      # seconds to wait for each piece of a request body
#: A body that keeps a connection busy must keep arriving: after ``BODY_GRACE_SECONDS`` it must average at least
#: ``MIN_BODY_RATE`` bytes a second (96 MiB may take about 6 minutes; a byte every few seconds is cut off).
BODY_GRACE_SECONDS = 30.0
MIN_BODY_RATE = 256 * 1024
SERVER_NAME = "vision-offline/1.0"
INLINE_BYTES = 256 * 1024        # bodies up to this size are parsed on the event loop (well under a millisecond)
_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using "
           "Bearer auth (i.e. Authorization: Bearer YOUR_KEY). The offline backend accepts any non-empty key, "
           "e.g. Authorization: Bearer offline.")
_AZURE_NO_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                 "key for an active subscription and use a correct regional API endpoint for your resource.")


@dataclass
class ServerState:
    """What the routes share: the backend, limits, fault settings, and the names this server answers to."""

    backend: ChatBackend
    images_dir: Path
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_body_bytes: int = MAX_BODY_BYTES
    fault: str | None = None
    hold_seconds: float = 30.0
    fault_switch: Callable[[], str | None] = lambda: None   # the settings' VISION_OFFLINE_FAULT, asked per request
    stream_delay: float = 0.0
    verbose: bool = False
    host_names: Callable[[str], bool] = is_loopback
    body_grace: float = BODY_GRACE_SECONDS        # seconds before a body must arrive at MIN_BODY_RATE
    classroom: Classroom | None = None            # a shared server's access token (helpers.offline.classroom)
    scheduler: FairScheduler | None = None        # its fair scheduling of image work between learners
    faults: FaultBook = field(default_factory=FaultBook)
    responses: ResponseStore = field(default_factory=ResponseStore)
    files: FileStore = field(default_factory=FileStore)
    stopping: threading.Event = field(default_factory=threading.Event)


def error_response(err: ApiError, request_id: str | None = None) -> Response:
    headers = dict(err.headers)
    if err.close:
        headers["Connection"] = "close"
    if request_id:
        headers["x-request-id"] = request_id
    return Response(json_bytes(err.body()), err.status, headers, media_type="application/json")


def _state(request: Request) -> ServerState:
    return request.app.state.offline


# --- routes --------------------------------------------------------------------------------------------------

def _bearer_ok(request: Request) -> bool:
    scheme, _, key = request.headers.get("authorization", "").strip().partition(" ")
    return scheme.lower() == "bearer" and bool(key.strip())


def _azure_v1(request: Request) -> bool:
    """Azure's v1 route (``https://RESOURCE.openai.azure.com/openai/v1/`` with the plain ``OpenAI()`` client):
    the body's ``model`` is the deployment name, no ``api-version`` needed."""
    return request.url.path.startswith("/openai/v1/")


def _check_key(request: Request, azure: bool) -> None:
    """Azure takes an ``api-key`` header or Bearer auth; OpenAI's routes take Bearer auth."""
    if azure and not (request.headers.get("api-key", "").strip() or _bearer_ok(request)):
        raise ApiError(401, _AZURE_NO_KEY, type=None, code="401")
    if not azure and not _bearer_ok(request):
        raise ApiError(401, _NO_KEY)


def _new_request_id(request: Request) -> tuple[str, str]:
    """``(request id, hex digits for the answer's ids)``: fresh per request, never a hash of the body."""
    digest = secrets.token_hex(32)
    request.state.request_id = "req_" + digest[32:]
    return request.state.request_id, digest


async def chat(request: Request) -> Response:
    state = _state(request)
    payload: dict[str, Any] | None = None
    deployment = request.path_params.get("deployment")
    version = check_api_version(request.query_params.get("api-version")) if deployment is not None else None
    body = await read_body(request, state)
    if deployment is not None:
        route = Route("azure", deployment, version)
    elif _azure_v1(request):
        _check_key(request, True)
        check_json_values(body)
        payload = parse_json_body(body)
        route = Route("azure", str(payload.get("model") or ""), "v1")
    else:
        route = Route("openai")
    _check_key(request, route.api == "azure")
    request_id, digest = _new_request_id(request)
    await _maybe_fault(request, state, route, body)

    learner = request.scope.get("offline.learner")
    check_json_values(body)
    if payload is None and len(body) <= INLINE_BYTES:
        payload = parse_json_body(body)
    parsed = parse_chat_request(payload, route, learner) if payload is not None else None
    if parsed is not None and not parsed.image_parts:   # a small text-only request: quicker than a thread hop
        answered, completion = parsed, state.backend.complete(parsed, digest)
    else:
        def work(cancelled: Callable[[], bool]) -> tuple[ChatRequest, Completion]:
            checked = parsed or parse_chat_request(parse_json_body(body), route, learner)
            return checked, state.backend.complete(checked, digest, cancelled)

        answered, completion = await until_disconnect(request, work, _ticket(request, state))
    stream, include_usage = answered.stream, answered.include_usage
    headers = _answer_headers(request_id, completion.fill, completion.source)
    if not stream:
        return Response(json_bytes(completion.body()), 200, headers, media_type="application/json")

    async def events() -> Any:
        for event in completion.events(include_usage):
            yield event
            if state.stream_delay:
                await asyncio.sleep(state.stream_delay)

    return StreamingResponse(events(), headers={"Cache-Control": "no-cache", **headers},
                             media_type="text/event-stream; charset=utf-8")


async def responses(request: Request) -> Response:
    """``POST /v1/responses`` (and Azure's ``/openai/responses?api-version=``, whose ``model`` is a deployment):
    translated to Chat Completions (:mod:`helpers.offline.responses`)."""
    state = _state(request)
    azure = request.url.path.startswith("/openai/")
    version = "v1" if _azure_v1(request) else (
        check_api_version(request.query_params.get("api-version")) if azure else None)
    body = await read_body(request, state)
    _check_key(request, azure)
    request_id, digest = _new_request_id(request)
    check_json_values(body)
    payload = await _off_loop(parse_json_body, body)
    route = Route("azure", str(payload.get("model") or ""), version) if azure else Route("openai")
    await _maybe_fault(request, state, route, body)
    counting = request.url.path.endswith("/input_tokens")

    stored, files = _stores(request, state)

    def count(cancelled: Callable[[], bool]) -> dict[str, Any]:
        chat_payload = to_chat_payload(payload, stored, files, counting=True)
        checked = parse_chat_request(chat_payload, route, request.scope.get("offline.learner"))
        return {"object": "response.input_tokens", "input_tokens": state.backend.count_prompt_tokens(checked,
                                                                                                    cancelled)}

    if counting:
        counted = await until_disconnect(request, count, _ticket(request, state))
        return Response(json_bytes(counted), 200, {"x-request-id": request_id}, media_type="application/json")

    def work(cancelled: Callable[[], bool]) -> dict[str, Any]:
        chat_payload = to_chat_payload(payload, stored, files)
        chat_payload.pop("stream", None)
        checked = parse_chat_request(chat_payload, route, request.scope.get("offline.learner"))
        completion = state.backend.complete(checked, digest, cancelled)    # the translation, not re-serialised
        answer = response_body(payload, completion, chat_payload["messages"], stored)
        return {"body": answer, "fill": completion.fill, "source": completion.source}

    done = await until_disconnect(request, work, _ticket(request, state))
    headers = _answer_headers(request_id, done["fill"], done["source"])
    if not payload.get("stream"):
        return Response(json_bytes(done["body"]), 200, headers, media_type="application/json")
    return StreamingResponse(iter(list(response_events(done["body"]))),
                             headers={"Cache-Control": "no-cache", **headers},
                             media_type="text/event-stream; charset=utf-8")


async def stored_response(request: Request) -> Response:
    """``GET`` / ``DELETE /v1/responses/{id}``, ``GET .../input_items``, ``POST .../cancel`` over the stored
    responses (those created without ``store: false``)."""
    state = _state(request)
    azure = request.url.path.startswith("/openai/")
    if azure and not _azure_v1(request):
        check_api_version(request.query_params.get("api-version"))
    if request.method == "POST":
        await read_body(request, state)
    _check_key(request, azure)
    response_id = request.path_params["response_id"]
    path = request.url.path
    stored = _stores(request, state)[0]
    if request.method == "DELETE":
        answer = stored.delete(response_id)
    elif path.endswith("/input_items"):
        answer = input_items_page(stored.find(response_id), request.query_params)
    elif path.endswith("/cancel"):
        stored.find(response_id)
        raise ApiError(400, "Cannot cancel a synchronous response: only responses created with background=true can "
                            "be cancelled (the offline backend answers every response synchronously).",
                       param=None, code=None)
    else:
        answer = stored.find(response_id).body
    return Response(json_bytes(answer), 200, media_type="application/json")


async def files(request: Request) -> Response:
    """``POST /v1/files`` (upload), ``GET /v1/files`` (list), ``GET`` / ``DELETE /v1/files/{id}``,
    ``GET /v1/files/{id}/content`` (:mod:`helpers.offline.responses`)."""
    state = _state(request)
    body = await read_body(request, state) if request.method == "POST" else b""
    _check_key(request, request.url.path.startswith("/openai/"))
    file_id = request.path_params.get("file_id")
    own = _stores(request, state)[1]
    if request.method == "POST":
        content_type = request.headers.get("content-type", "")
        check_upload_parts(body, content_type)
        data, filename, purpose = await _off_loop(parse_upload, body, content_type)
        answer = own.add(data, filename, purpose)
    elif file_id is None:
        answer = own.listing(request.query_params)
    elif request.method == "DELETE":
        answer = own.delete(file_id)
    elif request.url.path.endswith("/content"):
        return Response(own.data(file_id), 200, media_type="application/octet-stream")
    else:
        answer = own.info(file_id)
    return Response(json_bytes(answer), 200, media_type="application/json")


#: Most parts a ``/v1/files`` upload may have (it needs two: ``purpose`` and ``file``). Python's email parser
#: takes about 0.3 ms a part, so 40,000 tiny parts would hold a worker for seconds for nothing.
MAX_UPLOAD_PARTS = 16
_BOUNDARY = re.compile(r'boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;]{1,200}))', re.IGNORECASE)


def check_upload_parts(body: bytes, content_type: str) -> None:
    """A 400 for an upload of more than :data:`MAX_UPLOAD_PARTS` parts, counted (in C, on the bytes) before
    any parsing.

    >>> check_upload_parts(b"--b\\r\\n" * 3, "multipart/form-data; boundary=b")
    >>> check_upload_parts(b"--b\\r\\n" * 40, "multipart/form-data; boundary=b")
    Traceback (most recent call last):
    ...
    helpers.offline.protocol.ApiError: An upload has at most 16 parts ('purpose' and 'file'); this one has 39.
    """
    found = _BOUNDARY.search(content_type)
    if found is None:
        return                                  # parse_upload answers the 400 for a missing boundary
    parts = body.count(b"--" + (found.group(1) or found.group(2)).encode("latin-1", "replace")) - 1
    if parts > MAX_UPLOAD_PARTS:
        raise ApiError(400, f"An upload has at most {MAX_UPLOAD_PARTS} parts ('purpose' and 'file'); this one has "
                            f"{parts}.", code="invalid_request")


#: Most JSON values (counted as ``,`` and ``:`` separators) a request body may have. Python's JSON parser holds
#: the interpreter lock for the whole parse, so even in a worker thread a 90 MB body of 45 million numbers stopped
#: every other learner for 2.1 s (measured 2026-12-07); real requests have a few hundred values (an image is one
#: string, however large).
MAX_JSON_VALUES = 200_000


def check_json_values(body: bytes) -> None:
    """A 400 for a body with more than :data:`MAX_JSON_VALUES` separators, counted (in C, about 50 ms for 90 MB,
    on the bytes; separators inside strings count too, which only errs on the safe side) before parsing.

    >>> check_json_values(b'{"a": [1, 2]}')
    """
    if len(body) > MAX_JSON_VALUES and body.count(b",") + body.count(b":") > MAX_JSON_VALUES:
        raise ApiError(400, f"The request body has more than {MAX_JSON_VALUES} JSON values; a request to this "
                            "server needs far fewer (an image is one string). Send fewer messages or parts.",
                       code="invalid_request")


async def _off_loop(parse: Callable[..., T], body: bytes, *args: Any) -> T:
    """``parse(body, *args)``: on the event loop for a small body (well under a millisecond), in a worker thread
    for a large one (a 90 MB JSON body takes about a second to parse: other learners must not wait for it)."""
    if len(body) <= INLINE_BYTES:
        return parse(body, *args)
    return await anyio.to_thread.run_sync(parse, body, *args)


def _answer_headers(request_id: str, fill: str | None, source: str | None) -> dict[str, str]:
    """An answer's headers: its id, how a structured answer was filled, whether it was replayed."""
    headers = {"x-request-id": request_id, FILL_HEADER: fill, SOURCE_HEADER: source}
    return {name: value for name, value in headers.items() if value is not None}


def _stores(request: Request, state: ServerState) -> tuple[ResponseStore, FileStore]:
    """The stored responses and files as this request's learner sees them (their own only): the learner is
    ``scope["offline.learner"]``, set by whatever checked the request's identity (the classroom's key check
    here); None, the one owner, on a server that is not a classroom (:mod:`helpers.offline.stores`)."""
    learner = request.scope.get("offline.learner")
    return state.responses.of(learner), state.files.of(learner)


def _ticket(request: Request, state: ServerState) -> Any:
    """A classroom server's scheduler ticket for this request's learner (a 429 if their queue is full)."""
    return admit(state.scheduler, request.scope.get("offline.learner"))


async def _maybe_fault(request: Request, state: ServerState, route: Route, body: bytes) -> None:
    spec = requested_fault(request.headers.get("x-offline-fault"), state.fault, state.fault_switch())
    if spec is None or not state.faults.should_fail(spec):
        return
    if spec.kind == "timeout":
        ends = time.monotonic() + hold_seconds(spec, state.hold_seconds)
        while time.monotonic() < ends and not state.stopping.is_set():
            await asyncio.sleep(min(0.05, max(0.0, ends - time.monotonic())))
        await abort(request)
    model = route.deployment or "the model"
    if route.api == "openai":
        with contextlib.suppress(ApiError):   # only for the message; the body may be bad
            model = str(parse_json_body(body).get("model") or model)
    raise fault_error(spec, route, model)


async def list_models(request: Request) -> Response:
    azure = request.url.path.startswith("/openai/")
    if azure and not _azure_v1(request):
        check_api_version(request.query_params.get("api-version"))
    _check_key(request, azure)
    name = request.path_params.get("model")
    usable = [m for m in tokens.known_models() if models.retired_model(m) is None]
    if name is None:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "offline"} for m in usable]
        return Response(json_bytes({"object": "list", "data": data}), media_type="application/json")
    if models.retired_model(name) is not None or tokens.resolve_model(name) is None:
        raise ApiError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
    return Response(json_bytes({"id": name, "object": "model", "created": 0, "owned_by": "offline"}),
                    media_type="application/json")


def content_type_for(path: Path, data: bytes) -> str:
    """The Content-Type of a served file: sniffed for images (the bytes win over the name), else by name.

    >>> content_type_for(Path("notes.txt"), b"hello")
    'text/plain; charset=utf-8'
    """
    mime = images.sniff_mime(data)
    if mime:
        return mime
    guessed = "text/markdown" if path.suffix.lower() in (".md", ".markdown") else mimetypes.guess_type(path.name)[0]
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed == "application/json" else guessed


async def image_file(request: Request) -> Response:
    name = request.path_params["name"]
    path = safe_image_path(_state(request).images_dir, name)
    if path is None:
        raise ApiError(404, f"No file named {name[:300]!r} in the course images folder.", code="not_found")
    data = await anyio.to_thread.run_sync(path.read_bytes)
    return Response(data, 200, {"Cache-Control": "no-cache"}, media_type=content_type_for(path, data))


def _api(endpoint: Callable[[Request], Any]) -> Callable[[Request], Any]:
    """Every route answers errors as OpenAI-shaped JSON; a bug is a logged 500, never a silent hang-up."""
    async def handler(request: Request) -> Response:
        try:
            return await endpoint(request)
        except ApiError as err:
            return error_response(err, getattr(request.state, "request_id", None))
        except Cancelled:
            return Response(status_code=499)  # nobody is listening any more; the server does not send it
        except Exception:
            log.exception("offline server: unexpected error on %s %s", request.method, request.url.path)
            return error_response(ApiError(500, "The server had an error while processing your request. Sorry "
                                                "about that!", type="server_error", close=True))
    return handler


async def _not_found(request: Request, exc: Exception) -> Response:
    status = getattr(exc, "status_code", 404)
    if status == 405:
        path = request.url.path
        allowed = ("GET, POST" if path.endswith("/files") else "POST" if path.endswith(
            ("completions", "responses", "input_tokens", "cancel")) else "GET" if path.endswith(
            ("/content", "/input_items", "/models")) else "GET, DELETE")
        return error_response(ApiError(405, f"Invalid method for URL ({request.method} {request.url.path})",
                                       headers={"Allow": allowed}))
    return error_response(ApiError(404, f"Invalid URL ({request.method} {request.url.path[:300]})"))


class HostCheck:
    """Refuse requests whose ``Host`` is not a name of this server (DNS rebinding), and log one line per
    request when verbose (method, path, status, time: never headers, keys or query strings)."""

    def __init__(self, app: ASGIApp, state: ServerState) -> None:
        self.app, self.state = app, state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        started, status = time.perf_counter(), [0]

        async def tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = message["status"]
                if status[0] == 499:        # Cancelled: the client is gone, send nothing
                    return
            elif status[0] == 499:
                return
            await send(message)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        host = headers.get("host", "")
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        room = self.state.classroom
        if host and not self.state.host_names(name):
            err = ApiError(421, f"This offline backend answers only requests addressed to its own address (such as "
                                f"127.0.0.1), not to {name[:100]!r}. A web page may be trying to reach it through "
                                "DNS rebinding; if you call it yourself, use http://127.0.0.1:PORT or the address it printed "
                                "at start (a shared server accepts more names with --allow-host NAME).",
                           code="invalid_host", close=True)
            await error_response(err)(scope, receive, tracked)
        elif room is not None and scope["path"].startswith(("/v1/", "/openai/")):
            try:
                client_ip = (scope.get("client") or (None,))[0]
                checking = getattr(room, "acheck", None)     # a hub's room asks the hub (helpers.offline.hub)
                scope["offline.learner"] = (await checking(headers, client_ip) if checking is not None
                                            else room.check(headers, client_ip))
            except ApiError as err:
                await error_response(err)(scope, receive, tracked)
            else:
                await self.app(scope, receive, tracked)
        else:
            await self.app(scope, receive, tracked)
        if self.state.verbose:
            log.info("%s %s -> %s (%.0f ms)", scope["method"], scope["path"], status[0] if status[0] != 499
                     else "closed", (time.perf_counter() - started) * 1000)


def build_app(state: ServerState) -> ASGIApp:
    """The ASGI application of one offline server."""
    chat_route = _api(chat)
    routes = []
    # OpenAI's routes, the same under Azure's v1 route, and Azure's dated Responses routes (?api-version=).
    for v1 in ("/v1", "/openai/v1", "/openai"):
        routes += [Path_(v1 + "/responses", _api(responses), methods=["POST"]),
                   Path_(v1 + "/responses/input_tokens", _api(responses), methods=["POST"]),
                   Path_(v1 + "/responses/{response_id}", _api(stored_response), methods=["GET", "DELETE"]),
                   Path_(v1 + "/responses/{response_id}/input_items", _api(stored_response), methods=["GET"]),
                   Path_(v1 + "/responses/{response_id}/cancel", _api(stored_response), methods=["POST"])]
    for v1 in ("/v1", "/openai/v1"):
        routes += [Path_(v1 + "/chat/completions", chat_route, methods=["POST"]),
                   Path_(v1 + "/files", _api(files), methods=["GET", "POST"]),
                   Path_(v1 + "/files/{file_id}", _api(files), methods=["GET", "DELETE"]),
                   Path_(v1 + "/files/{file_id}/content", _api(files), methods=["GET"]),
                   Path_(v1 + "/models", _api(list_models), methods=["GET"]),
                   Path_(v1 + "/models/{model:path}", _api(list_models), methods=["GET"])]
    routes.append(Path_("/openai/models", _api(list_models), methods=["GET"]))
    for prefix in ("/openai/deployments/{deployment}/", "/openai/deployments/{deployment}/extensions/"):
        routes += [Path_(prefix + "chat/completions", chat_route, methods=["POST"]),
                   Path_(prefix + "chat/completions/", chat_route, methods=["POST"])]
    routes.append(Path_("/images/{name:path}", _api(image_file), methods=["GET"]))
    app = Starlette(routes=routes, exception_handlers={HTTPException: _not_found})
    app.router.redirect_slashes = False
    app.state.offline = state
    wrap = getattr(state.classroom, "wrap", None)       # a hub service's prefix and admins' status (.hub)
    return wrap(HostCheck(app, state), state) if wrap is not None else HostCheck(app, state)


# --- transport -------------------------------------------------------------------------------------------

__all__ = ["abort", "read_body", "until_disconnect"]



async def read_body(request: Request, state: Any) -> bytes:
    """The request body, counted against the cap as it arrives, bounded in time between pieces and in its
    average rate (:data:`MIN_BODY_RATE` after :data:`BODY_GRACE_SECONDS`: a body dripped a byte at a time within
    the per-piece timeout is cut off)."""
    declared = request.headers.get("content-length")
    if declared is not None and int(declared) > state.max_body_bytes:   # h11 has checked it is digits
        raise ApiError(413, f"Request body too large: {declared} bytes; the offline backend accepts at most "
                            f"{state.max_body_bytes} bytes. Send fewer or smaller images (downscale them, or use "
                            "URLs).", code="request_too_large")
    pieces, total, started = [], 0, time.monotonic()
    grace = getattr(state, "body_grace", BODY_GRACE_SECONDS)
    while True:
        elapsed = time.monotonic() - started
        if elapsed > grace and total < elapsed * MIN_BODY_RATE:
            raise ApiError(400, f"The request body arrived too slowly ({total} bytes in {elapsed:.0f} s; this server "
                                f"needs at least {MIN_BODY_RATE // 1024} KiB/s after the first {grace:g} s).",
                           code="incomplete_body", close=True)
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

    With a scheduler ``ticket`` (a classroom server, :mod:`helpers.offline.classroom`) the request first waits for
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
