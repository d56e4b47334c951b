"""Grade a folder of submissions, with no key: ``python homework/grade.py SUBMISSIONS_DIR [-a hw01_images_base64]``.

What is one submission: each ``.ipynb`` in the folder (the file name, without ``.ipynb``, names the student); in
a subfolder, as an LMS bulk download has them (``alice_1234/hw01.ipynb``), the subfolder names the student; a
``.zip`` (otter's submission zip, or a student's zip) is one submission named by the zip, graded from the notebook
inside it. Without ``-a``, the assignment is read from the notebooks (``metadata.otter.assignment_name``, written
by ``otter assign``).

How: every file is read into memory **before anything runs**, and the teacher's folder is never written. Each
submission is then written, alone, into a fresh temporary folder of its own and graded there by a fresh process
of its own, forked from one fork server per run (``homework/runner.py``: the imports are done once, each child
grades one submission and is ended), against one offline backend for the whole run (OCR and the images' analyses
happen once per run), with no key. The child runs the notebook's cells, and only then receives the tests (public
and hidden, from the autograder zip that ``homework/build.py`` made: never on disk where the submission runs); it
reports each check's outcome, and the points are computed here, with otter's rules, from this process's own copy
of the tests. So grading is deterministic, a submission cannot reach the others' files through the grader's
paths, and a change to the teacher's folder during the run (a hostile notebook) is reported and changes no grade.
At the timeout, and after every submission, the whole process tree is ended: the child's session, and every
process carrying its token in its environment (a daemon can detach). A submission that is not a notebook, cannot
be read, crashes the scan or the grader, or times out is reported in the table with its reason, and the others are
still graded. A submission that tries to patch the grader or read the hidden tests is flagged and gets no credit
(``homework/integrity.py`` says what is checked and why; ``homework/runner.py`` what the structure prevents).

Writes, in ``--out`` (default ``homework/reports/ASSIGNMENT``):

- ``grades.csv``   one row per submission: student, status, one column per question (manually graded
                   questions are left blank for the teacher), total, possible, seconds;
- ``feedback/STUDENT.txt``  for the student: each question's points and, for each failed check, its message
                   (what was expected, what came back);
- ``summary.txt``  how many were graded, the mean per question and in total, the time per submission;
- ``rubric.md`` and ``manual.csv``  the rubric of the questions graded by hand (``homework/rubrics.yaml``) and a
                   table to fill in: run ``grade.py`` again (or ``--report-only``) and the points entered there are
                   in ``grades.csv``'s manual columns and ``total with manual``;
- ``lms.csv``      with ``--roster roster.csv`` (any columns, for example Canvas's or Gradescope's export): every
                   roster row with this assignment's points (autograded + manual) in a column named after it, ready
                   to import; a roster row matches a submission whose name equals one of its values (or starts
                   with it followed by ``_``, as LMS folder names do); unmatched submissions are listed.

A progress bar (tqdm, on stderr) counts the submissions and estimates the time left.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import csv
import hashlib
import json
import os
import secrets
import shutil
import signal
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
from build import CHECKS, HOMEWORK, autograder_zip, grading_env, masters  # noqa: E402
from integrity import CANARY, canary_test, scan, with_canary  # noqa: E402
from runner import RUN_TOKEN  # noqa: E402  (the variable each grading process's token is in)


@dataclass
class Result:
    student: str
    status: str = "graded"
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    feedback: dict[str, str] = field(default_factory=dict)


@dataclass
class Submission:
    """One student's notebook, read into memory before anything runs (``data`` None: ``problem`` says why)."""

    student: str
    source: str
    data: bytes | None = None
    problem: str | None = None


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


