"""Homework (issue 12): the masters build with otter-grader, and grading gives the scores a teacher expects.

Needs the teacher tools (``pip install -r requirements-teacher.txt``); skipped without them, so the course's own
``pytest`` does not depend on otter-grader. CI installs them and runs this module as a separate step.
No key and no network: the assignments talk to the offline backend.
"""

from __future__ import annotations

import csv
import shutil
import sys
from pathlib import Path

import pytest

otter = pytest.importorskip("otter")
nbformat = pytest.importorskip("nbformat")

HOMEWORK = Path(__file__).resolve().parents[1] / "homework"
sys.path.insert(0, str(HOMEWORK))
sys.path.insert(0, str(HOMEWORK / "fixtures"))

import build  # noqa: E402
import grade  # noqa: E402
import make_fixtures  # noqa: E402

NAME = "hw01_images_base64"
HIDDEN_TESTS = ("test_png_and_round_trip", "test_content_not_name", "test_against_the_course_calculator",
                "test_request_body", "test_truncation_raises")


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> Path:
    """Every master built into a scratch folder, so the committed student and solution files stay untouched."""
    dest = tmp_path_factory.mktemp("homework")
    for name in build.masters():
        build.build(name, dest)
    return dest


@pytest.fixture(scope="module")
def report(built, tmp_path_factory) -> dict[str, dict[str, str]]:
    """Grade the solution, the untouched student version and every fixture in one run of the grading command."""
    submissions = tmp_path_factory.mktemp("submissions")
    shutil.copy(built / "solutions" / f"{NAME}.ipynb", submissions / "solution.ipynb")
    shutil.copy(built / "student" / f"{NAME}.ipynb", submissions / "untouched.ipynb")
    for fixture in (HOMEWORK / "fixtures" / NAME).iterdir():
        shutil.copy(fixture, submissions / fixture.name)
    out = tmp_path_factory.mktemp("report")
    grade.grade(submissions, NAME, out, jobs=3, zip_path=build.autograder_zip(NAME, built / "build"))
    with open(out / "grades.csv", newline="") as f:
        rows = {row["student"]: row for row in csv.DictReader(f)}
    rows["_summary"] = {"text": (out / "summary.txt").read_text()}
    return rows


def test_student_version_has_blanks_and_no_hidden_tests(built):
    nb = nbformat.read(built / "student" / f"{NAME}.ipynb", as_version=4)
    text = "\n".join(c.source for c in nb.cells) + str(nb.metadata)
    for hidden in HIDDEN_TESTS:
        assert hidden not in text, f"hidden test {hidden} leaked into the student notebook"
    assert "base64.b64encode" not in text and "170 * tiles" not in text, "a solution leaked"
    assert "grader.check(\"q1\")" in text


@pytest.mark.parametrize("name", ["hw01_images_base64", "hw02_conversation"])
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


def test_conversation_homework(built, tmp_path):
    """hw02: the solution scores 7/7, the untouched student version 0, mutating the history loses points."""
    name = "hw02_conversation"
    submissions = tmp_path / "submissions"
    submissions.mkdir()
    shutil.copy(built / "solutions" / f"{name}.ipynb", submissions / "solution.ipynb")
    shutil.copy(built / "student" / f"{name}.ipynb", submissions / "untouched.ipynb")
    shutil.copy(HOMEWORK / "fixtures" / name / "mutates.ipynb", submissions / "mutates.ipynb")
    grade.grade(submissions, name, tmp_path / "report", jobs=3, zip_path=build.autograder_zip(name, built / "build"))
    with open(tmp_path / "report" / "grades.csv", newline="") as f:
        rows = {row["student"]: (row["status"], float(row["q1"]), float(row["q2"])) for row in csv.DictReader(f)}
    assert rows["solution"] == ("graded", 3, 4)
    assert rows["untouched"] == ("graded", 0, 0)
    assert rows["mutates"] == make_fixtures.EXPECTED_HW02["mutates"]
    assert "q3 (manual)" in (tmp_path / "report" / "grades.csv").read_text()
