"""The offline backend: a real local HTTP server that speaks the Chat Completions protocol.

No key, no network, no language model: it answers from local image analysis (OCR, faces, colours, sizes) and
counts tokens exactly as the requested model would. ``helpers.client`` starts it on demand; you can also run
it alone::

    python -m helpers.offline --port 8000

>>> from helpers.offline import ensure_server
>>> ensure_server()                                                      # doctest: +SKIP
'http://127.0.0.1:PORT'

Built on Starlette + uvicorn, one module per concept: ``app`` (routes, request bodies, worker threads),
``protocol`` (validation with the SDK's types, output formats), ``completions`` (chat.completion objects,
``usage``), ``responses`` (the Responses API and ``/v1/files``), ``backend`` (images in, answer out), ``analysis``
(local image analysis, faces, its disk cache), ``colours``, ``answers`` and ``summaries`` (the answer text),
``fill`` (structured output), ``fetch`` (the download policy), ``faults`` (fault injection), ``enhancements``
(Azure's extras), ``classroom`` (access token, fair scheduling), ``replay`` (a teacher's recording), ``server``
(the running server).
"""

from __future__ import annotations

import atexit
import errno
import json
import os
import threading
import urllib.request
from typing import TYPE_CHECKING, Any

from helpers.errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover - typing only
    from helpers.offline.server import OfflineServer

__all__ = ["OfflineServer", "ensure_server", "stop_server", "use_recording"]

_LOCK = threading.Lock()
_SERVER: OfflineServer | None = None
_URL: str | None = None


def __getattr__(name: str) -> Any:
    # OfflineServer is imported on first use, so `import helpers.offline` stays cheap.
    if name == "OfflineServer":
        from helpers.offline.server import OfflineServer

        return OfflineServer
    raise AttributeError(f"module 'helpers.offline' has no attribute {name!r}")


def _port_from_env() -> int:
    raw = os.environ.get("VISION_OFFLINE_PORT", "").strip()
    if not raw:
        return 0
    try:
        port = int(raw)
        if not 0 <= port <= 65535:
            raise ValueError
    except ValueError:
        raise ConfigurationError(f"VISION_OFFLINE_PORT={raw!r} is not a port number.",
                                 fix="set it to a number between 1024 and 65535, or 0 (any free port).") from None
    return port


def _is_offline_backend(url: str) -> bool:
    """True if an offline backend (perhaps ``python -m helpers.offline`` in a terminal) already answers at url."""
    request = urllib.request.Request(url + "/v1/models", headers={"Authorization": "Bearer offline"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback URL we built
            server = response.headers.get("Server", "")
            return server.startswith("vision-offline/") and "data" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def ensure_server(port: int | None = None) -> str:
    """Start this process's offline backend once (thread-safe) and return its base URL ``http://127.0.0.1:PORT``.

    The port is ``port``, else ``VISION_OFFLINE_PORT``, else any free port. If that port is taken by another
    offline backend (e.g. ``python -m helpers.offline --port 8000`` in a terminal), that one is used. The
    server runs on daemon threads and is stopped at interpreter exit. The OpenAI routes are under ``/v1``.

    >>> url = ensure_server()                                             # doctest: +SKIP
    >>> url == ensure_server()                                            # doctest: +SKIP
    True

    Taught in notebooks/00_setup.ipynb (``helpers.client`` calls it for you).
    """
    global _SERVER, _URL
    with _LOCK:
        if _URL is not None and (_SERVER is None or _SERVER.running):
            return _URL
        from helpers.offline.server import OfflineServer

        wanted = _port_from_env() if port is None else port
        server = OfflineServer(port=wanted)
        try:
            url = server.start()
        except OSError as err:
            existing = f"http://127.0.0.1:{wanted}"
            if err.errno == errno.EADDRINUSE and wanted and _is_offline_backend(existing):
                _SERVER, _URL = None, existing
                return existing
            raise ConfigurationError(f"The offline backend cannot listen on port {wanted} ({err.strerror}).",
                                     fix="set VISION_OFFLINE_PORT=0 (any free port) or free that port.") from None
        atexit.register(server.stop)
        _SERVER, _URL = server, url
        return url


def stop_server() -> None:
    """Stop the backend started by :func:`ensure_server` (a later ``ensure_server()`` starts a new one)."""
    global _SERVER, _URL
    with _LOCK:
        server, _SERVER, _URL = _SERVER, None, None
    if server is not None:
        server.stop()


def use_recording(path: str | None) -> bool:
    """Answer from the teacher's recording at ``path`` (None: no recording) in this process's backend, started
    by :func:`ensure_server`; False if the backend in use is another process (``python -m helpers.offline``,
    which takes ``--recording FILE`` instead). ``helpers.client`` calls it with ``VISION_RECORDING``.

    >>> use_recording(None)                                              # doctest: +SKIP
    True
    """
    with _LOCK:
        server = _SERVER
    if server is None:
        return path is None
    from helpers.offline.replay import load_recording

    server.state.backend.recording = load_recording(path) if path else None
    return True
