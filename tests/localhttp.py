"""Throw-away HTTP servers on 127.0.0.1 for tests that need a real provider or website to talk to.

``serve(Handler)`` starts a threaded server and returns it; handlers derive from :class:`QuietHandler`, which
adds ``read_body`` and ``send_json``. :class:`FakeAPI` is the scripted Chat Completions provider that the chat,
client and reliability tests use: status codes, Retry-After headers, delays (timeouts) and finish_reason are
controllable, so retries and failures go through the real SDK and the real network stack, not mocks.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class QuietHandler(BaseHTTPRequestHandler):
    """A request handler that logs nothing and answers JSON; a client that hung up is not an error."""

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def read_body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def send_bytes(self, status: int, data: bytes, content_type: str = "application/json",
                   headers: dict[str, str] | None = None) -> None:
        try:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
            pass

    def send_json(self, status: int, payload: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(payload).encode(), headers=headers)


def serve(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """Start ``handler`` on a free port of 127.0.0.1 in a daemon thread; stop it with :func:`stop`."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
    return httpd


def base_url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}"


def stop(httpd: ThreadingHTTPServer) -> None:
    httpd.shutdown()
    httpd.server_close()


def completion(content: str, *, number: int = 1, model: str = "?", finish_reason: str = "stop",
               prompt_tokens: int = 1) -> dict[str, Any]:
    """A minimal, valid Chat Completions response body."""
    completion_tokens = max(1, len(content) // 4)
    return {"id": f"chatcmpl-{number}", "object": "chat.completion", "created": 0, "model": model,
            "choices": [{"index": 0, "finish_reason": finish_reason,
                         "message": {"role": "assistant", "content": content}}],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


# --- the scripted provider ------------------------------------------------------------------------

@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None                 # JSON to send instead of the default completion
    delay: float = 0.0               # seconds to wait before answering (timeouts)
    finish_reason: str = "stop"
    content: str | None = None


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any
    size: int = 0                    # bytes of the request body


class FakeAPI:
    """A threaded HTTP server on 127.0.0.1 that answers Chat Completions requests from a script.

    Default answer: 200, ``content`` "Reply N", ``usage.prompt_tokens`` = request body bytes // 4 (so sending
    fewer bytes, e.g. dropping old images, visibly costs fewer prompt tokens).
    """

    def __init__(self) -> None:
        self.requests: list[Seen] = []
        self.script: deque[Reply] = deque()
        self._lock = threading.Lock()
        api = self

        class Handler(QuietHandler):
            def do_GET(self) -> None:
                self._record(None)
                self.send_json(404, {"error": {"message": "not found", "type": "invalid_request_error",
                                               "code": None}})

            def do_POST(self) -> None:
                raw = self.read_body()
                try:
                    body = json.loads(raw)
                except json.JSONDecodeError:
                    body = raw.decode("utf-8", "replace")
                self._record(body, len(raw))
                with api._lock:
                    reply = api.script.popleft() if api.script else Reply()
                    number = len(api.requests)
                if reply.delay:
                    time.sleep(reply.delay)
                if reply.body is not None or reply.status != 200:
                    payload = reply.body if reply.body is not None else {
                        "error": {"message": f"scripted {reply.status}", "type": "server_error", "code": None}}
                    self.send_json(reply.status, payload, reply.headers)
                    return
                content = reply.content if reply.content is not None else f"Reply {number}"
                model = body.get("model") if isinstance(body, dict) else "?"
                self.send_json(200, completion(content, number=number, model=model, prompt_tokens=len(raw) // 4,
                                               finish_reason=reply.finish_reason), reply.headers)

            def _record(self, body: Any, size: int = 0) -> None:
                parts = urlsplit(self.path)
                with api._lock:
                    api.requests.append(Seen(self.command, parts.path, parse_qs(parts.query),
                                             {k.lower(): v for k, v in self.headers.items()}, body, size))

        self.server = serve(Handler)

    @property
    def url(self) -> str:
        return base_url(self.server)

    def push(self, *replies: Reply) -> None:
        self.script.extend(replies)

    @property
    def posts(self) -> list[Seen]:
        return [r for r in self.requests if r.method == "POST"]

    def close(self) -> None:
        stop(self.server)


def as_compatible_provider(monkeypatch, fake: FakeAPI, key: str, *, retries: int = 2, timeout: float = 5) -> None:
    """Point the course at ``fake`` as the ``compatible`` provider (with ``key``), and resolve the settings anew."""
    from helpers import client

    for name, value in {"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": fake.url + "/v1",
                        "OPENAI_API_KEY": key, "VISION_MAX_RETRIES": str(retries),
                        "VISION_TIMEOUT": str(timeout)}.items():
        monkeypatch.setenv(name, value)
    client.clear_clients()
