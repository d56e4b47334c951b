"""The offline backend as a running server: uvicorn (HTTP/1.1 parsing by h11) serving :mod:`helpers.offline.app`
on a background thread, with OpenAI-shaped JSON even for requests too broken to reach the application.

>>> from helpers.offline.server import OfflineServer
>>> with OfflineServer(warm_ocr=False) as server:                      # doctest: +SKIP
...     print(server.base_url)
http://127.0.0.1:PORT

Routes: :mod:`helpers.offline.app`; validation and errors: :mod:`helpers.offline.protocol`; answers and
``usage``: :mod:`helpers.offline.completions` and :mod:`helpers.offline.backend`; downloads:
:mod:`helpers.offline.fetch`; fault injection: :mod:`helpers.offline.faults`.
"""

from __future__ import annotations

import asyncio
import io
import ipaddress
import logging
import os
import signal
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from pathlib import Path

import h11
import uvicorn
from PIL import Image, ImageDraw
from uvicorn.protocols.http.h11_impl import H11Protocol

from helpers import ocr
from helpers.config import ServerSettings
from helpers.local import IMAGES_DIR, is_loopback
from helpers.offline import analysis
from helpers.offline.app import DEFAULT_READ_TIMEOUT, MAX_BODY_BYTES, SERVER_NAME, ServerState, build_app
from helpers.offline.backend import ChatBackend
from helpers.offline.classroom import DEFAULT_MAX_QUEUED, Classroom, FairScheduler
from helpers.offline.completions import json_bytes
from helpers.offline.fetch import DEFAULT_DOWNLOAD_TIMEOUT, DOWNLOAD_DEADLINE, DownloadPolicy
from helpers.offline.protocol import ApiError
from helpers.offline.responses import FileStore, ResponseStore
from helpers.offline.stores import file_budget, response_budget
from helpers.recordings import load_recording

__all__ = ["IMAGES_DIR", "OfflineServer"]

log = logging.getLogger("helpers.offline")
DEFAULT_IDLE_TIMEOUT = 75.0      # seconds an idle keep-alive connection stays open
#: Seconds for a request's line and headers to arrive (from the connection, or from the request's first byte on a
#: kept-alive one); a client dripping header lines is cut off after it (Apache's mod_reqtimeout default: 20 s).
DEFAULT_HEADER_TIMEOUT = 10.0
#: Open connections one client address may hold; beyond it a new one is closed at once. The OpenAI SDK opens at
#: most 20 per client (httpx's default pool); 30 learners on one JupyterHub share its address, hence 256.
DEFAULT_MAX_CONNECTIONS_PER_ADDRESS = 256
DRAIN_SECONDS = 5.0              # after an early answer (413...), the rest of a body is discarded for this long


