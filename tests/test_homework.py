"""Homework (issue 12): the masters build with otter-grader, and grading gives the scores a teacher expects.

Needs the teacher tools (``pip install -r requirements-teacher.txt``); skipped without them, so the course's own
``pytest`` does not depend on otter-grader. CI installs them and runs this module as a separate step.
No key and no network: the assignments talk to the offline backend.
"""

from __future__ import annotations

import csv
import shutil
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

# Slow (4 min 52 s on 2026-12-07 at load average 2-8: five assignments built and graded), so plain `pytest` leaves it out (marker
# `homework`); `.ci/run` step 4 runs it with `pytest -m homework tests/test_homework.py`.
pytestmark = pytest.mark.homework

otter = pytest.importorskip("otter")
nbformat = pytest.importorskip("nbformat")

HOMEWORK = Path(__file__).resolve().parents[1] / "homework"
sys.path.insert(0, str(HOMEWORK))
sys.path.insert(0, str(HOMEWORK / "fixtures"))

import build  # noqa: E402
import grade  # noqa: E402
import gradescope_local  # noqa: E402
import integrity  # noqa: E402
import make_fixtures  # noqa: E402

NAME = "hw01_images_base64"
HIDDEN_TESTS = ("test_png_and_round_trip", "test_content_not_name", "test_against_the_course_calculator",
                "test_request_body", "test_truncation_raises")


ASSIGNMENTS = ("hw01_images_base64", "hw02_conversation", "hw03_detail_cost", "hw04_handwriting_ocr",
               "hw05_structured_extraction")
JOBS = 2  # assignments graded at once: the reference machine has 2 cores


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
        before = {p.name: p.read_bytes() for p in submissions.iterdir()}
        grade.grade(submissions, name, out, jobs=1, zip_path=build.autograder_zip(name, built / "build"),
                    progress=False)
        with open(out / "grades.csv", newline="") as f:
            rows = {row["student"]: row for row in csv.DictReader(f)}
        rows["_summary"] = {"text": (out / "summary.txt").read_text(),
                            "unchanged": before == {p.name: p.read_bytes() for p in submissions.iterdir()}}
        for student in list(rows):
            feedback = out / "feedback" / f"{student}.txt"
            if feedback.is_file():
                rows[student]["_feedback"] = feedback.read_text()
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
    """Points rounded to 2 decimals: otter splits a question's points evenly over its tests (2.66667 of 4)."""
    return (row["status"], *(round(float(row[q]), 2) for q in ("q1", "q2", "q3")))


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
    # not graded: broken, notes and the two hostile fixtures (flagged)
    assert "not graded: 4" in summary and "seconds per submission" in summary and "q4 (2)" in summary


def test_conversation_homework(reports):
    """hw02: the solution scores 7/7, the untouched student version 0, mutating the history loses points."""
    rows = {k: (v["status"], round(float(v["q1"]), 2), round(float(v["q2"]), 2))
            for k, v in reports["hw02_conversation"].items() if k != "_summary"}
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
        assert tuple(round(float(row[q]), 2) for q in NEW[name][0]) == scores, row


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
        if path.name in ("broken.ipynb", "hostile_recursion.ipynb") or "masters" in path.parts:
            continue
        found = integrity.scan(nbformat.read(path, as_version=4))
        assert bool(found) == path.name.startswith(("tamper", "hostile")), f"{path}: {found}"


def test_patching_otter_reaches_nothing(built, tmp_path, monkeypatch):
    """The otter-patching fixture with the scan switched off: otter is not importable where the notebook runs, so its
    patch fails and it is graded on its (wrong) answers, as if it had not tried."""
    monkeypatch.setattr(grade, "scan", lambda nb: [])
    guarded = integrity.with_canary(build.autograder_zip("hw03_detail_cost", built / "build"), tmp_path)
    result = grade.grade_one(HOMEWORK / "fixtures" / "hw03_detail_cost" / "tamper_grader.ipynb", guarded, 600)
    assert result.status == "graded", result
    assert sum(result.scores.values()) < 11, result