def collect(folder: Path) -> list[Submission]:
    """Every submission in ``folder`` (files, LMS subfolders, zips), read into memory, sorted by student."""
    found: list[Submission] = []
    for path in sorted(folder.iterdir()):
        if path.name.startswith((".", "__MACOSX")):
            continue
        if path.is_dir():
            notebooks = sorted(p for p in path.rglob("*.ipynb") if ".ipynb_checkpoints" not in p.parts)
            zips = sorted(path.rglob("*.zip"))
            if len(notebooks) == 1:
                found.append(Submission(path.name, str(notebooks[0].relative_to(folder)), notebooks[0].read_bytes()))
            elif not notebooks and len(zips) == 1:
                found.append(_from_zip(path.name, zips[0], folder))
            else:
                what = f"{len(notebooks)} notebooks" if notebooks else "no notebook"
                found.append(Submission(path.name, path.name + "/", problem=f"folder with {what}: hand in one"))
        elif path.suffix == ".zip":
            found.append(_from_zip(path.stem, path, folder))
        elif path.suffix == ".ipynb":
            found.append(Submission(path.stem, path.name, path.read_bytes()))
        else:
            found.append(Submission(path.stem, path.name, problem=f"not a notebook ({path.suffix or 'no extension'})"))
    names = collections.Counter(s.student for s in found)
    for s in found:  # alice.ipynb and alice.zip: keep both, told apart by their file
        if names[s.student] > 1:
            s.student = s.source.replace("/", "_")
    return found


def _from_zip(student: str, path: Path, folder: Path) -> Submission:
    source = str(path.relative_to(folder))
    try:
        with zipfile.ZipFile(path) as z:
            notebooks = [n for n in z.namelist() if n.endswith(".ipynb") and "__MACOSX" not in n
                         and ".ipynb_checkpoints" not in n]
            if len(notebooks) != 1:
                return Submission(student, source, problem=f"zip with {len(notebooks)} notebooks: hand in one")
            info = z.getinfo(notebooks[0])
            if info.file_size > 50_000_000:
                return Submission(student, source, problem="zip holds a notebook over 50 MB")
            return Submission(student, source, z.read(notebooks[0]))
    except (zipfile.BadZipFile, OSError) as exc:
        return Submission(student, source, problem=f"unreadable zip: {exc}")


def infer_assignment(submissions: list[Submission]) -> str:
    """The assignment the notebooks say they are (``metadata.otter.assignment_name``), the most common one."""
    names: collections.Counter[str] = collections.Counter()
    for s in submissions:
        try:
            name = json.loads(s.data or b"{}").get("metadata", {}).get("otter", {}).get("assignment_name")
        except (ValueError, AttributeError):
            continue
        if isinstance(name, str) and name in masters():
            names[name] += 1
    if not names:
        raise SystemExit("could not tell the assignment from the notebooks (no otter metadata): pass -a NAME, one of "
                         + ", ".join(masters()))
    return names.most_common(1)[0][0]


