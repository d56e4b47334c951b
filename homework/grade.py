"""Grade a folder of submissions, with no key: ``python homework/grade.py SUBMISSIONS_DIR -a hw01_images_base64``.

Each ``.ipynb`` in the folder is one student's submission (the file name, without ``.ipynb``, names the student).
Each is graded by otter-grader's local runner (``otter run``: no Docker, which ``otter grade`` would need) in its
own process, against the autograder zip that ``homework/build.py`` made, with the offline backend and no key, so
grading is deterministic. A submission that is not a notebook, cannot be read, or times out is reported in the
table with its reason, and the others are still graded. A submission that tries to patch the grader or read the
hidden tests is flagged and gets no credit (``homework/integrity.py`` says what is checked and why).

Writes, in ``--out`` (default ``homework/reports/ASSIGNMENT``):

- ``grades.csv``   one row per submission: student, status, one column per question (manually graded
                   questions are left blank for the teacher), total, possible, seconds;
- ``summary.txt``  how many were graded, the mean per question and in total, the time per submission.
"""

from __future__ import annotations

import argparse
import csv
import json
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import HOMEWORK, autograder_zip, grading_env  # noqa: E402
from integrity import CANARY, scan, with_canary  # noqa: E402


@dataclass
class Result:
    student: str
    status: str = "graded"
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def questions(zip_path: Path) -> tuple[dict[str, float], dict[str, float]]:
    """Autograded and manually graded questions with their points, read from the autograder's metadata."""
    with zipfile.ZipFile(zip_path) as z:
        config = json.loads(z.read("otter_config.json")) if "otter_config.json" in z.namelist() else {}
        auto: dict[str, float] = {}
        for name in sorted(n for n in z.namelist() if n.startswith("tests/") and n.endswith(".py")):
            namespace: dict = {}
            source = z.read(name).decode()
            for line in source.splitlines():
                if line.startswith(("name = ", "points = ")):
                    exec(line, namespace)  # two literal lines otter wrote: name and points
            auto[namespace["name"]] = float(namespace.get("points") or 0)
    return auto, manual_questions(config.get("assignment_name") or zip_path.parent.name)


def manual_questions(assignment: str) -> dict[str, float]:
    """The master's questions marked ``manual: true``, with their points (otter's zip does not list them)."""
    import nbformat
    import yaml

    master = HOMEWORK / "masters" / f"{assignment}.ipynb"
    found: dict[str, float] = {}
    if master.is_file():
        for cell in nbformat.read(master, as_version=4).cells:
            if cell.cell_type == "raw" and cell.source.lstrip().upper().startswith("# BEGIN QUESTION"):
                config = yaml.safe_load(cell.source.split("\n", 1)[1]) or {}
                if config.get("manual"):
                    found[str(config["name"])] = float(config.get("points", 0))
    return found


def check_notebook(path: Path) -> str | None:
    """Why this file cannot be graded (not a notebook, malformed, or flagged by the tamper scan), or None."""
    if path.suffix != ".ipynb":
        return f"not a notebook ({path.suffix or 'no extension'})"
    try:
        import nbformat

        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # a malformed file is reported, never fatal
        return f"malformed notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    found = scan(nb)
    if found:
        more = f" (+{len(found) - 2} more)" if len(found) > 2 else ""
        return f"flagged, not run, no credit: {'; '.join(found[:2])}{more}"
    return None