GC_PATCH = """import gc
classes = {type(o).__name__: type(o) for o in gc.get_objects() if type(o).__name__ in ("TestCaseResult",)}
for o in gc.get_objects():
    if isinstance(o, type) and o.__name__ == "ExceptionTestFile":
        o.run = lambda self, env: setattr(self, "test_case_results", [
            classes["TestCaseResult"](test_case=tc, message="passed", passed=True) for tc in self.test_cases])
"""


def test_canary_catches_a_patched_grader_the_scan_missed(built, tmp_path, monkeypatch):
    """With the scan switched off, a notebook that finds the grading process's test classes through gc and makes
    every test pass: the always-failing canary passes too (and without its nonce), so the submission is flagged."""
    monkeypatch.setattr(grade, "scan", lambda nb: [])
    nb = nbformat.read(HOMEWORK / "fixtures" / NAME / "partial.ipynb", as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell(GC_PATCH))
    submission = grade.Submission("patcher", "patcher.ipynb", nbformat.writes(nb).encode())
    guarded = integrity.with_canary(build.autograder_zip(NAME, built / "build"), tmp_path)
    result = grade.grade_one(submission, guarded, 600)
    assert result.status.startswith("flagged, no credit: the grader was patched"), result
    assert result.scores == {}


LOOK_FOR_TESTS = """import os, sys
found = []
try:
    import otter
    found.append("otter importable")
except ImportError:
    pass
for top in (os.getcwd(), os.path.dirname(os.getcwd())):
    for folder, _, files in os.walk(top):
        for name in files:
            try:
                with open(os.path.join(folder, name), "rb") as f:
                    if b"def test_png_" + b"and_round_trip" in f.read():  # not this cell's own text
                        found.append(os.path.join(folder, name))
            except OSError:
                pass
found += [m for m in sys.modules if "test" in m and "q1" in m]
with open(REPORT, "w") as f:
    f.write(repr(found))
"""


def test_a_notebook_with_magics_and_plots_is_graded_as_in_a_kernel(built, tmp_path):
    """The grading process runs cells in an IPython shell: `%matplotlib inline`, a plot, `%time` and `display` in a
    correct notebook work as in Jupyter, and it gets full marks."""
    nb = nbformat.read(HOMEWORK / "fixtures" / NAME / "complete.ipynb", as_version=4)
    nb.cells.insert(2, nbformat.v4.new_code_cell(
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nfrom IPython.display import display\n"
        "plt.plot([1, 2])\nplt.show()\n%time total = 1 + 1\ndisplay(total)"))
    submission = grade.Submission("plotter", "plotter.ipynb", nbformat.writes(nb).encode())
    assert grade.check_notebook(submission.data) is None
    result = grade.grade_one(submission, build.autograder_zip(NAME, built / "build"), 600)
    assert result.status == "graded" and result.scores == {"q1": 3.0, "q2": 3.0, "q3": 4.0}, result


def test_the_hidden_tests_are_nowhere_while_the_notebook_runs(built, tmp_path, monkeypatch):
    """With the scan switched off, a notebook that searches its folder and the folder above for the hidden tests'
    source, and tries to import otter, finds nothing: the tests reach the grading process only after the notebook
    ran (otter run unpacked them next to it), and the hidden tests still run and score."""
    monkeypatch.setattr(grade, "scan", lambda nb: [])
    report = tmp_path / "found.txt"
    nb = nbformat.read(HOMEWORK / "fixtures" / NAME / "complete.ipynb", as_version=4)
    # A student's notebook carries the public checks only (the fixture, made from the solution, carries all)
    nb.metadata = nbformat.read(HOMEWORK / "student" / f"{NAME}.ipynb", as_version=4).metadata
    nb.cells.insert(2, nbformat.v4.new_code_cell(f"REPORT = {str(report)!r}\n" + LOOK_FOR_TESTS))
    submission = grade.Submission("seeker", "seeker.ipynb", nbformat.writes(nb).encode())
    guarded = integrity.with_canary(build.autograder_zip(NAME, built / "build"), tmp_path)
    with zipfile.ZipFile(guarded) as z:  # the tests are there to be found, in the zip
        assert any(b"def test_png_and_round_trip" in z.read(n) for n in z.namelist() if n.endswith(".py"))
    result = grade.grade_one(submission, guarded, 600)
    assert result.status == "graded" and result.scores == {"q1": 3.0, "q2": 3.0, "q3": 4.0}, result
    assert report.read_text() == "[]", report.read_text()


