"""How long the grading command takes for a class: ``python benchmarks/grade_speed.py [--count 30] [--jobs 2]``.

Makes ``--count`` hw01 submissions from the committed fixtures and handouts (a mix of correct, alternative-correct,
partial, wrong and untouched notebooks, cycled), then times the teacher's command as a teacher runs it::

    python homework/grade.py DIR -a hw01_images_base64 -j 2 -o OUT

and prints the wall time, the time per submission, the load average before and after (other work on the machine
slows it down: say it with the figure) and whether every score is the one expected for its kind of submission.
``--grade-py`` times another copy of ``grade.py`` (for example the previous version, for a before/after figure).
Needs the teacher tools and the autograder zip (``python homework/build.py hw01_images_base64``).
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
HOMEWORK = ROOT / "homework"
NAME = "hw01_images_base64"

#: kind of submission -> (where it comes from, expected (q1, q2, q3) out of (3, 3, 4))
KINDS = {
    "solution": (HOMEWORK / "solutions" / f"{NAME}.ipynb", (3, 3, 4)),
    "complete": (HOMEWORK / "fixtures" / NAME / "complete.ipynb", (3, 3, 4)),
    "alternative": (HOMEWORK / "fixtures" / NAME / "alternative.ipynb", (3, 3, 4)),
    "partial": (HOMEWORK / "fixtures" / NAME / "partial.ipynb", (3, 3, 0)),
    "wrong": (HOMEWORK / "fixtures" / NAME / "wrong.ipynb", (1.5, 0, 2.67)),
    "untouched": (HOMEWORK / "student" / f"{NAME}.ipynb", (0, 0, 0)),
}


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=30, help="submissions to grade (default 30)")
    parser.add_argument("--jobs", "-j", type=int, default=2, help="grade.py -j (default 2: the machine has 2 cores)")
    parser.add_argument("--grade-py", type=Path, default=HOMEWORK / "grade.py", help="the grade.py to time")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="grade-speed-") as tmp:
        folder, out = Path(tmp) / "submissions", Path(tmp) / "report"
        folder.mkdir()
        kinds = list(KINDS)
        expected = {}
        for index in range(args.count):
            kind = kinds[index % len(kinds)]
            student = f"{kind}_{index:02d}"
            shutil.copy(KINDS[kind][0], folder / f"{student}.ipynb")
            expected[student] = KINDS[kind][1]
        before = load()
        start = time.perf_counter()
        run = subprocess.run([sys.executable, str(args.grade_py), str(folder), "-a", NAME, "-j", str(args.jobs),
                              "-o", str(out)], capture_output=True, text=True)
        elapsed = time.perf_counter() - start
        after = load()
        if run.returncode != 0:
            print(run.stdout[-2000:], run.stderr[-3000:], sep="\n")
            return 1
        with open(out / "grades.csv", newline="") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
        wrong = {s: (rows[s]["status"], *(rows[s][q] for q in ("q1", "q2", "q3"))) for s, e in expected.items()
                 if rows[s]["status"] != "graded"
                 or tuple(round(float(rows[s][q]), 2) for q in ("q1", "q2", "q3")) != e}
    print(f"{args.count} submissions, -j {args.jobs}: {elapsed:.0f} s ({elapsed / args.count:.1f} s each); "
          f"load average (1, 5, 15 min) before {before}, after {after}")
    print("every score as expected" if not wrong else f"UNEXPECTED scores: {wrong}")
    return 0 if not wrong else 1


if __name__ == "__main__":
    raise SystemExit(main())
