"""The offline backend: a real local HTTP server that speaks the Chat Completions protocol.

No key, no network, no language model: it answers from local image analysis (OCR, faces, colours, sizes) and
counts tokens exactly as the requested model would. ``helpers.client`` starts it on demand; you can also run
it alone::

    python -m helpers.offline --port 8000

The rest of the course reaches it through this module only: :func:`ensure_server` (start it once, get its URL),
:func:`stop_server`, :func:`server_url`. Its configuration is one :class:`~helpers.config.ServerSettings`, read
once from the environment by :mod:`helpers.config` (for the client, which passes it in here) or by the command line
of ``python -m helpers.offline``; no server module reads the environment. A teacher's recording is one file
format, :mod:`helpers.recordings`, shared with the recording proxy; ``replay`` answers from it.

>>> from helpers.offline import ensure_server, ServerSettings
>>> ensure_server(ServerSettings(port=0))                                # doctest: +SKIP
'http://127.0.0.1:PORT'

Built on Starlette + uvicorn, one module per concept: ``app`` (routes, request bodies, worker threads),
``protocol`` (validation with the SDK's types, output formats), ``completions`` (chat.completion objects,
``usage``), ``responses`` (the Responses API and ``/v1/files``), ``stores`` (learners' own files and stored
responses, byte budgets), ``backend`` (images in, answer out), ``analysis``
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

from helpers.config import ServerSettings
from helpers.errors import ConfigurationError
from helpers.notices import notify
from helpers.recordings import load_recording

if TYPE_CHECKING:  # pragma: no cover - typing only
    from helpers.offline.server import OfflineServer

__all__ = ["OfflineServer", "ServerSettings", "ensure_server", "server_url", "stop_server"]

_LOCK = threading.Lock()
_SERVER: OfflineServer | None = None
_URL: str | None = None


def __getattr__(name: str) -> Any:
    # OfflineServer is imported on first use, so `import helpers.offline` stays cheap.
    if name == "OfflineServer":
        from helpers.offline.server import OfflineServer

        return OfflineServer
    raise AttributeError(f"module 'helpers.offline' has no attribute {name!r}")


def _is_offline_backend(url: str) -> bool:
    """True if an offline backend (perhaps ``python -m helpers.offline`` in a terminal) already answers at url."""
    request = urllib.request.Request(url + "/v1/models", headers={"Authorization": "Bearer offline"})
    try:
        with urllib.request.urlopen(request, timeout=2) as response:  # noqa: S310 - loopback URL we built
            server = response.headers.get("Server", "")
            return server.startswith("vision-offline/") and "data" in json.loads(response.read())
    except (OSError, ValueError):
        return False


def ensure_server(settings: ServerSettings | None = None) -> str:
    """Start this process's offline backend once (thread-safe) and return its base URL ``http://127.0.0.1:PORT``.

    ``settings`` (default: read from ``os.environ`` now) matter for the first start in a process, except the
    recording, which a running backend takes on (None: none). If ``settings.port`` is taken by another offline
    backend (e.g. ``python -m helpers.offline --port 8000`` in a terminal), that one is used (it replays only
    the recording it was started with: a recording asked for here is then announced as not replayed). The server
    runs on daemon threads and is stopped at interpreter exit. The OpenAI routes are under ``/v1``.

    >>> url = ensure_server()                                             # doctest: +SKIP
    >>> url == ensure_server()                                            # doctest: +SKIP
    True

    Taught in notebooks/00_setup.ipynb (``helpers.client`` calls it for you).
    """
    global _SERVER, _URL
    given = settings is not None
    settings = settings if settings is not None else ServerSettings.from_environ(os.environ)
    with _LOCK:
        if _URL is None or (_SERVER is not None and not _SERVER.running):
            _SERVER, _URL = _start(settings)
        server, url = _SERVER, _URL
    if server is not None:
        if given:
            server.state.backend.recording = load_recording(settings.recording) if settings.recording else None
    elif settings.recording:
        notify(f"VISION_RECORDING is set, but the offline backend at {url.removeprefix('http://')} is another "
               "process: start it with `python -m helpers.offline --recording FILE` to replay the recording.")
    return url


def _start(settings: ServerSettings) -> tuple[OfflineServer | None, str]:
    from helpers.offline.server import OfflineServer

    server = OfflineServer(port=settings.port, settings=settings)
    try:
        url = server.start()
    except OSError as err:
        existing = f"http://127.0.0.1:{settings.port}"
        if err.errno == errno.EADDRINUSE and settings.port and _is_offline_backend(existing):
            return None, existing
        raise ConfigurationError(f"The offline backend cannot listen on port {settings.port} ({err.strerror}).",
                                 fix="set VISION_OFFLINE_PORT=0 (any free port) or free that port.") from None
    atexit.register(server.stop)
    return server, url


def server_url() -> str | None:
    """The URL of the backend :func:`ensure_server` started or found, or None before it ran."""
    with _LOCK:
        return _URL


def stop_server() -> None:
    """Stop the backend started by :func:`ensure_server` (a later ``ensure_server()`` starts a new one)."""
    global _SERVER, _URL
    with _LOCK:
        server, _SERVER, _URL = _SERVER, None, None
    if server is not None:
        server.stop()