# --- issue 24: probes, hostile submissions, feedback, isolation, LMS folders ----------------------------------

@pytest.mark.parametrize(("name", "student"), sorted(make_fixtures.EXPECTED_PROBES))
def test_probe_scores(reports, name, student):
    """Alternative-correct answers get full marks, typical wrong ones less, hostile ones nothing (flagged)."""
    status, scores = make_fixtures.EXPECTED_PROBES[(name, student)]
    row = reports[name][student]
    assert row["status"].startswith(status), row["status"]
    questions = [q for q in row if q.startswith("q") and "manual" not in q]
    if scores is None:
        assert all(row[q] == "" for q in questions) and row["total"] == "", "no credit"
    else:
        assert tuple(round(float(row[q]), 2) for q in questions) == scores, row


@pytest.mark.parametrize(("name", "student", "question", "needle"), make_fixtures.PUBLIC_CATCHES)
def test_public_checks_catch_the_key_mistake(reports, name, student, question, needle):
    """The public checks a student runs fail on the typical mistake, saying what was expected and what came back."""
    feedback = reports[name][student]["_feedback"]
    public = feedback.split("Public checks", 1)[1]
    section = public.split(f"{question} results:", 1)[1].split(" results:", 1)[0]
    assert "All test cases passed" not in section.splitlines()[0], section
    assert needle in section, section


def test_feedback_files_and_untouched_input(reports):
    for name in ASSIGNMENTS:
        rows = reports[name]
        assert rows["_summary"]["unchanged"], f"{name}: the teacher's submissions folder was written"
        assert "Autograded: " in rows["solution"]["_feedback"]
    wrong = reports["hw01_images_base64"]["wrong"]["_feedback"]
    assert "q2: 0 / 3" in wrong and "expected" in wrong, wrong
    assert "Not graded: flagged" in reports["hw03_detail_cost"]["hostile_run_cell"]["_feedback"]


@pytest.mark.parametrize("source", [
    "get_ipython().run_cell('fr' + 'om ot' + 'ter.test_files import x')",
    "import runpy\ncalc = runpy.run_module('helpers.tokens')['image_tokens']",
    "import glob\nfiles = glob.glob('**/*.py', recursive=True)",
    "from pathlib import Path\nfiles = list(Path('/').rglob('q1.py'))",
    "object.__setattr__(module, 'image_tokens', len)",
    "import sys\nmods = getattr(sys, 'mod' + 'ules')",
    "import subprocess\nsubprocess.run(['cat', 'x'])",
    "!cat /etc/hostname",
    "import os\nos.system('ls ..')",
    "text = open('/proc/self/cmdline').read()",
    "x = " + "1 + " * 100_000 + "1",
])
def test_scan_flags_the_issue_24_attacks(source):
    assert integrity.scan_source(source), f"not flagged: {source[:60]!r}"


@pytest.mark.parametrize("source", [
    "import matplotlib.pyplot as plt\nplt.rcParams['figure.dpi'] = 120",
    "import os\nos.environ['TOKENIZERS_PARALLELISM'] = 'false'",
    "import inspect\nprint(inspect.signature(len))",
    "%timeit sum(range(10))",
    build.INIT_CELL.format(name="hw03_detail_cost"),
])
def test_scan_no_longer_flags_honest_lines(source):
    assert integrity.scan_source(source) == []