def check_notebook(data: bytes) -> str | None:
    """Why this notebook cannot be graded (malformed, or flagged by the tamper scan), or None."""
    import nbformat

    try:
        nb = nbformat.reads(data.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as exc:  # a malformed file is reported, never fatal
        return f"malformed notebook: {type(exc).__name__}: {str(exc).splitlines()[0][:120] if str(exc) else ''}"
    found = scan(nb)
    if found:
        more = f" (+{len(found) - 2} more)" if len(found) > 2 else ""
        return f"flagged, not run, no credit: {'; '.join(found[:2])}{more}"
    return None


def end_process_tree(pid: int, token: str) -> None:
    """End a grading process's session (its group) and every process that carries its token (detached ones too)."""
    with contextlib.suppress(Exception):
        os.killpg(pid, signal.SIGKILL)
    try:
        import psutil
    except ImportError:  # psutil is in requirements-teacher.txt; without it, the process group only
        return
    for proc in psutil.process_iter():
        with contextlib.suppress(Exception):
            if proc.pid != os.getpid() and proc.environ().get(RUN_TOKEN) == token:
                proc.kill()


def shared_backend() -> int:
    """The run's one offline backend (started once per grade.py process, on a free port): every grading process
    uses it (``homework/runner.py``), so OCR and the image analyses load and run once per run, not per submission."""
    from helpers.offline import ServerSettings, ensure_server

    env = {k: v for k, v in grading_env().items() if k != "VISION_OFFLINE_PORT"}
    url = ensure_server(ServerSettings.from_environ(env))
    return int(url.rstrip("/").rsplit(":", 1)[1])


class Worker:
    """One child of the fork server (``homework/runner.py``) in a fresh folder of its own, for one submission."""

    def __init__(self, pid: int, token: str, folder: Path, commands: int, report: int) -> None:
        self.pid, self.token, self.folder = pid, token, folder
        self.work = folder / "work"
        self.commands, self.report = commands, report
        self._buffer = b""
        self.ready: dict | None = None
        RUNNING[pid] = token

    def wait_ready(self, deadline: float) -> None:
        if self.ready is None:
            self.ready = self.receive(deadline)

    def send(self, message: dict) -> None:
        data = json.dumps(message).encode() + b"\n"
        while data:
            data = data[os.write(self.commands, data):]

    def receive(self, deadline: float) -> dict:
        """The child's next JSON line; TimeoutError at the deadline, RuntimeError if it ended or said why not."""
        import selectors

        with selectors.DefaultSelector() as selector:
            selector.register(self.report, selectors.EVENT_READ)
            while b"\n" not in self._buffer:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError
                if not selector.select(timeout=left):
                    continue
                chunk = os.read(self.report, 1 << 20)
                if not chunk:
                    raise RuntimeError("the grading process ended before it reported (a crash, or os._exit?)")
                self._buffer += chunk
                if len(self._buffer) > 50_000_000:
                    raise RuntimeError("the grading process sent more than 50 MB")
        line, self._buffer = self._buffer.split(b"\n", 1)
        message = json.loads(line)
        if not isinstance(message, dict) or "error" in message:
            raise RuntimeError(str(message.get("error") if isinstance(message, dict) else message)[:200])
        return message

    def end(self) -> None:
        end_process_tree(self.pid, self.token)
        RUNNING.pop(self.pid, None)
        for fd in (self.commands, self.report):
            with contextlib.suppress(OSError):
                os.close(fd)
        shutil.rmtree(self.folder, ignore_errors=True)


class Pool:
    """The run's grading processes: one fork server (``homework/runner.py``, the imports done once) and children
    forked ahead of time (``size``: one per job), each handed out for one submission and replaced in the background."""

    def __init__(self, size: int, total: int | None = None, port: int | None = None) -> None:
        import queue
        import socket
        import threading

        self.ready: queue.Queue[Worker] = queue.Queue()
        self.lock = threading.Lock()
        self.closed = False
        self.started: list[Worker] = []
        self.left = max(size, total if total is not None else size + 1_000_000)  # children still to fork
        self.server = None
        if not size:
            return
        if not hasattr(os, "fork") or not hasattr(socket, "send_fds"):
            raise SystemExit("grading forks a fresh process per submission, which needs Linux or macOS: on Windows, "
                             "run grade.py in WSL (https://learn.microsoft.com/windows/wsl/install)")
        self.port = port if port is not None else shared_backend()
        self.token = secrets.token_hex(8)
        self.folder = Path(tempfile.mkdtemp(prefix="grade-run-"))
        self.sock, theirs = socket.socketpair()
        env = {**grading_env(), RUN_TOKEN: self.token, "VISION_OFFLINE_PORT": str(self.port), "MPLBACKEND": "Agg"}
        with open(self.folder / "server.log", "wb") as log:
            self.server = subprocess.Popen([sys.executable, str(RUNNER), str(theirs.fileno())], env=env,
                                           cwd=self.folder, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                           pass_fds=[theirs.fileno()], start_new_session=True)
        theirs.close()
        RUNNING[self.server.pid] = self.token
        self.replies = self.sock.makefile("rb")
        for _ in range(size):
            self._start()

    def _fork(self) -> Worker:
        import socket

        token = secrets.token_hex(8)
        folder = Path(tempfile.mkdtemp(prefix="grade-"))
        (folder / "work").mkdir()
        command_r, command_w = os.pipe()
        report_r, report_w = os.pipe()
        try:
            request = json.dumps({"folder": str(folder / "work"), "token": token}).encode() + b"\n"
            socket.send_fds(self.sock, [request], [command_r, report_w])
            reply = self.replies.readline()
        finally:
            os.close(command_r)
            os.close(report_w)
        if not reply:
            log = (self.folder / "server.log").read_bytes()[-400:].decode(errors="replace").strip()
            raise RuntimeError(f"the grading server ended: {log.splitlines()[-1] if log else 'no output'}")
        return Worker(json.loads(reply)["pid"], token, folder, command_w, report_r)

    def _start(self) -> None:
        with self.lock:
            if self.closed or self.left <= 0 or self.server is None:
                return
            self.left -= 1
            try:
                worker = self._fork()
            except Exception as exc:  # the server is gone: every submission waiting says why
                worker = exc  # type: ignore[assignment]
            else:
                self.started.append(worker)
        self.ready.put(worker)

    def take(self) -> Worker:
        import threading

        worker = self.ready.get()
        if isinstance(worker, Exception):
            self.ready.put(worker)  # every submission still waiting gets the same reason
            raise worker
        with self.lock:
            self.started.remove(worker)  # ended by its submission, once: its process id may be reused after
        threading.Thread(target=self._start, daemon=True).start()
        return worker

    def close(self) -> None:
        with self.lock:
            self.closed = True
            workers, self.started = self.started, []
        for worker in workers:
            worker.end()
        if self.server is not None:
            end_process_tree(self.server.pid, self.token)
            RUNNING.pop(self.server.pid, None)
            with contextlib.suppress(Exception):
                self.server.wait(timeout=5)
                self.replies.close()
                self.sock.close()
            shutil.rmtree(self.folder, ignore_errors=True)
            self.server = None


#: The grading processes alive (pid: token), ended if grade.py itself is stopped (Ctrl-C, SIGTERM).
RUNNING: dict[int, str] = {}
RUNNER = Path(__file__).resolve().parent / "runner.py"


def end_all_runs() -> None:
    for pid, token in list(RUNNING.items()):
        end_process_tree(pid, token)


def grade_one(submission: Submission | Path, zip_path: Path, timeout: float, pool: Pool | None = None) -> Result:
    """Grade one submission from its own copy in its own folder and process; never raises."""
    if isinstance(submission, Path):
        submission = Submission(submission.stem, submission.name, submission.read_bytes())
    result = Result(student=submission.student)
    start = time.perf_counter()
    own = None
    try:
        if pool is None and submission.data is not None:
            own = pool = Pool(1, total=1)
        _grade_into(result, submission, zip_path, timeout, pool)
    except Exception as exc:  # one submission's crash (in the scan or the grader) never stops the run
        result.status, result.scores = f"grader failed: {type(exc).__name__}: {str(exc)[:160]}", {}
    finally:
        if own is not None:
            own.close()
    result.seconds = time.perf_counter() - start
    return result


def read_tests(zip_path: Path) -> dict[str, str]:
    """The autograder's test files (``tests/NAME.py``: public and hidden), read into memory."""
    with zipfile.ZipFile(zip_path) as z:
        return {n: z.read(n).decode() for n in sorted(z.namelist()) if n.startswith("tests/") and n.endswith(".py")}


def _grade_into(result: Result, submission: Submission, zip_path: Path, timeout: float, pool: Pool | None) -> None:
    if submission.data is None:
        result.status = submission.problem or "not graded"
        return
    problem = check_notebook(submission.data)
    if problem:
        result.status = problem
        return
    assert pool is not None
    tests = read_tests(zip_path)
    nonce = secrets.token_hex(16)
    tests[f"tests/{CANARY}.py"] = canary_test(nonce)  # whether or not the zip has it (with_canary): this nonce
    worker = pool.take()
    try:
        worker.wait_ready(time.monotonic() + max(timeout, 120))  # a process still starting is not the student's time
        deadline = time.monotonic() + timeout
        (worker.work / "submission.ipynb").write_bytes(submission.data)
        shutil.copyfile(CHECKS, worker.work / "homework_checks.py")
        worker.send({"notebook": "submission.ipynb"})
        worker.receive(deadline)  # {"executed": N}: the notebook has run; only now do the tests exist for it
        worker.send({"tests": tests})
        report = worker.receive(deadline).get("results")
    except TimeoutError:
        result.status = f"timed out after {timeout:.0f} s"
        return
    finally:
        worker.end()
    if not isinstance(report, dict) or set(report) != set(tests):
        result.status = "grader failed: the grading process did not report every test file"
        return
    from otter.test_files.abstract_test import TestCaseResult
    from otter.test_files.exception_test import ExceptionTestFile

    files = []
    for path, source in tests.items():
        test_file = ExceptionTestFile.from_string(source, path=path)  # the teacher's tests, read here: points
        outcome = report[path]
        cases = {tc.name: tc for tc in test_file.test_cases}
        if isinstance(outcome, dict):  # the file could not run: every case failed
            outcome = [[name, False, str(outcome.get("error", ""))[:2000]] for name in cases]
        if [o[0] for o in outcome] != list(cases):
            result.status = f"grader failed: the grading process reported other test cases for {path}"
            return
        test_file.test_case_results = [TestCaseResult(test_case=cases[name], message=str(message)[:5000],
                                                      passed=passed is True)
                                       for name, passed, message in outcome]
        files.append(test_file)
    guard = [f for f in files if f.name == CANARY]
    if not guard or guard[0].test_case_results[0].passed or nonce not in guard[0].test_case_results[0].message:
        result.status = ("flagged, no credit: the grader was patched at run time (its always-failing test passed, "
                         "or the report lacked that test's nonce)")
        return
    graded = [f for f in files if f.name != CANARY]
    result.feedback["Public Tests"] = "\n\n".join(f.summary(public_only=True) for f in graded)
    for test_file in graded:
        result.scores[test_file.name] = round(float(test_file.score), 5)
        result.feedback[test_file.name] = test_file.summary()


def _fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def grade(submissions: Path, assignment: str | None, out: Path | None = None, jobs: int = 1, timeout: float = 300,
          zip_path: Path | None = None, progress: bool = True, roster: Path | None = None) -> list[Result]:
    found = collect(submissions)
    before = _fingerprint(submissions)
    assignment = assignment or infer_assignment(found)
    out = out or HOMEWORK / "reports" / assignment
    zip_path = zip_path or autograder_zip(assignment)
    if not zip_path.is_file():
        raise SystemExit(f"{zip_path} is missing: run `python homework/build.py {assignment}` first")
    auto, manual = questions(zip_path)
    started = time.perf_counter()
    gradable = sum(s.data is not None for s in found)  # an upper bound: the scan may still set some aside
    workers = Pool(min(max(1, jobs), gradable), total=gradable)
    try:
        with tempfile.TemporaryDirectory(prefix="otter-zip-") as tmp, \
                ThreadPoolExecutor(max_workers=max(1, jobs)) as threads:
            guarded = with_canary(zip_path, Path(tmp))
            futures = [threads.submit(grade_one, s, guarded, timeout, workers) for s in found]
            try:
                results = [f.result() for f in _progress(futures, len(found), assignment, progress)]
            except BaseException:  # Ctrl-C or SIGTERM: end every submission's processes before leaving
                for future in futures:
                    future.cancel()
                workers.close()
                end_all_runs()
                raise
    finally:
        workers.close()
    changed = sorted(k for k, v in _fingerprint(submissions).items() if before.get(k) != v)
    changed += sorted(k for k in before if not (submissions / k).is_file())
    write_report(results, auto, manual, out, assignment, time.perf_counter() - started, changed, roster)
    return results


def _progress(futures, total: int, assignment: str, show: bool):
    from concurrent.futures import as_completed

    try:
        from tqdm import tqdm
    except ImportError:  # tqdm is in requirements-teacher.txt; without it, no bar
        tqdm = None
    bar = tqdm(total=total, desc=f"grading {assignment}", unit="submission", file=sys.stderr,
               disable=not show) if tqdm else None
    for future in as_completed(futures):
        if bar:
            bar.update(1)
        future.result()
    if bar:
        bar.close()
    return futures


def write_report(results: list[Result], auto: dict[str, float], manual: dict[str, float], out: Path,
                 assignment: str = "", elapsed: float = 0.0, changed: list[str] | None = None,
                 roster: Path | None = None) -> None:
    out.mkdir(parents=True, exist_ok=True)
    possible = sum(auto.values())
    entered = manual_points(out / "manual.csv", results, manual)
    write_rubric(out / "rubric.md", assignment, manual)
    with open(out / "grades.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["student", "status", *auto, *(f"{q} (manual)" for q in manual), "total",
                         f"possible (autograded; +{sum(manual.values()):g} manual)", "seconds", "total with manual",
                         "possible with manual"])
        for r in results:
            graded = r.status == "graded"
            cells = [f"{r.scores.get(q, 0.0):g}" if graded else "" for q in auto]
            by_hand = entered.get(r.student, {})
            total = f"{sum(r.scores.get(q, 0.0) for q in auto):g}" if graded else ""
            with_manual = f"{final_points(r, auto, by_hand):g}" if graded else ""
            writer.writerow([r.student, r.status, *cells, *(f"{by_hand[q]:g}" if q in by_hand else "" for q in manual),
                             total, f"{possible:g}", f"{r.seconds:.1f}", with_manual,
                             f"{possible + sum(manual.values()):g}"])
    write_feedback(results, auto, manual, out / "feedback", assignment, entered)
    if roster:
        write_lms(roster, out / "lms.csv", results, auto, entered, assignment)
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
    if changed:
        lines.append(f"WARNING: {len(changed)} file(s) in the submissions folder changed during grading (a hostile "
                     f"submission?): {', '.join(changed[:5])}; every grade comes from the copy read before any ran")
    if elapsed:
        lines.append(f"graded {len(results)} in {elapsed:.0f} s")
    (out / "summary.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    print(f"report: {out / 'grades.csv'}, feedback: {out / 'feedback'}")


def write_feedback(results: list[Result], auto: dict[str, float], manual: dict[str, float], folder: Path,
                   assignment: str, entered: dict[str, dict[str, float]] | None = None) -> None:
    """One text file per student: each question's points and the messages of the checks that failed."""
    folder.mkdir(parents=True, exist_ok=True)
    for r in results:
        lines = [f"{assignment}: feedback for {r.student}", ""]
        if r.status != "graded":
            lines.append(f"Not graded: {r.status}")
        else:
            total = sum(r.scores.get(q, 0.0) for q in auto)
            lines.append(f"Autograded: {total:g} / {sum(auto.values()):g}")
            for q, points in auto.items():
                got = r.scores.get(q, 0.0)
                lines += ["", f"{q}: {got:g} / {points:g}"]
                if got < points:
                    lines += ["  " + line for line in _failures(r.feedback.get(q, "")).splitlines()]
        for q, points in manual.items():
            got = (entered or {}).get(r.student, {}).get(q)
            lines.append(f"{q}: {got:g} / {points:g} (graded by your teacher)" if got is not None
                         else f"{q}: graded by your teacher ({points:g} points)")
        if r.feedback.get("Public Tests"):
            lines += ["", "Public checks (what grader.check showed in the notebook):",
                      *("  " + line for line in _failures(r.feedback["Public Tests"]).splitlines())]
        (folder / f"{r.student}.txt").write_text("\n".join(lines) + "\n")


def _failures(output: str) -> str:
    """otter's summary of one question, without the tracebacks' frames: the failing test and its message."""
    kept = []
    for line in output.splitlines():
        stripped = line.strip()
        if stripped.startswith(("File ", "Traceback", "^")) or not stripped:
            continue
        kept.append(line)
    return "\n".join(kept[-40:]) or "a check failed (no message)"


def final_points(r: Result, auto: dict[str, float], by_hand: dict[str, float]) -> float:
    return sum(r.scores.get(q, 0.0) for q in auto) + sum(by_hand.values())


def manual_points(path: Path, results: list[Result], manual: dict[str, float]) -> dict[str, dict[str, float]]:
    """The points the teacher entered in ``manual.csv``; the file is written (or completed) with a row per student."""
    entered: dict[str, dict[str, float]] = {}
    rows: dict[str, dict[str, str]] = {}
    if path.is_file():
        with open(path, newline="") as f:
            for row in csv.DictReader(f):
                rows[row.get("student", "")] = row
                for q, top in manual.items():
                    value = (row.get(q) or "").strip()
                    if not value:
                        continue
                    try:
                        points = float(value)
                    except ValueError:
                        raise SystemExit(f"{path}: {q} of {row.get('student')!r} is {value!r}, not a number") from None
                    if not 0 <= points <= top:
                        raise SystemExit(f"{path}: {q} of {row.get('student')!r} is {points:g}, outside 0-{top:g}")
                    entered.setdefault(row["student"], {})[q] = points
    if manual:
        with open(path, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["student", *manual, "comment"])
            for r in results:
                old = rows.get(r.student, {})
                writer.writerow([r.student, *(old.get(q, "") for q in manual), old.get("comment", "")])
    return entered


def write_rubric(path: Path, assignment: str, manual: dict[str, float]) -> None:
    """rubric.md: each manual question's criteria and points, from homework/rubrics.yaml."""
    import yaml

    if not manual:
        return
    rubrics = yaml.safe_load((HOMEWORK / "rubrics.yaml").read_text()) or {}
    lines = [f"# {assignment}: questions graded by hand", "",
             "Enter the points in manual.csv (one row per student), then run grade.py again: they are added to "
             "grades.csv's `total with manual` and to lms.csv.", ""]
    for q, points in manual.items():
        lines += [f"## {q} ({points:g} points)", ""]
        for item in (rubrics.get(assignment) or {}).get(q) or []:
            lines.append(f"- **{item['points']:g}**: {' '.join(str(item['criterion']).split())}")
        lines.append("")
    path.write_text("\n".join(lines))


def write_lms(roster: Path, path: Path, results: list[Result], auto: dict[str, float],
              entered: dict[str, dict[str, float]], assignment: str) -> None:
    """The roster with this assignment's points added as one column, ready for an LMS import."""
    with open(roster, newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        rows, columns = list(reader), list(reader.fieldnames or [])
    if not columns:
        raise SystemExit(f"{roster} has no header row: its first line names the columns (for example Student, ID, Email)")

    def matches(row: dict[str, str], student: str) -> bool:
        values = {v.strip().lower() for v in row.values() if v and v.strip()}
        name = student.lower()
        return name in values or any(name.startswith(v + "_") for v in values)

    matched: set[str] = set()
    for row in rows:
        found = [r for r in results if matches(row, r.student)]
        graded = [r for r in found if r.status == "graded"]
        row[assignment] = f"{final_points(graded[0], auto, entered.get(graded[0].student, {})):g}" if graded else ""
        matched.update(r.student for r in found)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=[*columns, assignment])
        writer.writeheader()
        writer.writerows(rows)
    unmatched = sorted(r.student for r in results if r.student not in matched)
    if unmatched:
        print(f"lms.csv: {len(unmatched)} submission(s) match no roster row: {', '.join(unmatched[:10])}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submissions", type=Path, help="a folder of submissions: .ipynb files, subfolders or zips")
    parser.add_argument("-a", "--assignment", help="default: read from the notebooks' otter metadata")
    parser.add_argument("-o", "--out", type=Path, help="report folder (default homework/reports/ASSIGNMENT)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per submission")
    parser.add_argument("--roster", type=Path, help="a roster CSV (an LMS export): writes lms.csv with the points")
    parser.add_argument("--autograder", type=Path, help="the autograder zip (default homework/build/NAME/autograder.zip;"
                        " a class edition's: DIR/build/NAME/autograder.zip)")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so `kill` ends the submissions' processes too
    if not args.submissions.is_dir():
        raise SystemExit(f"{args.submissions} is not a folder")
    if args.roster and not args.roster.is_file():
        raise SystemExit(f"{args.roster} is not a file: pass the roster CSV exported from your LMS")
    grade(args.submissions, args.assignment, args.out, args.jobs, args.timeout, zip_path=args.autograder,
          roster=args.roster)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
