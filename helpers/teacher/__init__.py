"""Teacher and maintainer tools, apart from what learners import: re-execute the notebooks in place (with outputs
and execution counts), record a real model's answers for replay, and price a class.

What an author or a teacher runs after changing a lesson or a helper, or after switching to a real model::

    python -m helpers.teacher execute                 # every notebook, with the configured provider
    python -m helpers.teacher execute 04 06           # only notebooks whose names start with 04 or 06
    python -m helpers.teacher execute --offline       # force the offline backend (what nbval checks)
    python -m helpers.teacher list
    python -m helpers.teacher record 05 09 --out recordings/class.json   # a real model's answers, for replay
    python -m helpers.teacher cost --learners 30 [--model gpt-4.1-mini]  # tokens and dollars for a class

The stored outputs are what `pytest` (nbval) compares against, so commit notebooks executed with
``--offline``; an execution against a real model is for reading, not for committing. ``record`` runs notebooks
against your provider through a recording proxy without saving them (:mod:`helpers.teacher.recording`); learners replay the
file with ``VISION_RECORDING`` (:mod:`helpers.offline.replay`). ``cost`` prices a full run (:mod:`helpers.teacher.class_cost`).

``python -m helpers.course ...``, the older spelling that notebook 00 and the offline server's messages still name,
runs the same commands (:mod:`helpers.course`).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from helpers.config import load_settings
from helpers.errors import CourseError
from helpers.local import REPO_ROOT
from helpers.teacher.class_cost import main as cost_main
from helpers.teacher.recording import record

NOTEBOOKS_DIR = REPO_ROOT / "notebooks"


def notebook_paths(prefixes: Iterable[str] = ()) -> list[Path]:
    """The course notebooks in order, optionally only those whose names start with one of ``prefixes``.

    >>> [p.name for p in notebook_paths(["00"])]  # doctest: +SKIP
    ['00_setup.ipynb']
    """
    prefixes = tuple(prefixes)
    paths = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if prefixes:
        paths = [p for p in paths if p.name.startswith(prefixes)]
    return paths


def execute_notebook(path: Path, *, timeout: int = 600, kernel_name: str = "python3") -> float:
    """Execute one notebook in place (cwd = its folder, like Jupyter) and return the seconds it took."""
    return run_notebook(path, timeout=timeout, kernel_name=kernel_name, write=True)[0]


def run_notebook(path: Path, *, env: dict[str, str] | None = None, timeout: int = 600, kernel_name: str = "python3",
                 write: bool = False, allow_errors: bool = False) -> tuple[float, int]:
    """Execute one notebook (cwd = its folder) in a kernel with environment ``env`` (default: this process's);
    return ``(seconds, cells that ended in an error)``. ``write=True`` saves it in place.

    >>> run_notebook(NOTEBOOKS_DIR / "00_setup.ipynb", env={**os.environ, "VISION_PROVIDER": "offline"})  # doctest: +SKIP
    (11.2, 0)
    """
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, record_timing=False,
                            allow_errors=allow_errors, resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute(**({"env": env} if env is not None else {}))
    seconds = time.perf_counter() - started
    if write:
        nbformat.write(nb, path)
    errors = sum(1 for cell in nb.cells if any(o.get("output_type") == "error" for o in cell.get("outputs", [])))
    return seconds, errors


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.teacher", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="re-execute notebooks in place")
    run.add_argument("prefixes", nargs="*", help="only notebooks starting with these, e.g. 04 06")
    run.add_argument("--offline", action="store_true",
                     help="force the offline backend and ignore .env (what the committed outputs use)")
    run.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    sub.add_parser("list", help="list the notebooks in order")
    rec = sub.add_parser("record", help="run notebooks against your provider and record its answers for replay")
    rec.add_argument("prefixes", nargs="*", help="only notebooks starting with these, e.g. 05 09 (default: all)")
    rec.add_argument("--out", type=Path, default=REPO_ROOT / "recordings" / "class.json",
                     help="the recording to write (default recordings/class.json)")
    rec.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    cost = sub.add_parser("cost", help="tokens and dollars a full run of the notebooks costs, for a class")
    cost.add_argument("prefixes", nargs="*", help="only notebooks starting with these (default: all)")
    cost.add_argument("--learners", type=int, default=1, help="learners in the class (default 1)")
    cost.add_argument("--model", default=None, help="model to price (default: VISION_MODEL, else the course default)")
    cost.add_argument("--refresh", action="store_true", help="re-run the notebooks instead of using the cached counts")
    args = parser.parse_args(argv)

    if args.command == "list":
        for path in notebook_paths():
            print(path.name)
        return 0
    if args.command == "record":
        return _record(args)
    if args.command == "cost":
        return cost_main(notebook_paths(args.prefixes), lambda path, env: run_notebook(path, env=env, allow_errors=True),
                         learners=args.learners, model=args.model, refresh=args.refresh)

    if args.offline:
        # Same isolation as the test session: no keys, no .env, offline provider (see conftest.py).
        import runpy

        runpy.run_path(str(REPO_ROOT / "conftest.py"))

    paths = notebook_paths(args.prefixes)
    if not paths:
        print(f"No notebooks match {args.prefixes!r} in {NOTEBOOKS_DIR}.", file=sys.stderr)
        return 1
    provider = os.environ.get("VISION_PROVIDER", "(inferred from .env)")
    print(f"Executing {len(paths)} notebook(s) with provider {provider}")
    for path in paths:
        seconds = execute_notebook(path, timeout=args.timeout)
        print(f"  {path.name}: {seconds:.1f} s")
    return 0


def _record(args: argparse.Namespace) -> int:
    """``record``: the notebooks through a recording proxy to the configured provider (:mod:`helpers.teacher.recording`)."""
    paths = notebook_paths(args.prefixes)
    if not paths:
        print(f"No notebooks match {args.prefixes!r} in {NOTEBOOKS_DIR}.", file=sys.stderr)
        return 1
    try:
        settings = load_settings()
        print(f"Recording {len(paths)} notebook(s) with {settings.provider} · model {settings.model}")
        summary = record(paths, args.out, settings,
                         lambda path, env: run_notebook(path, env=env, timeout=args.timeout, allow_errors=True))
    except CourseError as err:
        print(err, file=sys.stderr)
        return 2
    print(f"Wrote {summary['out']}: {summary['answers']} answers, {summary['bytes'] / 1024:.0f} KB, "
          f"{summary['seconds']:.0f} s.")
    if summary["failed"]:
        print(f"Not recorded (failed at the provider): {summary['failed']}")
    broken = {name: n for name, n in summary["error_cells"].items() if n}
    if broken:
        print(f"Cells that ended in an error (their requests are not in the recording): {broken}")
    print(f"Learners replay it with VISION_RECORDING={args.out} in .env (no key needed).")
    return 0
