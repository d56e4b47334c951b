"""The grading processes of one run: started by ``homework/grade.py``, never by hand.

``grade.py`` starts this once per run as a *fork server*: it imports what every assignment uses (IPython,
``helpers``, the OpenAI SDK, pydantic, PIL, otter's test classes: about 3.5 s of CPU), runs nothing else, and then,
for each submission, forks a fresh child of itself. The child is a new process (its own session, so the whole tree
is ended at the end; a fresh empty folder of its own as its working directory) that grades exactly one submission
and exits; none is reused, and the server never runs submission code, so every child starts from the same clean
state in milliseconds. The child talks to ``grade.py`` over two pipes ``grade.py`` made for it (handed over with
the fork request, ``socket.send_fds``); the notebook's own output goes to ``/dev/null``. One JSON line each way:

1. ``grade.py`` sends ``{"notebook": "submission.ipynb"}`` (the copy it wrote into the child's folder); the child
   runs its code cells in order in an IPython shell (magics work; a cell's error is kept and the next cell runs, as
   otter does), against the run's one offline backend (``VISION_OFFLINE_PORT``: no server or OCR of its own), and
   answers ``{"executed": N}``. otter-grader is *not importable* from the notebook (the init cell falls back to
   ``homework_checks``, the same public checks), so patching otter reaches nothing.
2. Only then does ``grade.py`` send the tests, public and hidden (``{"tests": {path: source}}``): they were never on
   disk in any folder the submission can see, nor in its process while the notebook's cells ran. Each test file is
   run against the notebook's variables with otter's own ``ExceptionTestFile`` (imported before the notebook ran),
   and the child answers with each test case's outcome and message; ``grade.py`` computes the points itself (with
   otter's rules, from its own copy of the tests) and checks the always-failing canary, whose message carries a
   random per-submission nonce.

What this does not do: the tests call the student's functions, so those functions run in the child while the
tests run (a hostile function could tamper at that moment); ``homework/integrity.py``'s scan (before the run) and
the canary (after it) are the layers for that.
"""

from __future__ import annotations

import json
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
#: Environment variable every process of one submission carries (grade.py ends them all by it).
RUN_TOKEN = "HOMEWORK_GRADING_RUN"


def preload() -> None:
    """Import what every assignment uses, so a submission does not wait for it (done before the pool hands this
    process out)."""
    import httpx  # noqa: F401
    import nbformat  # noqa: F401
    import openai  # noqa: F401
    import PIL.Image  # noqa: F401
    import pydantic  # noqa: F401
    import rapidfuzz.distance  # noqa: F401
    from IPython.core.interactiveshell import InteractiveShell  # noqa: F401
    from otter.test_files.exception_test import ExceptionTestFile  # noqa: F401

    import helpers.client  # noqa: F401
    import helpers.config  # noqa: F401
    import helpers.course_images  # noqa: F401
    import helpers.images  # noqa: F401
    import helpers.tokens  # noqa: F401


def attach_backend() -> None:
    """Use the run's one offline backend (``VISION_OFFLINE_PORT``, started by grade.py) for every offline client
    in this process: ``helpers.offline.ensure_server`` finds an offline backend on that port and uses it, so the
    notebook's ``get_client(offline_settings(...))`` starts no server, no OCR, and shares the run's analyses."""
    from helpers.offline import ServerSettings, ensure_server

    url = ensure_server(ServerSettings.from_environ(os.environ))
    if not url.endswith(f":{os.environ['VISION_OFFLINE_PORT']}"):
        raise SystemExit(f"the run's offline backend is not on port {os.environ['VISION_OFFLINE_PORT']} ({url})")


def serve(sock_fd: int) -> None:
    """The fork server: one request per submission (``{"folder": ..., "token": ...}`` with two pipe ends), one
    child forked for it; answers the child's process id."""
    import signal
    import socket

    sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != HERE]  # grade.py's folder is not importable
    os.environ.setdefault("MPLBACKEND", "Agg")
    preload()
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # children are reaped by the kernel
    sock = socket.socket(fileno=sock_fd)
    buffer = b""
    while True:
        data, fds, _flags, _addr = socket.recv_fds(sock, 65536, 2)
        if not data:
            return
        buffer += data
        if b"\n" not in buffer:
            for fd in fds:
                os.close(fd)
            continue
        line, buffer = buffer.split(b"\n", 1)
        request = json.loads(line)
        pid = os.fork()
        if pid == 0:
            try:
                sock.close()
                child(request["folder"], request["token"], fds[0], fds[1])
            finally:
                os._exit(0)
        for fd in fds:
            os.close(fd)
        sock.sendall(json.dumps({"pid": pid}).encode() + b"\n")


def child(folder: str, token: str, command_fd: int, report_fd: int) -> None:
    """Grade one submission (see the module's docstring), in a new session, in ``folder``."""
    import signal

    os.setsid()
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # the notebook's own subprocesses are waited for as usual
    os.chdir(folder)
    os.environ[RUN_TOKEN] = token
    sys.path.insert(0, folder)  # the submission's own folder, as otter runs it (homework_checks.py is there)
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    commands = os.fdopen(command_fd, "r", encoding="utf-8")
    report = os.fdopen(report_fd, "w", encoding="utf-8")

    def say(message: dict) -> None:
        report.write(json.dumps(message) + "\n")
        report.flush()

    try:
        attach_backend()
    except BaseException as exc:  # noqa: BLE001 - reported to grade.py, which reports it for this submission
        say({"error": f"cannot reach the run's offline backend: {exc}"})
        return
    from IPython.core.interactiveshell import InteractiveShell
    from otter.test_files.exception_test import ExceptionTestFile
    from traitlets.config import Config

    otter = {name: sys.modules.pop(name) for name in list(sys.modules) if name == "otter" or name.startswith("otter.")}
    sys.modules["otter"] = None  # type: ignore[assignment]  # the notebook's `import otter` fails
    class Shell(InteractiveShell):
        def enable_gui(self, gui=None):  # `%matplotlib inline`, as in a kernel: no event loop to start
            pass

    config = Config()
    config.HistoryManager.enabled = False  # no history database, no saving thread
    shell = Shell.instance(config=config)
    say({"ready": os.getpid()})
    job = json.loads(commands.readline())
    import nbformat

    nb = nbformat.read(job["notebook"], as_version=4)
    ran = 0
    for cell in nb.cells:
        if cell.cell_type == "code" and cell.source.strip():
            shell.run_cell(cell.source, store_history=False)
            ran += 1
    say({"executed": ran})
    tests = json.loads(commands.readline())["tests"]
    results = {}
    for path, source in tests.items():
        try:
            sys.modules.update(otter)  # the test file's own `from otter.test_files import test_case`
            try:
                test_file = ExceptionTestFile.from_string(source, path=path)
            finally:
                for name in otter:
                    sys.modules.pop(name, None)
                sys.modules["otter"] = None  # type: ignore[assignment]
            test_file.run(shell.user_ns)
            results[path] = [[r.test_case.name, bool(r.passed), str(r.message)] for r in test_file.test_case_results]
        except Exception:  # a test file that cannot run: every case failed, with the reason
            results[path] = {"error": traceback.format_exc(limit=3)[-2000:]}
    say({"results": results})


if __name__ == "__main__":
    serve(int(sys.argv[1]))