class _Protocol(H11Protocol):
    """uvicorn's h11 protocol, with these additions: malformed or cut-short requests get a JSON error (not plain
    text, not a silent close); the application may close a connection without answering (``offline.abort``, the
    ``timeout`` fault); and a body that keeps arriving after an early answer (a 413) is discarded for at most
    ``DRAIN_SECONDS``."""

    header_timeout = DEFAULT_HEADER_TIMEOUT
    max_per_address = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS
    per_address: Counter[str] = Counter()     # open connections by client address (one Counter per server)

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.logger = logging.getLogger("helpers.offline.http")      # not uvicorn's, not printed by default
        self._head_timer: asyncio.TimerHandle | None = None
        self._counted: str | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        """Count the connection against its address (refused at once beyond ``max_per_address``: a client
        holding hundreds of connections would exhaust the server's file descriptors) and start the header
        deadline."""
        super().connection_made(transport)
        address = self.client[0] if self.client else "unknown"
        if self.per_address[address] >= self.max_per_address:
            self.logger.warning("offline server: refused a connection from %s (%d open)", address,
                                self.max_per_address)
            transport.abort()
            return
        self.per_address[address] += 1
        self._counted = address
        self._start_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted is not None:
            self.per_address[self._counted] -= 1
            if self.per_address[self._counted] <= 0:
                del self.per_address[self._counted]
            self._counted = None
        self._stop_head_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_timer is None and self.conn.their_state is h11.IDLE:
            self._start_head_timer()        # a new request on a kept-alive connection: its head has a deadline too
        super().data_received(data)

    def _start_head_timer(self) -> None:
        self._stop_head_timer()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_too_slow)

    def _stop_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_too_slow(self) -> None:
        """The request line and headers did not all arrive within ``header_timeout`` seconds of the
        connection (or of the request's first byte): close it, whatever the client keeps dripping."""
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self.transport.close()

    def handle_events(self) -> None:
        super().handle_events()
        if self.conn.their_state is not h11.IDLE:
            self._stop_head_timer()             # the head is complete: the body has its own deadline
        if self.cycle is not None and "offline.abort" not in self.cycle.scope.setdefault("extensions", {}):
            self.cycle.scope["extensions"]["offline.abort"] = self.transport.abort

    def send_400_response(self, msg: str) -> None:
        error = ApiError(400, "The request could not be parsed as HTTP/1.1 (malformed request line, headers or "
                              "body framing).", code="invalid_request")
        body = json_bytes(error.body())
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                   (b"connection", b"close"), (b"server", SERVER_NAME.encode())]
        try:
            output = self.conn.send(h11.Response(status_code=400, headers=headers, reason=b"Bad Request"))
            output += self.conn.send(h11.Data(data=body)) + self.conn.send(h11.EndOfMessage())
        except h11.LocalProtocolError:          # h11 is already past the point of answering
            output = (b"HTTP/1.1 400 Bad Request\r\n" + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
                      + b"\r\n" + body)
        self.transport.write(output)
        self.transport.close()

    def eof_received(self) -> None:
        """The client stopped sending: a request cut short (a body shorter than announced, half a request
        line) still gets its 400 instead of a silent close."""
        unfinished = self.conn.their_state is h11.SEND_BODY or (
            self.conn.their_state is h11.IDLE and self.conn.trailing_data[0].strip())
        if unfinished and (self.cycle is None or not self.cycle.response_started):
            self.send_400_response("incomplete request")
        # After a whole request, EOF means the client went away: its work is stopped and its scheduler slot freed.
        # Decided for issue 25: a client that only half-closes (shutdown(SHUT_WR) after its request, which
        # HTTP/1.1 allows but curl, httpx, requests and the OpenAI SDK never do) looks the same on the wire as one
        # that closed its socket and left; on a shared server, freeing a departed learner's slot at once matters
        # more than answering the rare half-closing client, which gets no answer (tests/test_server_security.py).
        return None

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing() and self.conn.their_state is h11.SEND_BODY:
            self.loop.call_later(DRAIN_SECONDS, self._stop_draining)

    def _stop_draining(self) -> None:
        if self.conn.their_state is h11.SEND_BODY and not self.transport.is_closing():
            self.transport.close()


def _host_names(bound: str, extra: Iterable[str] = ()) -> object:
    """Which ``Host`` names a server bound to ``bound`` answers to: loopback names when it listens on loopback;
    otherwise also IP literals (a rebinding page cannot send one: its Host is its own domain), this computer's
    own names (``NAME``, ``NAME.local``, its FQDN) and the ``extra`` names given with ``--allow-host``; never an
    arbitrary domain (DNS rebinding).

    >>> allowed = _host_names("0.0.0.0", ["teacher.example.org"])
    >>> allowed("192.168.1.20"), allowed("teacher.example.org"), allowed("evil.example")
    (True, True, False)
    """
    names = {n.strip().lower().rstrip(".") for n in extra if n.strip()}
    if is_loopback(bound) and not names:
        return is_loopback
    short = socket.gethostname().lower()
    own = {bound.lower(), short, short.split(".")[0] + ".local", socket.getfqdn().lower()} | names

    def allowed(name: str) -> bool:
        name = name.strip("[]").lower().rstrip(".")
        try:
            ipaddress.ip_address(name)
            return not is_loopback(bound) or is_loopback(name)
        except ValueError:
            return is_loopback(name) or name in own
    return allowed


