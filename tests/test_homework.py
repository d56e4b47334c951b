"""Homework (issue 12): the masters build with otter-grader, and grading gives the scores a teacher expects.

Needs the teacher tools (``pip install -r requirements-teacher.txt``); skipped without them, so the course's own
``pytest`` does not depend on otter-grader. CI installs them and runs this module as a separate step.
No key and no network: the assignments talk to the offline backend.
"""

from __future__ import annotations

import csv
import shutil
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# Slow (about 3.5 minutes: five assignments built and graded), so plain `pytest` leaves it out (marker
# `homework`); `.ci/run` step 4 runs it with `pytest -m homework tests/test_homework.py`.
pytestmark = pytest.mark.homework

otter = pytest.importorskip("otter")
nbformat = pytest.importorskip("nbformat")

HOMEWORK = Path(__file__).resolve().parents[1] / "homework"
sys.path.insert(0, str(HOMEWORK))
sys.path.insert(0, str(HOMEWORK / "fixtures"))

import build  # noqa: E402
import grade  # noqa: E402
import integrity  # noqa: E402
import make_fixtures  # noqa: E402

NAME = "hw01_images_base64"
HIDDEN_TESTS = ("test_png_and_round_trip", "test_content_not_name", "test_against_the_course_calculator",
                "test_request_body", "test_truncation_raises")


ASSIGNMENTS = ("hw01_images_base64", "hw02_conversation", "hw03_detail_cost", "hw04_handwriting_ocr",
               "hw05_structured_extraction")