def test_a_hostile_notebook_harms_no_other_grade(built, tmp_path, monkeypatch):
    """With the scan switched off, a notebook that finds the submissions folder through /proc and overwrites every
    notebook in it: the others are graded from the copies read before anything ran, and the change is reported."""
    monkeypatch.setattr(grade, "scan", lambda nb: [])
    folder = tmp_path / "in"
    folder.mkdir()
    for student in ("hostile_overwrite", "complete", "partial"):
        shutil.copy(HOMEWORK / "fixtures" / NAME / f"{student}.ipynb", folder)
    results = {r.student: r for r in grade.grade(folder, NAME, tmp_path / "out", jobs=1, progress=False,
                                                 zip_path=build.autograder_zip(NAME, built / "build"))}
    assert results["hostile_overwrite"].status == "graded", results["hostile_overwrite"]  # it did run
    assert results["complete"].scores == {"q1": 3.0, "q2": 3.0, "q3": 4.0}, results["complete"]
    assert results["partial"].scores == {"q1": 3.0, "q2": 3.0, "q3": 0.0}, results["partial"]
    changed = [p.name for p in folder.iterdir() if p.read_bytes() == b"{}"]
    summary = (tmp_path / "out" / "summary.txt").read_text()
    assert not changed or "WARNING" in summary, summary


def test_timeout_ends_the_whole_process_tree(built, tmp_path, monkeypatch):
    """A submission that starts a detached child and hangs: timed out, and no process of it survives the run."""
    psutil = pytest.importorskip("psutil")
    monkeypatch.setattr(grade, "scan", lambda nb: [])
    nb = nbformat.read(HOMEWORK / "fixtures" / NAME / "partial.ipynb", as_version=4)
    marker = "613.25"
    nb.cells.insert(2, nbformat.v4.new_code_cell(
        "import subprocess, time\n"
        f"subprocess.Popen(['sleep', '{marker}'], start_new_session=True)\n"
        "time.sleep(600)"))
    submission = grade.Submission("sleeper", "sleeper.ipynb", nbformat.writes(nb).encode())
    guarded = integrity.with_canary(build.autograder_zip(NAME, built / "build"), tmp_path)
    result = grade.grade_one(submission, guarded, timeout=30)
    assert result.status.startswith("timed out"), result
    survivors = [p for p in psutil.process_iter(["cmdline"]) if marker in (p.info["cmdline"] or [])]
    assert not survivors, survivors


def test_a_crash_in_one_submission_never_stops_the_run(monkeypatch):
    def explode(data):
        raise RecursionError("maximum recursion depth exceeded")
    monkeypatch.setattr(grade, "check_notebook", explode)
    result = grade.grade_one(grade.Submission("x", "x.ipynb", b"{}"), Path("missing.zip"), 5)
    assert result.status.startswith("grader failed: RecursionError"), result


def test_lms_folders_zips_and_the_inferred_assignment(tmp_path):
    """An LMS bulk download: one subfolder per student, zips, loose notebooks; -a read from the notebooks."""
    import zipfile
    student = (HOMEWORK / "student" / "hw02_conversation.ipynb").read_bytes()
    (tmp_path / "alice_1234").mkdir()
    (tmp_path / "alice_1234" / "attempt").mkdir()
    (tmp_path / "alice_1234" / "attempt" / "hw02_conversation.ipynb").write_bytes(student)
    with zipfile.ZipFile(tmp_path / "bob.zip", "w") as z:
        z.writestr("hw02_conversation.ipynb", student)
        z.writestr("__MACOSX/._hw02_conversation.ipynb", b"junk")
    (tmp_path / "carol.ipynb").write_bytes(student)
    (tmp_path / "dave_99").mkdir()
    (tmp_path / "notes.txt").write_text("hi")
    found = {s.student: s for s in grade.collect(tmp_path)}
    assert sorted(found) == ["alice_1234", "bob", "carol", "dave_99", "notes"]
    assert found["alice_1234"].data == found["bob"].data == found["carol"].data == student
    assert found["dave_99"].problem.startswith("folder with no notebook")
    assert found["notes"].problem.startswith("not a notebook")
    assert grade.infer_assignment(list(found.values())) == "hw02_conversation"
    with pytest.raises(SystemExit, match="pass -a"):
        grade.infer_assignment([found["notes"]])