def _warm_up_image() -> bytes:
    """A small PNG with a word on it (what the warm-up analyses)."""
    img = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(img).text((20, 100), "warm up", fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class OfflineServer:
    """The offline backend on a background thread: ``start()`` returns ``http://HOST:PORT``, ``stop()`` ends it.

    ``port=0`` picks a free port. ``host`` is loopback unless you pass another address (then anyone who can
    reach it can use it, and a warning says so). ``warm_ocr`` loads the OCR models in a background thread at
    start-up so the first real answer is fast. For lessons and tests: ``read_timeout`` (seconds to wait for each
    piece of a body), ``idle_timeout``, ``max_body_bytes``, ``fault`` (a default fault spec), ``hold_seconds``
    (the ``timeout`` fault; default the settings'), ``stream_delay`` (seconds between stream events),
    ``download_timeout`` (per socket operation), ``download_deadline`` (per image, redirects included),
    ``images_dir``, ``header_timeout`` (seconds for a request's line and headers to arrive: slow clients are cut
    off), ``max_connections_per_address`` (open connections one client address may hold), and ``trusted_origins`` (``"host:port"`` origins that may be downloaded from although they
    are local: a test's own image server).

    A server shared by a room: ``classroom`` (a :class:`~helpers.offline.classroom.Classroom`: every API request
    needs its token) also turns on fair scheduling between learners (:mod:`helpers.offline.classroom`: ``workers``
    slots, default one per core; ``max_queued`` waiting requests per learner, then 429); ``allow_hosts`` adds
    ``Host`` names it answers to (see :func:`_host_names`).

    What comes from the environment arrives in ``settings`` (:class:`~helpers.config.ServerSettings`; default:
    the defaults, with the run-time switches ``VISION_OFFLINE_FAULT`` and ``VISION_OFFLINE_DOWNLOADS`` looked up
    in ``os.environ`` on every request).

    Taught in notebooks/00_setup.ipynb; started for you by ``helpers.client``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, images_dir: str | os.PathLike[str] | None = None,
                 warm_ocr: bool = True, read_timeout: float = DEFAULT_READ_TIMEOUT,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, max_body_bytes: int = MAX_BODY_BYTES,
                 fault: str | None = None, hold_seconds: float | None = None, stream_delay: float = 0.0,
                 download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT, download_deadline: float = DOWNLOAD_DEADLINE,
                 verbose: bool = False, trusted_origins: Iterable[str] = (), classroom: Classroom | None = None,
                 allow_hosts: Iterable[str] = (), workers: int | None = None,
                 max_queued: int = DEFAULT_MAX_QUEUED, settings: ServerSettings | None = None,
                 header_timeout: float = DEFAULT_HEADER_TIMEOUT,
                 max_connections_per_address: int = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS) -> None:
        self.settings = settings = settings if settings is not None else ServerSettings.defaults()
        self.host, self.requested_port = host, port
        self.images_dir = Path(images_dir) if images_dir is not None else IMAGES_DIR
        self.warm_ocr, self.idle_timeout = warm_ocr, idle_timeout
        self.header_timeout, self.max_connections_per_address = header_timeout, max_connections_per_address
        self.warmed = threading.Event()
        self.policy = DownloadPolicy(images_dir=self.images_dir, timeout=download_timeout, deadline=download_deadline,
                                     trusted_origins=frozenset(trusted_origins),
                                     downloads_allowed=settings.downloads_allowed)
        self.state = ServerState(
            backend=ChatBackend(self.policy, load_recording(settings.recording) if settings.recording else None,
                                analysis_cache=settings.analysis_cache), images_dir=self.images_dir, read_timeout=read_timeout,
            max_body_bytes=max_body_bytes, fault=fault or settings.fault, fault_switch=settings.fault_switch,
            stream_delay=stream_delay, verbose=verbose,
            hold_seconds=hold_seconds if hold_seconds is not None else settings.hold_seconds,
            host_names=_host_names(host, allow_hosts), classroom=classroom,  # type: ignore[arg-type]
            responses=ResponseStore(response_budget(settings)), files=FileStore(file_budget(settings)),
            scheduler=FairScheduler(workers, max_queued=max_queued) if classroom is not None else None)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._port: int | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._server is not None

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the offline server is not running: call start() first")
        return self._port

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (the OpenAI routes are under ``/v1``)."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def _bind(self) -> socket.socket:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # IPPROTO_TCP named explicitly: asyncio then sets TCP_NODELAY on every connection (small answers are not
        # held back 40 ms by Nagle's algorithm waiting for a delayed ACK).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            if os.name != "nt":     # rebind at once after a restart; on Windows it would let two servers share a port
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.requested_port))
            sock.listen(128)
        except OSError:
            sock.close()
            raise
        return sock

    def start(self) -> str:
        """Bind, start serving on a daemon thread, start the OCR warm-up; return :attr:`base_url`."""
        with self._lock:
            if self._server is not None:
                return self.base_url
            sock = self._bind()
            self._port = int(sock.getsockname()[1])
            self.policy.own_origins.update({(h, self._port) for h in ("127.0.0.1", "localhost", "::1", self.host)})
            self.state.stopping.clear()
            protocol = type("_ServerProtocol", (_Protocol,), {
                "header_timeout": self.header_timeout, "max_per_address": self.max_connections_per_address,
                "per_address": Counter()})
            config = uvicorn.Config(build_app(self.state), http=protocol, lifespan="off", log_config=None,
                                    access_log=False, server_header=False, headers=[("server", SERVER_NAME)],
                                    timeout_keep_alive=int(max(1, self.idle_timeout)), timeout_graceful_shutdown=1,
                                    h11_max_incomplete_event_size=64 * 1024, loop="asyncio")
            uvicorn_log = logging.getLogger("uvicorn.error")
            if uvicorn_log.level == logging.NOTSET:   # its start/stop notes are not the learner's business
                uvicorn_log.setLevel(logging.WARNING)
            server = uvicorn.Server(config)
            self._thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]},
                                            name=f"offline-server-{self._port}", daemon=True)
            self._thread.start()
            deadline = time.monotonic() + 10
            while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
                time.sleep(0.005)
            self._server = server
        if not is_loopback(self.host):
            log.warning("The offline backend listens on %s: other computers that can reach this address can use "
                        "it. Use 127.0.0.1 unless you mean to share it.", self.host)
        if self.warm_ocr:
            threading.Thread(target=self._warm, name="offline-ocr-warmup", daemon=True).start()
        else:
            self.warmed.set()
        return self.base_url

    def _warm(self) -> None:
        """Load the OCR models and run them once, then analyse one small image (face cascade, perceptual hash),
        so that the first real answer does not pay for loading them."""
        try:
            ocr.warm_up()
            analysis.analyze(_warm_up_image())
        except Exception:  # warm-up is an optimisation: a failure shows up (clearly) on the first real request
            log.debug("offline server: warm-up failed", exc_info=True)
        finally:
            self.warmed.set()

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Wait until the OCR warm-up has finished; True if it has."""
        return self.warmed.wait(timeout)

    def serve_until_stopped(self) -> int:
        """Block the calling (main) thread until Ctrl-C, SIGTERM (`kill PID`) or SIGINT (how JupyterHub stops a
        service, even one started in the background), then stop; returns the exit status, 0. For the command line
        (``python -m helpers.offline``, ``--hub``)."""
        def interrupt(signum: int, frame: object) -> None:
            raise KeyboardInterrupt

        signal.signal(signal.SIGTERM, interrupt)
        signal.signal(signal.SIGINT, interrupt)
        try:
            while True:              # time.sleep is interruptible by Ctrl-C on every platform
                time.sleep(3600)
        except KeyboardInterrupt:
            print("Stopping.", flush=True)
        finally:
            self.stop()
        return 0

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent). Held connections are released at once.

        Waits (up to a minute) for a running OCR warm-up first: ONNX Runtime aborts the whole interpreter if it is
        still loading models in a daemon thread while Python shuts down.
        """
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        self.warmed.wait(timeout=60)
        self.state.stopping.set()
        server.should_exit = True
        if thread is not None:
            thread.join(timeout=5)
        self._port = None

    def __enter__(self) -> OfflineServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        return f"OfflineServer({self.base_url if self.running else 'stopped'})"