JOBS = 2  # otter runs at once: the reference machine has 2 cores


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Every master built into a scratch folder, so the committed student and solution files stay untouched."""
    dest = tmp_path_factory.mktemp("homework")
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        list(pool.map(lambda name: build.build(name, dest), build.masters()))
    return dest


@pytest.fixture(scope="module")
def reports(built, tmp_path_factory) -> dict[str, dict[str, dict[str, str]]]:
    """Every assignment graded by the grading command: its solution, its untouched student version, its fixtures.

    The assignments are graded side by side (one submission each at a time, JOBS at once) to keep CI short."""
    def one(name: str) -> dict[str, dict[str, str]]:
        submissions = tmp_path_factory.mktemp(f"submissions-{name}")
        shutil.copy(built / "solutions" / f"{name}.ipynb", submissions / "solution.ipynb")
        shutil.copy(built / "student" / f"{name}.ipynb", submissions / "untouched.ipynb")
        for fixture in (HOMEWORK / "fixtures" / name).iterdir():
            shutil.copy(fixture, submissions / fixture.name)
        out = tmp_path_factory.mktemp(f"report-{name}")
        grade.grade(submissions, name, out, jobs=1, zip_path=build.autograder_zip(name, built / "build"))
        with open(out / "grades.csv", newline="") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
        rows["_summary"] = {"text": (out / "summary.txt").read_text()}
        return rows

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        return dict(zip(ASSIGNMENTS, pool.map(one, ASSIGNMENTS), strict=True))


@pytest.fixture(scope="module")
def report(reports) -> dict[str, dict[str, str]]:
    return reports[NAME]


def test_student_version_has_blanks_and_no_hidden_tests(built):
    nb = nbformat.read(built / "student" / f"{NAME}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells) + str(nb.metadata)
    for hidden in HIDDEN_TESTS:
        assert hidden not in text, f"hidden test {hidden} leaked into the student notebook"
    assert "base64.b64encode" not in text and "170 * tiles" not in text, "a solution leaked"
    assert "grader.check(\"q1\")" in text


def test_every_master_is_tested():
    assert tuple(build.masters()) == ASSIGNMENTS


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_committed_versions_match_the_master(built, name):
    """homework/student and homework/solutions are generated: the same cells as a fresh build."""
    for folder in ("student", "solutions"):
        fresh = nbformat.read(built / folder / f"{name}.ipynb", as_version=4)
        committed = nbformat.read(HOMEWORK / folder / f"{name}.ipynb", as_version=4)
        assert [c.source for c in committed.cells] == [c.source for c in fresh.cells], (
            f"homework/{folder} is stale: run `python homework/build.py {name}`")


def test_autograder_holds_the_hidden_tests(built):
    auto, manual = grade.questions(build.autograder_zip(NAME, built / "build"))
    assert auto == {"q1": 3.0, "q2": 3.0, "q3": 4.0}
    assert manual == {"q4": 2.0}


def _scores(row):
    return (row["status"], *(float(row[q]) for q in ("q1", "q2", "q3")))


def test_solution_scores_full_marks(report):
    assert _scores(report["solution"]) == ("graded", 3, 3, 4)
    assert report["solution"]["total"] == "10"


def test_untouched_student_version_scores_zero(report):
    assert _scores(report["untouched"]) == ("graded", 0, 0, 0)


@pytest.mark.parametrize("student", sorted(make_fixtures.EXPECTED))
def test_fixture_scores(report, student):
    assert _scores(report[student]) == make_fixtures.EXPECTED[student]


def test_bad_submissions_are_reported_not_fatal(report):
    assert report["notes"]["status"].startswith("not a notebook")
    assert report["broken"]["status"].startswith("malformed notebook")
    assert report["broken"]["q1"] == ""
    summary = report["_summary"]["text"]
    assert "not graded: 2" in summary and "seconds per submission" in summary and "q4 (2)" in summary


def test_conversation_homework(reports):
    """hw02: the solution scores 7/7, the untouched student version 0, mutating the history loses points."""
    rows = {k: (v["status"], float(v["q1"]), float(v["q2"])) for k, v in reports["hw02_conversation"].items()
            if k != "_summary"}
    assert rows["solution"] == ("graded", 3, 4)
    assert rows["untouched"] == ("graded", 0, 0)
    assert rows["mutates"] == make_fixtures.EXPECTED_HW02["mutates"]
    assert "q3 (2)" in reports["hw02_conversation"]["_summary"]["text"], "the manual question is listed"


NEW = {  # assignment: autograded questions with their points, manual questions with theirs
    "hw03_detail_cost": ({"q1": 4.0, "q2": 4.0, "q3": 3.0}, {"q4": 2.0}),
    "hw04_handwriting_ocr": ({"q1": 4.0, "q2": 4.0, "q3": 2.0}, {"q4": 2.0}),
    "hw05_structured_extraction": ({"q1": 4.0, "q2": 2.0, "q3": 3.0}, {"q4": 2.0}),
}


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_assignment_questions(built, name):
    assert grade.questions(build.autograder_zip(name, built / "build")) == NEW[name]


@pytest.mark.parametrize("name", sorted(NEW))
def test_new_solution_full_untouched_zero(reports, name):
    auto = NEW[name][0]
    rows = reports[name]
    assert {q: float(rows["solution"][q]) for q in auto} == auto, rows["solution"]
    assert rows["solution"]["status"] == "graded" and rows["untouched"]["status"] == "graded"
    assert {q: float(rows["untouched"][q]) for q in auto} == dict.fromkeys(auto, 0.0), rows["untouched"]


@pytest.mark.parametrize(("name", "student"),
                         [(n, s) for n, students in sorted(make_fixtures.EXPECTED_NEW.items()) for s in sorted(students)])
def test_new_fixture_scores(reports, name, student):
    status, scores = make_fixtures.EXPECTED_NEW[name][student]
    row = reports[name][student]
    assert row["status"].startswith(status), row["status"]
    if scores is None:
        assert all(row[q] == "" for q in NEW[name][0]) and row["total"] == "", "a flagged submission gets no credit"
    else:
        assert tuple(float(row[q]) for q in NEW[name][0]) == scores, row


def test_student_versions_hide_the_new_solutions(built):
    leaks = {"hw03_detail_cost": ["768 / (min(width", "round(patches * cost.multiplier", "refusing_helpers"],
             "hw04_handwriting_ocr": ["previous[j - 1] + (ca != cb)", "grader_cer", "0.12 target"],
             "hw05_structured_extraction": ["class Line(BaseModel)", "LengthFinishReasonError as err", "canned("]}
    for name, needles in leaks.items():
        nb = nbformat.read(built / "student" / f"{name}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
        for needle in needles:
            assert needle not in text, f"{needle!r} leaked into homework/student/{name}.ipynb"


# --- tamper resistance (homework/integrity.py) --------------------------------------------------------------

@pytest.mark.parametrize("source", [
    "grader.check = lambda question: None",
    "import otter.test_files.abstract_test as t\nt.TestFile.score = property(lambda self: 1)",
    "import sys\nsys.modules['helpers.tokens'].image_tokens = len",
    "import helpers.tokens as t\nt.image_tokens = len",
    "from helpers.tokens import image_tokens\nimage_tokens.__code__ = len.__code__",
    "import sys\nexpected = sys._getframe(1).f_locals['expected']",
    "import inspect\nframe = inspect.stack()[1]",
    "text = open('tests/q1.py').read()",
    "from pathlib import Path\nfiles = list(Path('.').glob('autograder*'))",
    "m = __import__('ot' + 'ter')",
    "exec('import ot' + 'ter')",
    "setattr(math, 'ceil', round)",
    "import importlib\nimportlib.import_module('helpers.tokens')",
])
def test_scan_flags_tampering(source):
    assert integrity.scan_source(source), f"not flagged: {source!r}"


@pytest.mark.parametrize("source", [
    "import otter\ngrader = otter.Notebook(\"hw03_detail_cost.ipynb\")",
    "grader.check(\"q1\")",
    "import math\nx = math.ceil(2.5)\nprint(f'CER {x:.3f}')  # the grader checks this",
    "history = [*history, {'role': 'user', 'content': 'test'}]",
    "%time y = sum(range(10))",
    "label.text = 'tests pass'",
])
def test_scan_leaves_honest_code_alone(source):
    assert integrity.scan_source(source) == []


def test_no_committed_notebook_is_flagged_except_the_tamper_fixtures():
    for path in sorted(HOMEWORK.glob("*/**/*.ipynb")):
        if path.name == "broken.ipynb" or "masters" in path.parts:
            continue
        found = integrity.scan(nbformat.read(path, as_version=4))
        assert bool(found) == path.name.startswith("tamper"), f"{path}: {found}"


def test_canary_catches_a_patched_grader_the_scan_missed(built, tmp_path, monkeypatch):
    """Run the otter-patching fixture with the scan switched off: the always-failing test passes, so it is flagged."""
    monkeypatch.setattr(grade, "scan", lambda nb: [])
    guarded = integrity.with_canary(build.autograder_zip("hw03_detail_cost", built / "build"), tmp_path)
    result = grade.grade_one(HOMEWORK / "fixtures" / "hw03_detail_cost" / "tamper_grader.ipynb", guarded, 600)
    assert result.status.startswith("flagged, no credit: the grader was patched"), result
    assert result.scores == {}