def test_checks_runner_matches_otter_on_public_tests():
    """homework_checks.py (no otter) is the file build.py copies next to the notebooks."""
    for folder in ("student", "solutions"):
        assert (HOMEWORK / folder / "homework_checks.py").read_text() == (HOMEWORK / "checks.py").read_text()


LEARNER_RUN = r"""
import json, sys
import nbformat
from nbclient import NotebookClient
try:
    import otter  # noqa: F401
    sys.exit("otter-grader is installed in the learner's environment: the test would prove nothing")
except ModuleNotFoundError:
    pass
out = {}
for path in sys.argv[1:]:
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=300, allow_errors=True, resources={"metadata": {"path": str(__import__("pathlib").Path(path).parent)}}).execute()
    texts = []
    for cell in nb.cells:
        if cell.cell_type == "code" and "grader.check(" in cell.source:
            texts.append("".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)
                         + "".join(o.get("ename", "") + ": " + o.get("evalue", "") for o in cell.outputs
                                   if o.output_type == "error"))
    init = "".join(o.get("ename", "") for o in nb.cells[0].outputs if o.output_type == "error")
    out[path] = {"init_error": init, "checks": texts}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def learner_python(tmp_path_factory) -> Path:
    """A fresh virtualenv with only the learner's `pip install -r requirements.txt` (no otter-grader).

    HOMEWORK_LEARNER_VENV reuses one made before (it is checked to lack otter-grader)."""
    import os
    import subprocess
    import venv
    reuse = os.environ.get("HOMEWORK_LEARNER_VENV")
    root = Path(reuse) if reuse else tmp_path_factory.mktemp("learner") / "venv"
    python = root / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.is_file():
        venv.create(root, with_pip=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "-r", "requirements.txt"], check=True,
                       cwd=HOMEWORK.parent)
    return python


def test_homework_opens_after_the_learners_install(learner_python, tmp_path):
    """Only requirements.txt: the student notebook opens and its public checks run (homework_checks.py, no otter);
    the solution passes them all, the untouched student version and a typical wrong answer fail with messages."""
    import json
    import os
    import subprocess
    for name in ("student", "solutions"):
        (tmp_path / name).mkdir()
        shutil.copy(HOMEWORK / name / f"{NAME}.ipynb", tmp_path / name)
        shutil.copy(HOMEWORK / name / "homework_checks.py", tmp_path / name)
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    shutil.copy(HOMEWORK / "fixtures" / NAME / "wrong.ipynb", wrong / f"{NAME}.ipynb")
    shutil.copy(HOMEWORK / "student" / "homework_checks.py", wrong)
    paths = [str(tmp_path / f / f"{NAME}.ipynb") for f in ("student", "solutions", "wrong")]
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    run = subprocess.run([str(learner_python), "-c", LEARNER_RUN, *paths], capture_output=True, text=True,
                         env=env, timeout=900)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    student, solution, mistakes = (result[p] for p in paths)
    for nb in (student, solution, mistakes):
        assert nb["init_error"] == "" and len(nb["checks"]) == 3, nb
        assert not any("ModuleNotFoundError" in text for text in nb["checks"]), nb
    assert all(text.strip().endswith("All test cases passed!") for text in solution["checks"]), solution
    assert all("public checks failed" in text for text in student["checks"]), student
    q1, q2, q3 = mistakes["checks"]
    assert "photo.png" in q1 and "got 'data:image/png" in q1, q1
    assert "expected 765, got" in q2, q2
    assert "expected RuntimeError" in q3, q3


def test_manual_points_rubric_and_lms_export(tmp_path):
    """manual.csv (points entered by hand) goes into the totals; a roster CSV gets one column of points (lms.csv)."""
    results = [grade.Result("alice_1234", scores={"q1": 3, "q2": 3, "q3": 4}),
               grade.Result("bob", scores={"q1": 1, "q2": 0, "q3": 0}),
               grade.Result("carl", status="timed out after 300 s")]
    auto, manual = {"q1": 3.0, "q2": 3.0, "q3": 4.0}, {"q4": 2.0}
    grade.write_report(results, auto, manual, tmp_path, NAME)
    with open(tmp_path / "manual.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["student", "q4", "comment"] and [r[0] for r in rows[1:]] == ["alice_1234", "bob", "carl"]
    (tmp_path / "manual.csv").write_text("student,q4,comment\nalice_1234,2,clear\nbob,1.5,\n")
    roster = tmp_path / "roster.csv"
    roster.write_text("Student,SIS Login ID,Email\nAlice A,alice,a@example.org\nBob B,bob,b@example.org\n"
                      "Dora D,dora,d@example.org\n")
    grade.write_report(results, auto, manual, tmp_path, NAME, roster=roster)
    with open(tmp_path / "grades.csv", newline="") as f:
        grades = {r["student"]: r for r in csv.DictReader(f)}
    assert grades["alice_1234"]["q4 (manual)"] == "2" and grades["alice_1234"]["total with manual"] == "12"
    assert grades["alice_1234"]["total"] == "10" and grades["bob"]["total with manual"] == "2.5"
    assert grades["carl"]["total with manual"] == ""
    with open(tmp_path / "lms.csv", newline="") as f:
        lms = {r["SIS Login ID"]: r for r in csv.DictReader(f)}
    assert (lms["alice"][NAME], lms["bob"][NAME], lms["dora"][NAME]) == ("12", "2.5", "")
    assert "- **1**: Why low misses small print" in (tmp_path / "rubric.md").read_text()
    assert "q4: 2 / 2 (graded by your teacher)" in (tmp_path / "feedback" / "alice_1234.txt").read_text()
    (tmp_path / "manual.csv").write_text("student,q4\nalice_1234,3\n")
    with pytest.raises(SystemExit, match="outside 0-2"):
        grade.write_report(results, auto, manual, tmp_path, NAME)


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_rubric_points_add_up(name):
    import yaml
    rubrics = yaml.safe_load((HOMEWORK / "rubrics.yaml").read_text())
    manual = grade.manual_questions(name)
    assert manual and set(rubrics[name]) == set(manual)
    for q, points in manual.items():
        assert sum(item["points"] for item in rubrics[name][q]) == points, (name, q)


# --- issue 24: class editions (build.py --secret) ------------------------------------------------------------

SECRETS = ("spring cohort: lighthouse 42", "autumn cohort: 7 otters")


def _edition_lines(nb) -> list[str]:
    return [line.strip() for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()
            if line.strip().startswith("EDITION = ")]


@pytest.mark.parametrize("name", ASSIGNMENTS)
def test_a_secret_changes_only_the_hidden_tests_numbers(name):
    default = build.edition_master(name)
    first, second = (build.edition_master(name, s) for s in SECRETS)
    assert len(_edition_lines(default)) >= 1, f"{name}: no hidden test draws its inputs from an EDITION number"
    assert len({tuple(_edition_lines(nb)) for nb in (default, first, second)}) == 3
    assert build.edition_master(name, SECRETS[0]).cells == first.cells, "the same secret gives the same edition"
    for a, b in zip(default.cells, first.cells, strict=True):
        if a.source != b.source:
            assert "hidden: true" in a.source, f"{name}: a cell other than a hidden test changed"
            assert [x for x in a.source.splitlines() if "EDITION = " not in x] == \
                   [x for x in b.source.splitlines() if "EDITION = " not in x]
    text = "\n".join(c.source for c in first.cells)
    assert SECRETS[0] not in text and "lighthouse" not in text


def test_a_class_edition_never_goes_over_tracked_files(tmp_path):
    with pytest.raises(SystemExit, match="never goes over"):
        build.main(["hw01_images_base64", "--secret", "x", "--out", str(HOMEWORK / "student")])
    with pytest.raises(SystemExit, match="not ignored by git"):
        build.main(["hw01_images_base64", "--secret", "x", "--out", str(HOMEWORK.parent / "docs" / "edition")])
    with pytest.raises(SystemExit, match="empty"):
        build.main(["hw01_images_base64", "--secret", "  ", "--out", str(tmp_path)])
    with pytest.raises(SystemExit):  # --out without a secret: the repository's own build is not moved
        build.main(["hw01_images_base64", "--out", str(tmp_path)])
    assert not any(tmp_path.iterdir())


@pytest.fixture(scope="module")
def editions(tmp_path_factory) -> list[Path]:
    """hw01 built twice through the command, with two secrets, into folders outside the repository."""
    import os
    import subprocess
    folders = [tmp_path_factory.mktemp("edition") for _ in SECRETS]
    secret_files = [tmp_path_factory.mktemp("secret") / "secret.txt" for _ in SECRETS]
    for secret, path in zip(SECRETS, secret_files, strict=True):
        path.write_text(secret + "\n")
    env = {**os.environ, "PYTHONPATH": str(HOMEWORK.parent)}
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        runs = list(pool.map(lambda pair: subprocess.run(
            [sys.executable, str(HOMEWORK / "build.py"), NAME, "--secret-file", str(pair[0]), "--out", str(pair[1])],
            capture_output=True, text=True, env=env), zip(secret_files, folders, strict=True)))
    for run in runs:
        assert run.returncode == 0, run.stderr[-3000:]
        assert "class edition" in run.stdout and not any(s in run.stdout + run.stderr for s in SECRETS)
    return folders


def _task2_sizes(zip_path: Path) -> set[tuple[int, int]]:
    """The sizes task 2's tests in this zip try: the tests run with a spy that answers with the course's calculator."""
    import zipfile

    from helpers.tokens import image_tokens
    seen: set[tuple[int, int]] = set()
    with zipfile.ZipFile(zip_path) as z:
        source = z.read("tests/q2.py").decode()
    namespace: dict = {}
    exec(source.replace("from otter.test_files import test_case", "test_case = lambda **kw: (lambda f: f)"), namespace)

    def spy(width, height):
        seen.add((width, height))
        return image_tokens(width, height, "high", "gpt-4o")

    for value in list(namespace.values()):
        if callable(value) and getattr(value, "__name__", "").startswith("test_"):
            value(spy)
    return seen


def test_two_secrets_give_different_hidden_inputs(built, editions):
    import zipfile
    default = build.autograder_zip(NAME, built / "build")
    first, second = (build.autograder_zip(NAME, folder / "build") for folder in editions)
    sizes = [_task2_sizes(z) for z in (default, first, second)]
    assert len(sizes[0]) > 150 and len(sizes[1]) > 150 and len(sizes[2]) > 150
    assert len(sizes[1] - sizes[0]) > 100 and len(sizes[2] - sizes[1]) > 100, "the random sizes must change"
    assert (1026, 2053) in sizes[1], "the fixed sizes that separate per-step rounding stay"
    with zipfile.ZipFile(default) as z0, zipfile.ZipFile(first) as z1:
        assert sorted(z0.namelist()) == sorted(z1.namelist())
        for name in z0.namelist():
            a, b = z0.read(name), z1.read(name)
            if a != b:
                assert name.startswith("tests/"), f"{name} changed between editions"
                assert [x for x in a.decode().splitlines() if "EDITION = " not in x] == \
                       [x for x in b.decode().splitlines() if "EDITION = " not in x]
    for folder in editions:  # learners get the same notebook from any edition; the secret is written nowhere
        fresh = nbformat.read(built / "student" / f"{NAME}.ipynb", as_version=4)
        edition = nbformat.read(folder / "student" / f"{NAME}.ipynb", as_version=4)
        assert [c.source for c in edition.cells] == [c.source for c in fresh.cells]
        for path in folder.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                if path.suffix == ".zip":
                    with zipfile.ZipFile(path) as z:
                        data = b"".join(z.read(n) for n in z.namelist())
                assert not any(s.encode() in data for s in SECRETS), f"the secret is in {path}"


def test_class_edition_scores_computed_answers_not_memorised_ones(editions, tmp_path):
    """The repository's solution and the correct fixtures keep full marks against a class edition; the submission
    that memorised the default edition's hidden answers (full marks there: EXPECTED) loses task 2's hidden test."""
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(HOMEWORK / "solutions" / f"{NAME}.ipynb", folder / "solution.ipynb")
    for student in make_fixtures.EXPECTED_CLASS_EDITION:
        shutil.copy(HOMEWORK / "fixtures" / NAME / f"{student}.ipynb", folder)
    zip_path = build.autograder_zip(NAME, editions[0] / "build")
    results = {r.student: r for r in grade.grade(folder, None, tmp_path / "out", jobs=JOBS, progress=False,
                                                 zip_path=zip_path)}
    assert results["solution"].scores == {"q1": 3.0, "q2": 3.0, "q3": 4.0}, results["solution"]
    for student, expected in make_fixtures.EXPECTED_CLASS_EDITION.items():
        r = results[student]
        assert (r.status, *(round(r.scores.get(q, 0.0), 2) for q in ("q1", "q2", "q3"))) == expected, r
    assert make_fixtures.EXPECTED["memorised"] == ("graded", 3, 3, 4)


# --- issue 24: the Gradescope autograder zip, run the way Gradescope runs it (homework/gradescope_local.py) ----

@pytest.fixture(scope="module")
def gradescope_python(built, tmp_path_factory) -> Path:
    """setup.sh's environment: the zip's environment.yml in a fresh virtualenv (HOMEWORK_GRADESCOPE_VENV=DIR keeps
    one between runs; it is rebuilt when the zip's requirements change). 3.5-6 minutes when fresh (357 s measured under load)."""
    import os
    venv = Path(os.environ.get("HOMEWORK_GRADESCOPE_VENV") or tmp_path_factory.mktemp("gradescope") / "venv")
    return gradescope_local.setup(build.autograder_zip(NAME, built / "build"), venv)


def test_gradescope_run_scores_like_grade_py(built, report, gradescope_python, tmp_path):
    """Every hw01 submission grade.py grades (the flagged ones it does not run) gets the same points per question
    from the zip run in Gradescope's layout, with no PYTHONPATH: helpers/ and images/ come from the zip."""
    zip_path = build.autograder_zip(NAME, built / "build")
    shutil.copy(built / "solutions" / f"{NAME}.ipynb", tmp_path / "solution.ipynb")
    shutil.copy(built / "student" / f"{NAME}.ipynb", tmp_path / "untouched.ipynb")
    graded = sorted(s for s, row in report.items() if not s.startswith("_") and row["status"] == "graded")
    assert {"solution", "untouched", "complete", "wrong", "memorised", "alternative", "partial"} <= set(graded)
    paths = [tmp_path / f"{s}.ipynb" if (tmp_path / f"{s}.ipynb").is_file()
             else HOMEWORK / "fixtures" / NAME / f"{s}.ipynb" for s in graded]
    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        outcomes = list(pool.map(lambda p: gradescope_local.grade_one(zip_path, p, gradescope_python, 600), paths))
    for student, outcome in zip(graded, outcomes, strict=True):
        assert outcome.status == "graded", (student, outcome)
        expected = _scores(report[student])
        assert ("graded", *(round(outcome.scores[q], 2) for q in ("q1", "q2", "q3"))) == expected, (student, outcome)
