"""Does pip find a wheel for every requirement on each Python and platform the course supports? (issue 19)

For each CPython version (3.10-3.14) and platform (Linux x86_64, macOS arm64 and x86_64, Windows x86_64) this runs
pip's own resolver, the way a learner's ``pip install -r requirements.txt`` would, without installing anything::

    pip install --dry-run --ignore-installed --only-binary=:all: --python-version 3.13 \\
        --platform win_amd64 --target <tmp> --report <json> -r <requirements without the -e . line>

``--only-binary=:all:`` makes it fail where only a source distribution exists (a learner without a compiler gets
stuck there), and ``Requires-Python`` is checked against the target version, so a release that drops a Python
(as ``rapidocr_onnxruntime`` 1.4 did for 3.13) fails here the day it appears. ``requirements-teacher.txt`` is
checked together with ``requirements.txt``, as teachers install both.

What pip cannot do from one machine: environment markers (``; sys_platform == "win32"``,
``; python_version < "3.11"``) are evaluated for the Python running this script, not for the target, so a
dependency that only another platform or version pulls in is not checked (pip's ``--platform`` and
``--python-version`` only choose which wheel tags and ``Requires-Python`` are acceptable). Wheel tags and
``Requires-Python`` of everything else are.

Platforms, as the sets of wheel tags pip accepts there (pip expands each macOS tag to older macOS versions and
universal2 wheels):

- ``linux-x86_64``: glibc 2.28 or newer (manylinux_2_28 and older manylinux tags: Debian 10+, Ubuntu 20.04+,
  RHEL 8+);
- ``macos-arm64``: macOS 14 (Sonoma) or newer on Apple silicon;
- ``macos-x86_64``: macOS 13 (Ventura) or newer on Intel; the last macOS releases for Intel Macs;
- ``windows-x86_64``: 64-bit Windows.

Run: ``python scripts/check_wheels.py`` (about 1-3 minutes; needs the package index). Prints a table (and the
resolved versions of a few packages that matter), then every failure's pip message; exits 1 if any combination
fails. ``--python 3.14 --platform macos-x86_64`` narrows it down; ``--requirements FILE`` checks other files.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

PYTHONS = ("3.10", "3.11", "3.12", "3.13", "3.14")

#: The wheel platform tags a machine of each kind accepts (pip's --platform, repeated).
PLATFORMS: dict[str, tuple[str, ...]] = {
    "linux-x86_64": tuple(f"manylinux_2_{minor}_x86_64" for minor in range(28, 4, -1))
    + ("manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64"),
    "macos-arm64": ("macosx_14_0_arm64",),
    "macos-x86_64": ("macosx_13_0_x86_64",),
    "windows-x86_64": ("win_amd64",),
}

#: Requirement sets: a name and the files installed together.
REQUIREMENT_SETS: dict[str, tuple[str, ...]] = {
    "learners": ("requirements.txt",),
    "teachers": ("requirements.txt", "requirements-teacher.txt"),
}

#: Requirements that have no wheel at all for a platform: left out of that platform's check, so everything else
#: is still checked there. pip builds them from source on such a machine. Checked 2026-12-07 on PyPI.
SOURCE_ONLY: dict[str, dict[str, str]] = {
    "macos-x86_64": {"bpe-openai": "no macOS x86_64 wheel in any release (0.1.0-0.1.4 ship Linux, Windows and "
                                   "macOS arm64 wheels): pip builds its source distribution, which needs Rust"},
}

#: Combinations the course does not support, and the requirement that has no wheel there. Each is still run: it
#: must fail on that requirement (any other failure is reported), and it is reported when it starts to resolve.
UNSUPPORTED: dict[tuple[str, str], tuple[str, str]] = {
    ("3.14", "macos-x86_64"): ("onnxruntime", "its last macOS x86_64 wheels are 1.23.2, for CPython 3.10-3.13 "
                                              "(1.24 and later ship macOS arm64 only)"),
}

#: Packages whose resolved versions are printed under the table (the ones with native wheels that matter most).
SHOWN = ("onnxruntime", "rapidocr", "opencv-python-headless", "numpy", "av", "otter-grader")


def requirement_lines(files: tuple[str, ...]) -> list[str]:
    """The requirement lines of ``files`` (comments and the editable ``-e .`` line of the course dropped)."""
    lines = []
    for name in files:
        for raw in (REPO / name).read_text(encoding="utf-8").splitlines():
            line = raw.split(" #", 1)[0].strip()
            if not line or line.startswith("#"):
                continue
            if line.startswith(("-e ", "--editable")):
                continue   # the course's own helpers package: pure Python, built from the repository
            if line.startswith("-r "):
                continue   # the files are listed explicitly in REQUIREMENT_SETS
            lines.append(line)
    return lines


def _name(line: str) -> str:
    return re.split(r"[<>=!~;\[ ]", line, maxsplit=1)[0].strip().lower().replace("_", "-")


def check(lines: list[str], python: str, platform: str, workdir: Path) -> tuple[bool, dict[str, str], str]:
    """Run pip's dry run for one combination: (resolved?, {package: version}, pip's error text)."""
    lines = [line for line in lines if _name(line) not in SOURCE_ONLY.get(platform, {})]
    tag = f"{python}-{platform}-{abs(hash(tuple(lines))) % 10**8}"
    req_file = workdir / f"{tag}.txt"
    req_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = workdir / f"{tag}.json"
    command = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--only-binary=:all:",
               "--disable-pip-version-check", "--no-input", "--quiet", "--python-version", python,
               "--implementation", "cp", "--target", str(workdir / f"{tag}-target"), "--report", str(report),
               "-r", str(req_file)]
    for tag_name in PLATFORMS[platform]:
        command += ["--platform", tag_name]
    done = subprocess.run(command, capture_output=True, text=True, timeout=900, check=False)
    if done.returncode != 0:
        errors = [line for line in done.stderr.splitlines() if line.startswith("ERROR") or "Requires-Python" in line
                  or "conflict" in line.lower() or "because" in line]
        return False, {}, "\n".join(errors or done.stderr.splitlines()[-15:])
    resolved = json.loads(report.read_text(encoding="utf-8"))
    versions = {item["metadata"]["name"].lower().replace("_", "-"): item["metadata"]["version"]
                for item in resolved.get("install", [])}
    return True, versions, ""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--python", action="append", choices=PYTHONS, help="only this version (repeatable)")
    parser.add_argument("--platform", action="append", choices=sorted(PLATFORMS), help="only this platform")
    parser.add_argument("--set", action="append", choices=sorted(REQUIREMENT_SETS), dest="sets",
                        help="only this requirement set: learners (requirements.txt) or teachers (+ teacher file)")
    parser.add_argument("--requirements", action="append", help="check these files instead (installed together)")
    parser.add_argument("--jobs", type=int, default=4, help="pip processes at once (default 4; mostly waiting on "
                        "the index)")
    args = parser.parse_args(argv)
    pythons = args.python or list(PYTHONS)
    platforms = args.platform or list(PLATFORMS)
    sets = {"custom": tuple(args.requirements)} if args.requirements else \
        {name: REQUIREMENT_SETS[name] for name in (args.sets or REQUIREMENT_SETS)}
    for files in sets.values():
        for name in files:
            if not (REPO / name).is_file():
                parser.error(f"{name} not found in {REPO}: give paths relative to the repository root.")

    pip_version = subprocess.run([sys.executable, "-m", "pip", "--version"], capture_output=True, text=True,
                                 check=False).stdout.split(" from ")[0]
    failures: list[str] = []
    with tempfile.TemporaryDirectory(prefix="check-wheels-") as tmp, ThreadPoolExecutor(args.jobs) as pool:
        for set_name, files in sets.items():
            lines = requirement_lines(files)
            jobs = {(python, platform): pool.submit(check, lines, python, platform, Path(tmp))
                    for python in pythons for platform in platforms}
            results = {key: job.result() for key, job in jobs.items()}
            print(f"\n{set_name}: {' + '.join(files)} ({len(lines)} requirements; {pip_version}, "
                  "--only-binary=:all:)")
            width = max(len(p) for p in platforms) + 2
            print("Python  " + "".join(p.ljust(width) for p in platforms))
            notes: list[str] = []
            for python in pythons:
                cells = []
                for platform in platforms:
                    ok, versions, error = results[python, platform]
                    unsupported = UNSUPPORTED.get((python, platform))
                    if unsupported and not ok and re.search(rf"\b{re.escape(unsupported[0])}\b", error):
                        cell = "no (1)"
                        notes.append(f"(1) Python {python} on {platform}: not supported: no {unsupported[0]} "
                                     f"wheel; {unsupported[1]}.")
                    elif unsupported and ok:
                        cell = "ok (new)"
                        notes.append(f"Python {python} on {platform} now resolves: remove it from UNSUPPORTED.")
                    else:
                        cell = "ok" if ok else "FAIL"
                        if not ok:
                            failures.append(f"[{set_name}] Python {python} on {platform}:\n    "
                                            + error.replace("\n", "\n    "))
                    if ok and platform in SOURCE_ONLY:
                        cell += " (2)"
                    cells.append(cell.ljust(width))
                print(f"{python:<8}" + "".join(cells).rstrip())
            for platform in platforms:
                for package, why in SOURCE_ONLY.get(platform, {}).items():
                    notes.append(f"(2) {platform}: everything but {package} has wheels; {package}: {why}.")
            for note in dict.fromkeys(notes):
                print(f"  {note}")
            shown = [name for name in SHOWN if any(name in r[1] for r in results.values())]
            for name in shown:
                found = sorted({r[1][name] for r in results.values() if name in r[1]},
                               key=lambda v: [int(x) if x.isdigit() else x for x in re.split(r"[.+-]", v)])
                print(f"  resolved {name}: {', '.join(found)}")
    if failures:
        print("\nFailures (pip's messages):")
        print("\n".join(failures))
        return 1
    print("\nEvery supported combination resolved (see the notes under each table).")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
