"""Course maintenance: re-execute the notebooks in place, with outputs and execution counts.

What an author runs after changing a lesson or a helper, or after switching to a real model::

    python -m helpers.course execute                 # every notebook, with the configured provider
    python -m helpers.course execute 04 06           # only notebooks whose names start with 04 or 06
    python -m helpers.course execute --offline       # force the offline backend (what nbval checks)
    python -m helpers.course list

The stored outputs are what `pytest` (nbval) compares against, so commit notebooks executed with
``--offline``; an execution against a real model is for reading, not for committing.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

from helpers.local import REPO_ROOT

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
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel_name, record_timing=False,
                            resources={"metadata": {"path": str(path.parent)}})
    started = time.perf_counter()
    client.execute()
    nbformat.write(nb, path)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.course", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("execute", help="re-execute notebooks in place")
    run.add_argument("prefixes", nargs="*", help="only notebooks starting with these, e.g. 04 06")
    run.add_argument("--offline", action="store_true",
                     help="force the offline backend and ignore .env (what the committed outputs use)")
    run.add_argument("--timeout", type=int, default=600, help="seconds allowed per cell (default 600)")
    sub.add_parser("list", help="list the notebooks in order")
    args = parser.parse_args(argv)

    if args.command == "list":
        for path in notebook_paths():
            print(path.name)
        return 0

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


if __name__ == "__main__":
    raise SystemExit(main())
