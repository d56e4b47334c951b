"""Run the offline backend on its own: ``python -m helpers.offline --port 8000`` (Ctrl-C stops it).

Useful for calling it from another program, from ``curl``, or from several notebooks at once (set
``VISION_OFFLINE_PORT=8000`` and ``helpers.client`` uses this server instead of starting its own).

On a JupyterHub: ``python -m helpers.offline --hub``, started by the hub as its service (``jupyterhub_config.py``;
``--hub --help`` for its options): learners are the hub's users.

For a room: ``python -m helpers.offline --classroom --host 0.0.0.0 --port 8000`` serves every learner from
the teacher's computer, with one key per learner (``--roster FILE`` or ``--learners N``, printed once) or one
shared access token (``--token``, else VISION_CLASSROOM_TOKEN, else a new one printed once: "trusting the room"),
and fair scheduling between learners; it prints the .env lines learners use. See docs/TEACHING.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

from helpers import ocr
from helpers.config import ServerSettings
from helpers.errors import ConfigurationError
from helpers.local import IMAGES_DIR, is_loopback
from helpers.models import DEFAULT_MODEL
from helpers.offline.classroom import (
    DEFAULT_MAX_QUEUED,
    Classroom,
    env_lines,
    generate_keys,
    keys_file,
    lan_addresses,
    load_roster,
    new_token,
)
from helpers.offline.server import OfflineServer
from helpers.recordings import load_recording, version_warning

TOKEN_VARIABLE = "VISION_CLASSROOM_TOKEN"


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


def classroom_banner(server: OfflineServer, new: str | None, names: Sequence[str],
                     keys: dict[str, str] | None = None, roster: Path | None = None) -> str:
    """What the teacher reads at start: where learners connect and the .env lines they use. ``new`` is a
    token generated just now (shown this once); a token the teacher chose is never printed. ``keys``: the
    per-learner keys issued just now (``{name: key}``, shown this once, one block of .env lines each)."""
    scheduler = server.state.scheduler
    hosts = (lan_addresses() + list(names)) if server.host in ("0.0.0.0", "::") else [server.host, *names]
    hosts = hosts or ["THIS-COMPUTER-IP"]
    room = server.state.classroom
    what = "its learner's own key" if room is not None and room.per_learner else "the access token"
    lines = [f"Classroom server (offline backend) on {server.host}:{server.port}: every request needs {what}; "
             + (f"image work is shared fairly, {scheduler.workers} at a time, at most "
                f"{scheduler.max_queued} waiting per learner." if scheduler else "")]
    if room is not None and room.per_learner:
        kept = (f"only their digests are kept, in {keys_file(roster)}; revoke a key by removing the name from "
                f"{roster} and restarting" if roster else "they are kept in memory only, until this server stops")
        lines.append(f"One key per learner ({len(keys or {})} issued now, shown once; {kept}).")
        if is_loopback(server.host):
            lines.append("It listens on this computer only (learners on other computers: --host 0.0.0.0).")
        if hosts[1:]:
            lines.append("Learners on other networks replace the address with: " + ", ".join(hosts[1:]))
        lines.append("Hand each learner their own lines for .env (then they restart the kernel):")
        for name, key in (keys or {}).items():
            lines += ["", f"# {name}", env_lines(hosts[0], server.port, key, own_key=True)]
        lines.append("")
        lines.append(f"Check from a learner's computer: curl http://{hosts[0]}:{server.port}/v1/models -H "
                     "\"Authorization: Bearer THEIR-KEY\" (a firewall must allow TCP port "
                     f"{server.port} in; docs/TEACHING.md).")
        return "\n".join(lines)
    lines.append("Shared token: trusting the room (anyone with it can use any name; --roster gives each learner "
                 "their own key).")
    if new is not None:
        lines.append(f"Access token (shown once, not stored; pass --token or {TOKEN_VARIABLE} to reuse it): {new}")
    else:
        lines.append(f"Access token: the one you set with --token or {TOKEN_VARIABLE} (not shown).")
    if is_loopback(server.host):
        lines.append("It listens on this computer only (learners on other computers: --host 0.0.0.0).")
    lines.append("Learners put these lines in .env (YOUR-NAME: their own name, so the server can share fairly), "
                 "then restart the kernel:")
    for host in hosts:
        lines.append("")
        lines.append(env_lines(host, server.port, new))
    lines.append("")
    lines.append(f"Check from a learner's computer: curl http://{hosts[0]}:{server.port}/v1/models -H "
                 "\"Authorization: Bearer TOKEN\" (a firewall must allow TCP port "
                 f"{server.port} in; docs/TEACHING.md).")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line, serve until Ctrl-C, return the exit status."""
    arguments = list(sys.argv[1:] if argv is None else argv)
    if not ocr.memory_arena_chosen():
        # A server of its own reads a class's photos: ONNX Runtime's memory arena buys ~20% less CPU per page for
        # ~0.2 GB per engine (helpers/ocr.py); a learner's kernel, where memory limits a hub's class, keeps it off.
        ocr.use_memory_arena()
    if "--hub" in arguments:        # the course backend as a JupyterHub service (helpers/offline/hub.py)
        from helpers.offline import hub

        return hub.main([a for a in arguments if a != "--hub"], os.environ)
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
    room = parser.add_argument_group("classroom (one server for a room; docs/TEACHING.md)")
    room.add_argument("--classroom", action="store_true",
                      help="require an access token and share the work fairly between learners")
    room.add_argument("--token", default=None, help="the access token (at least 12 characters); prefer setting "
                      f"{TOKEN_VARIABLE} (a command line is visible to other users); neither: a new one is printed")
    room.add_argument("--roster", default=None, metavar="FILE",
                      help="one key per learner: FILE lists learner names, one per line (keys are printed once; "
                      "their digests kept in FILE.keys; remove a name and restart to revoke)")
    room.add_argument("--learners", type=int, default=None, metavar="N",
                      help="one key per learner for N learners named learner-01... (printed once, not stored)")
    room.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                      help="another host name learners use to reach this server (repeatable), e.g. a DNS name")
    room.add_argument("--workers", type=int, default=None,
                      help="image analyses run at once (default: one per core)")
    room.add_argument("--max-queued", type=int, default=DEFAULT_MAX_QUEUED,
                      help=f"requests one learner may have waiting before a 429 (default {DEFAULT_MAX_QUEUED})")
    args = parser.parse_args(argv)
    classroom, shown_token, issued, roster = None, None, None, None
    if args.classroom and (args.roster or args.learners is not None):
        if args.token:
            print("--token and --roster/--learners exclude each other.", file=sys.stderr)
            return 2
        if args.roster and args.learners is not None:
            print("Give either --roster FILE or --learners N.", file=sys.stderr)
            return 2
        try:
            if args.roster:
                roster = Path(args.roster)
                classroom, issued = load_roster(roster)
            else:
                classroom, issued = generate_keys(args.learners)
        except (OSError, ValueError) as err:
            print(f"Cannot start the classroom server: {err}.", file=sys.stderr)
            return 2
    elif args.classroom:
        token = args.token or os.environ.get(TOKEN_VARIABLE, "").strip()
        if not token:
            token = shown_token = new_token()
        try:
            classroom = Classroom(token)
        except ValueError as err:
            print(f"Cannot start the classroom server: {err}. Fix --token or {TOKEN_VARIABLE}, or leave both "
                  "unset for a new token.", file=sys.stderr)
            return 2
        del token
    elif args.token or args.allow_host or args.workers or args.roster or args.learners is not None:
        print("--token, --roster, --learners, --allow-host and --workers need --classroom.", file=sys.stderr)
        return 2
    if args.workers is not None and args.workers < 1 or args.max_queued < 0:
        print("--workers must be at least 1 and --max-queued at least 0.", file=sys.stderr)
        return 2

    if args.verbose:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    try:   # the environment is read here, once: the server receives what it says as its settings
        recording = load_recording(args.recording) if args.recording else None
        settings = replace(ServerSettings.from_environ(os.environ, recording=args.recording), port=args.port,
                           fault=args.fault)
    except ConfigurationError as err:
        print(err, file=sys.stderr)
        return 2
    server = OfflineServer(args.host, args.port, warm_ocr=not args.no_warm, verbose=args.verbose,
                           classroom=classroom, allow_hosts=args.allow_host, workers=args.workers,
                           max_queued=args.max_queued, settings=settings)
    if recording is not None:
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
    if classroom is not None:
        print(classroom_banner(server, shown_token, args.allow_host, issued, roster), flush=True)
    else:
        print(f"Offline vision backend at {url} (OpenAI routes under {url}/v1; any API key works)", flush=True)
        print("Try:\n  " + example_curl(url, DEFAULT_MODEL, f"{url}/images/{sample}" if sample else None),
              flush=True)
    print("Press Ctrl-C to stop.", flush=True)
    return server.serve_until_stopped()             # Ctrl-C or `kill PID`


if __name__ == "__main__":
    raise SystemExit(main())