def grade_one(path: Path, zip_path: Path, timeout: float) -> Result:
    result = Result(student=path.stem)
    start = time.perf_counter()
    problem = check_notebook(path)
    if problem:
        result.status = problem
        return result
    with tempfile.TemporaryDirectory(prefix="otter-run-") as tmp:
        try:
            run = subprocess.run(
                [sys.executable, "-m", "otter", "run", "--no-logo", "-a", str(zip_path.resolve()), "-o", tmp, str(path.resolve())],
                env=grading_env(), cwd=tmp, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            result.status = f"timed out after {timeout:.0f} s"
            result.seconds = time.perf_counter() - start
            return result
        results = Path(tmp) / "results.json"
        if run.returncode != 0 or not results.is_file():
            tail = (run.stderr or run.stdout).strip().splitlines()[-1:] or ["no output"]
            result.status = f"grader failed: {tail[0][:160]}"
        else:
            tests = json.loads(results.read_text())["tests"]
            canary = [t for t in tests if t.get("name") == CANARY]
            if canary and not canary[0].get("score"):
                for test in tests:
                    if test.get("name") not in ("Public Tests", CANARY) and test.get("score") is not None:
                        result.scores[test["name"]] = float(test["score"])
            else:  # the always-failing test passed (or vanished): the submission patched the grader
                result.status = "flagged, no credit: the grader was patched at run time (its always-failing test passed)"
    result.seconds = time.perf_counter() - start
    return result


def grade(submissions: Path, assignment: str, out: Path, jobs: int = 1, timeout: float = 300,
          zip_path: Path | None = None) -> list[Result]:
    zip_path = zip_path or autograder_zip(assignment)
    if not zip_path.is_file():
        raise SystemExit(f"{zip_path} is missing: run `python homework/build.py {assignment}` first")
    auto, manual = questions(zip_path)
    files = sorted(p for p in submissions.iterdir() if p.is_file() and not p.name.startswith("."))
    with tempfile.TemporaryDirectory(prefix="otter-zip-") as tmp, ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        guarded = with_canary(zip_path, Path(tmp))
        results = list(pool.map(lambda p: grade_one(p, guarded, timeout), files))
    write_report(results, auto, manual, out)
    return results


def write_report(results: list[Result], auto: dict[str, float], manual: dict[str, float], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    possible = sum(auto.values())
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", *auto, *(f"{q} (manual)" for q in manual), "total",
                         f"possible (autograded; +{sum(manual.values()):g} manual)", "seconds"])
        for r in results:
            graded = r.status == "graded"
            cells = [f"{r.scores.get(q, 0.0):g}" if graded else "" for q in auto]
            total = f"{sum(r.scores.get(q, 0.0) for q in auto):g}" if graded else ""
            writer.writerow([r.student, r.status, *cells, *("" for _ in manual), total, f"{possible:g}",
                             f"{r.seconds:.1f}"])
    graded = [r for r in results if r.status == "graded"]
    lines = [f"submissions: {len(results)}, graded: {len(graded)}, not graded: {len(results) - len(graded)}"]
    lines += [f"  {r.student}: {r.status}" for r in results if r.status != "graded"]
    if graded:
        for q, points in auto.items():
            lines.append(f"{q}: mean {statistics.mean(r.scores.get(q, 0.0) for r in graded):.2f} / {points:g}")
        totals = [sum(r.scores.get(q, 0.0) for q in auto) for r in graded]
        lines.append(f"total: mean {statistics.mean(totals):.2f} / {possible:g}")
        seconds = [r.seconds for r in graded]
        lines.append(f"seconds per submission: mean {statistics.mean(seconds):.1f}, max {max(seconds):.1f}")
    if manual:
        lines.append("manually graded, to fill in grades.csv: " + ", ".join(f"{q} ({p:g})" for q, p in manual.items()))
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"report: {out / 'grades.csv'}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="a folder of submitted .ipynb files")
    parser.add_argument("-a", "--assignment", default="hw01_images_base64")
    parser.add_argument("-o", "--out", type=Path, help="report folder (default homework/reports/ASSIGNMENT)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per submission")
    args = parser.parse_args(argv)
    if not args.submissions.is_dir():
        raise SystemExit(f"{args.submissions} is not a folder")
    grade(args.submissions, args.assignment, args.out or HOMEWORK / "reports" / args.assignment,
          args.jobs, args.timeout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
