"""Run the offline backend on its own: ``python -m helpers.offline --port 8000`` (Ctrl-C stops it).

Useful for calling it from another program, from ``curl``, or from several notebooks at once (set
``VISION_OFFLINE_PORT=8000`` and ``helpers.client`` uses this server instead of starting its own).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import time
from collections.abc import Sequence

from helpers.errors import ConfigurationError
from helpers.local import IMAGES_DIR
from helpers.models import DEFAULT_MODEL
from helpers.offline.replay import load_recording, version_warning
from helpers.offline.server import OfflineServer


def example_curl(base_url: str, model: str, image_url: str | None) -> str:
    """A curl command that asks the server about an image (or says hello without one).

    >>> print(example_curl("http://127.0.0.1:8000", "gpt-4o", None))  # doctest: +ELLIPSIS
    curl http://127.0.0.1:8000/v1/chat/completions -H "Authorization: Bearer offline" ...
    """
    content = '"Hello"'
    if image_url:
        content = ('[{"type": "text", "text": "What does it say?"}, '
                   f'{{"type": "image_url", "image_url": {{"url": "{image_url}"}}}}]')
    body = f'{{"model": "{model}", "messages": [{{"role": "user", "content": {content}}}]}}'
    return (f'curl {base_url}/v1/chat/completions -H "Authorization: Bearer offline" '
            f"-H \"Content-Type: application/json\" -d '{body}'")


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, serve until Ctrl-C, return the exit status."""
    parser = argparse.ArgumentParser(prog="python -m helpers.offline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1: this computer only)")
    parser.add_argument("--port", type=int, default=8000, help="port (default 8000; 0 = any free port)")
    parser.add_argument("--fault", default=None,
                        help="fail every request like the real service, e.g. 429, 503, timeout or '429;times=2'")
    parser.add_argument("--verbose", action="store_true", help="log one line per request (never headers or keys)")
    parser.add_argument("--no-warm", action="store_true", help="do not load the OCR models at start-up")
    parser.add_argument("--recording", default=None, metavar="FILE",
                        help="answer matching requests from a teacher's recording (python -m helpers.course record)")
    args = parser.parse_args(argv)

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    server = OfflineServer(args.host, args.port, warm_ocr=not args.no_warm, fault=args.fault, verbose=args.verbose)
    if args.recording:
        try:
            server.state.backend.recording = recording = load_recording(args.recording)
        except ConfigurationError as err:
            print(err, file=sys.stderr)
            return 2
        print(recording.label, flush=True)
        warning = version_warning(recording)
        if warning:
            print("Warning: " + warning, file=sys.stderr, flush=True)
    try:
        url = server.start()
    except OSError as err:
        print(f"Cannot listen on {args.host}:{args.port}: {err.strerror}. Try --port 0 or another port.",
              file=sys.stderr)
        return 1
    sample = next((p.name for p in sorted(IMAGES_DIR.glob("*")) if p.suffix.lower() in
                   (".png", ".jpg", ".jpeg", ".webp", ".gif")), None)
    print(f"Offline vision backend at {url} (OpenAI routes under {url}/v1; any API key works)", flush=True)
    print("Try:\n  " + example_curl(url, DEFAULT_MODEL, f"{url}/images/{sample}" if sample else None), flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    signal.signal(signal.SIGTERM, _interrupt)       # `kill PID` stops it as cleanly as Ctrl-C
    try:
        while True:              # time.sleep is interruptible by Ctrl-C on every platform
            time.sleep(3600)
    except KeyboardInterrupt:
        print("Stopping.", flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
