"""Provider matrix: run every notebook against the course's own server playing a *remote* provider.

The ordinary test run (``pytest``) executes the notebooks against the offline backend each kernel starts for
itself. A learner who brings a key takes another path through the helpers: a provider read from the
environment, a model that is not the course default, an Azure deployment name that is not a model name. This
script walks that path without the internet and without spending money:

1. it starts ``python -m helpers.offline --port N`` as a separate process, the stand-in for the remote service
   (its environment has ``VISION_OFFLINE_DOWNLOADS=off``: no internet fetches);
2. for each configuration it executes every notebook in a scratch copy of the repository (the committed
   notebooks are never touched) in a kernel whose environment has no ``OPENAI_*``, ``AZURE_*``, ``VISION_*``
   or ``COURSE_*`` variable except the configuration's own, plus ``VISION_DOTENV=off`` (a developer's ``.env``
   does not interfere), ``VISION_CATALOG_DATE`` (the date pin of ``conftest.py``) and ``OMP_NUM_THREADS=1``;
3. it counts error cells (an output of type ``error``) and stderr tracebacks per notebook, counts the requests
   the remote server received while each notebook ran (from the server's request log), and checks that the
   fake key never appears in any output.

Configurations:

``compatible``  ``OPENAI_BASE_URL=http://127.0.0.1:N/v1`` and ``OPENAI_API_KEY=sk-test-...``, nothing else
``azure``       ``AZURE_OPENAI_ENDPOINT``, ``AZURE_OPENAI_API_KEY``, ``AZURE_OPENAI_API_VERSION=2024-10-21``,
                ``AZURE_OPENAI_DEPLOYMENT=my-vision`` (a deployment name that is not a model name), nothing else

(An ``openai`` configuration with a key only would need api.openai.com, so it is not here; add one to
``CONFIGURATIONS`` when a stand-in for that host exists.)

Usage::

    python scripts/provider_matrix.py                          # both configurations, every notebook
    python scripts/provider_matrix.py --config azure --notebook 07 --report /tmp/matrix.json
    pytest -m providers tests/test_provider_matrix.py          # the same, as a test (not in plain `pytest`)

Exit status 1 when any notebook has an error cell, a stderr traceback, a leaked key or did not finish.
The fake keys are printed masked (last four characters only), and so is anything the report quotes.
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import re
import secrets
import shutil
import socket
import string
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent

CATALOG_DATE = "2026-11-21"          # the same pin as conftest.py
CELL_TIMEOUT = 300                   # seconds per cell, as nbval in pyproject.toml
NOTEBOOK_TIMEOUT = 1800              # seconds for a whole notebook (a hung kernel must not hang the matrix)
AZURE_API_VERSION = "2024-10-21"
AZURE_DEPLOYMENT = "my-vision"       # deliberately not a model name
COURSE_PREFIXES = ("OPENAI_", "AZURE_", "VISION_", "COURSE_")
EVALUE_CHARS = 200

# A request line in the server's log: the stdlib server's `--verbose` line ("POST /v1/... -> 200 (12 ms)")
# or an ASGI access log line ('"POST /v1/... HTTP/1.1" 200').
_REQUEST_LINE = re.compile(r"\b(GET|POST|PUT|DELETE|PATCH|HEAD|OPTIONS) (/[^\s\"?]*)(?:\?[^\s\"]*)?"
                           r"(?: -> (\d{3}|\S+)| HTTP/[\d.]+\" (\d{3}))")
_DEPLOYMENT_PATH = re.compile(r"^/openai/deployments/([^/]+)/")


# --- configurations -------------------------------------------------------------------------------------------

@dataclass
class Configuration:
    """One way a learner configures the course: the variables to set, and which of them are secrets."""

    name: str
    variables: dict[str, str]
    secrets: list[str]
    deployment: str | None = None
    description: str = ""


def _random_key(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def compatible_configuration(server_url: str) -> Configuration:
    """``OPENAI_BASE_URL`` of the stand-in and a random ``sk-test-`` key, nothing else."""
    key = "sk-test-" + _random_key(string.ascii_letters + string.digits, 40)
    return Configuration("compatible", {"OPENAI_BASE_URL": f"{server_url}/v1", "OPENAI_API_KEY": key}, [key],
                         description="OPENAI_BASE_URL + OPENAI_API_KEY only")


def azure_configuration(server_url: str) -> Configuration:
    """The four Azure variables, with a deployment name that is not a model name, nothing else."""
    key = _random_key("0123456789abcdef", 32)
    return Configuration("azure", {"AZURE_OPENAI_ENDPOINT": server_url, "AZURE_OPENAI_API_KEY": key,
                                   "AZURE_OPENAI_API_VERSION": AZURE_API_VERSION,
                                   "AZURE_OPENAI_DEPLOYMENT": AZURE_DEPLOYMENT},
                         [key], deployment=AZURE_DEPLOYMENT,
                         description=f"four AZURE_OPENAI_* variables, deployment {AZURE_DEPLOYMENT!r}")


CONFIGURATIONS: dict[str, Callable[[str], Configuration]] = {
    "compatible": compatible_configuration,
    "azure": azure_configuration,
}


def mask(secret: str) -> str:
    """``'…abcd'``: what the report may show of a key."""
    return "…" + secret[-4:]


def redact(text: str, secrets_: Iterable[str]) -> str:
    """``text`` with every secret masked."""
    for secret in secrets_:
        if secret:
            text = text.replace(secret, mask(secret))
    return text


def _with_root(env: dict[str, str], root: Path | None) -> dict[str, str]:
    """``env`` importing ``helpers`` from ``root`` (another checkout, e.g. a worktree of the last commit)."""
    if root is not None and root.resolve() != ROOT:
        env["PYTHONPATH"] = os.pathsep.join([str(root.resolve())] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH")
                                                                      else []))
    return env


def kernel_environment(configuration: Configuration, base: Mapping[str, str] | None = None,
                       root: Path | None = None) -> dict[str, str]:
    """The parent's environment without any course variable, plus the configuration's and the fixed pins."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(COURSE_PREFIXES)}
    env.pop("PYTEST_CURRENT_TEST", None)
    _with_root(env, root)
    env.update(VISION_DOTENV="off", VISION_CATALOG_DATE=CATALOG_DATE, OMP_NUM_THREADS="1")
    env.update(configuration.variables)
    return env


def server_environment(base: Mapping[str, str] | None = None, root: Path | None = None) -> dict[str, str]:
    """The stand-in server's environment: clean, no internet downloads, same date pin."""
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith(COURSE_PREFIXES)}
    _with_root(env, root)
    env.update(VISION_DOTENV="off", VISION_CATALOG_DATE=CATALOG_DATE, OMP_NUM_THREADS="1",
               VISION_OFFLINE_DOWNLOADS="off", PYTHONUNBUFFERED="1")
    return env


# --- the stand-in server ---------------------------------------------------------------------------------------

@dataclass
class LoggedRequest:
    method: str
    path: str
    status: int | None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _supports_verbose(root: Path = ROOT) -> bool:
    try:
        out = subprocess.run([sys.executable, "-m", "helpers.offline", "--help"], cwd=root, capture_output=True,
                             text=True, timeout=120, env=server_environment(root=root))
    except (OSError, subprocess.TimeoutExpired):
        return False
    return "--verbose" in out.stdout


class RemoteServer:
    """``python -m helpers.offline --port N`` in its own process, with its request log collected."""

    def __init__(self, log_dir: Path, name: str = "server", verbose: bool | None = None,
                 root: Path = ROOT) -> None:
        self.log_dir = log_dir
        self.name = name
        self.root = root
        self.verbose = _supports_verbose(root) if verbose is None else verbose
        self.port = 0
        self.process: subprocess.Popen[str] | None = None
        self.requests: list[LoggedRequest] = []
        self.tracebacks = 0
        self.exceptions: list[str] = []         # the last line of each traceback the server printed
        self._in_traceback = False
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._readers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 180.0) -> str:
        for _attempt in range(3):
            self.port = _free_port()
            cmd = [sys.executable, "-m", "helpers.offline", "--host", "127.0.0.1", "--port", str(self.port)]
            if self.verbose:
                cmd.append("--verbose")
            self.process = subprocess.Popen(cmd, cwd=self.root, env=server_environment(root=self.root), stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True, errors="replace", bufsize=1)
            reader = threading.Thread(target=self._read, args=(self.process,), daemon=True,
                                      name=f"{self.name}-log")
            reader.start()
            self._readers.append(reader)
            if self._wait_ready(timeout):
                with self._lock:        # the readiness probes are not the notebooks' requests
                    self.requests.clear()
                return self.url
            self.stop()
        raise RuntimeError(f"the stand-in server did not start; its output:\n{self.output()[-4000:]}")

    def _wait_ready(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False
            request = urllib.request.Request(f"{self.url}/v1/models",
                                             headers={"Authorization": "Bearer readiness-probe"})
            try:
                with urllib.request.urlopen(request, timeout=5) as response:
                    if response.status < 500:
                        return True
            except urllib.error.HTTPError as err:
                if err.code < 500:
                    return True
            except (OSError, urllib.error.URLError):
                pass
            time.sleep(0.25)
        return False

    def _read(self, process: subprocess.Popen[str]) -> None:
        assert process.stdout is not None
        log_path = self.log_dir / f"{self.name}.log"
        with open(log_path, "a", encoding="utf-8") as log_file:
            for line in process.stdout:
                log_file.write(line)
                log_file.flush()
                match = _REQUEST_LINE.search(line)
                with self._lock:
                    self._lines.append(line)
                    if line.startswith("Traceback"):
                        self.tracebacks += 1
                        self._in_traceback = True
                    elif self._in_traceback and line.strip() and not line[:1].isspace():
                        self._in_traceback = False
                        self.exceptions.append(line.strip()[:EVALUE_CHARS])
                    if match:
                        code = match.group(3) or match.group(4) or ""
                        status = int(code) if code.isdigit() else None
                        self.requests.append(LoggedRequest(match.group(1), match.group(2), status))

    def mark(self) -> tuple[int, int]:
        """A position in the log: (requests so far, server tracebacks so far)."""
        with self._lock:
            return len(self.requests), len(self.exceptions)

    def since(self, mark: tuple[int, int], settle: float = 0.5) -> tuple[list[LoggedRequest], list[str]]:
        """Requests logged and exceptions the server printed since ``mark`` (once the log is quiet)."""
        last, deadline = -1, time.monotonic() + 10
        while time.monotonic() < deadline:
            with self._lock:
                count = len(self._lines)
            if count == last:
                break
            last = count
            time.sleep(settle)
        with self._lock:
            return list(self.requests[mark[0]:]), list(self.exceptions[mark[1]:])

    def output(self) -> str:
        with self._lock:
            return "".join(self._lines)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=90)      # stop() waits for the OCR warm-up
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.process = None

    def __enter__(self) -> RemoteServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- executing one notebook ------------------------------------------------------------------------------------

def scratch_copy(workspace: Path, root: Path = ROOT) -> Path:
    """A copy of the repository's notebooks/ next to links to everything else (``../images`` etc. resolve);
    returns the notebooks folder of the copy."""
    if workspace.exists():              # left by an earlier --keep run (rmtree unlinks links, never follows them)
        shutil.rmtree(workspace)
    workspace.mkdir(parents=True)
    for entry in root.iterdir():
        if entry.name in ("notebooks", ".git") or entry.name.startswith(".pytest"):
            continue
        (workspace / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())
    target = workspace / "notebooks"
    shutil.copytree(root / "notebooks", target, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    return target


def _execute_in_this_process(source: str, destination: str, cwd: str) -> int:
    """Child-process entry point: execute ``source`` with nbclient in ``cwd``, write it to ``destination``.

    The kernel inherits this process's environment (set by the parent). Errors in cells are recorded, not
    raised; a dead kernel or a notebook-level failure is written to ``destination + '.failure'``.
    """
    import nbformat
    from nbclient import NotebookClient

    failure = None
    for attempt in (1, 2):
        nb = nbformat.read(source, as_version=4)
        client = NotebookClient(nb, timeout=CELL_TIMEOUT, allow_errors=True, interrupt_on_timeout=True,
                                kernel_name="python3", resources={"metadata": {"path": cwd}})
        try:
            client.execute()
            failure = None
        except Exception as err:  # noqa: BLE001 - the report says what happened, the matrix goes on
            failure = f"{type(err).__name__}: {err}"
            # A kernel that dies before its first reply never ran a cell: that is the machine (seen once in CI,
            # 2026-12-07: jupyter_client picks the kernel's ports before the kernel binds them, and another
            # process can take one meanwhile), not the notebook. Start it once more; the report says so.
            if attempt == 1 and "before replying to kernel_info" in failure:
                Path(destination + ".restarted").write_text(failure, encoding="utf-8")
                continue
        break
    nbformat.write(client.nb, destination)
    if failure:
        Path(destination + ".failure").write_text(failure, encoding="utf-8")
    return 0


@dataclass
class ErrorCell:
    index: int
    ename: str
    evalue: str
    kind: str = "error"          # "error" (an error output) or "stderr" (a traceback printed to stderr)
    follow_on: bool = False      # a NameError for a name an earlier failed cell of the notebook would have set


@dataclass
class NotebookResult:
    configuration: str
    notebook: str
    seconds: float
    error_cells: list[ErrorCell] = field(default_factory=list)
    stderr_tracebacks: list[ErrorCell] = field(default_factory=list)
    leaked_key_cells: list[int] = field(default_factory=list)
    requests: int | None = None
    request_paths: dict[str, int] = field(default_factory=dict)
    deployments: dict[str, int] = field(default_factory=dict)
    statuses: dict[str, int] = field(default_factory=dict)        # the remote's answers, by HTTP status
    server_errors: int = 0            # responses with status >= 500 logged by the stand-in
    server_exceptions: dict[str, int] = field(default_factory=dict)   # tracebacks the stand-in printed
    failure: str | None = None        # the notebook did not run to the end (dead kernel, timeout, ...)
    kernel_restarted: str | None = None   # why the first kernel died before running a cell (started once more)

    @property
    def ok(self) -> bool:
        return not (self.error_cells or self.stderr_tracebacks or self.leaked_key_cells or self.failure)


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value or "")


def analyse(nb: Any, secrets_: Sequence[str]) -> tuple[list[ErrorCell], list[ErrorCell], list[int]]:
    """(error cells, stderr tracebacks, indexes of cells whose outputs contain a secret) of an executed notebook.

    Cell indexes count every cell (markdown too) from 0, as ``nb.cells[i]``.
    """
    errors: list[ErrorCell] = []
    tracebacks: list[ErrorCell] = []
    leaks: list[int] = []
    failed_sources: list[str] = []
    for index, cell in enumerate(nb.cells):
        outputs = cell.get("outputs", []) if cell.get("cell_type") == "code" else []
        serialized = json.dumps(outputs, ensure_ascii=False)
        if any(s and s in serialized for s in secrets_):
            leaks.append(index)
        for output in outputs:
            kind = output.get("output_type")
            if kind == "error":
                error = ErrorCell(index, str(output.get("ename", "")),
                                  redact(str(output.get("evalue", "")), secrets_)[:EVALUE_CHARS])
                missing = re.fullmatch(r"name '(\w+)' is not defined", error.evalue)
                error.follow_on = bool(missing and error.ename == "NameError" and any(
                    re.search(rf"\b{missing.group(1)}\b", source) for source in failed_sources))
                errors.append(error)
                failed_sources.append(_text(cell.get("source")))
                break
        for output in outputs:
            if output.get("output_type") == "stream" and output.get("name") == "stderr":
                text = _text(output.get("text"))
                if "Traceback" in text:
                    last = [line for line in text.strip().splitlines() if line.strip()][-1]
                    name, _, value = last.partition(":")
                    tracebacks.append(ErrorCell(index, name.strip()[:80],
                                                redact(value.strip(), secrets_)[:EVALUE_CHARS], "stderr"))
                    break
    return errors, tracebacks, leaks


def execute_notebook(notebook: Path, configuration: Configuration, workspace: Path,
                     server: RemoteServer | None = None, root: Path = ROOT) -> NotebookResult:
    """Execute one notebook of ``workspace`` (a :func:`scratch_copy`) under ``configuration``."""
    import nbformat

    source = workspace / "notebooks" / notebook.name
    destination = workspace / f"{notebook.stem}.executed.ipynb"
    mark = server.mark() if server is not None else None
    started = time.monotonic()
    failure = None
    with open(workspace / f"{notebook.stem}.child.log", "w", encoding="utf-8") as child_log:
        try:
            subprocess.run([sys.executable, str(Path(__file__).resolve()), "--execute-one", str(source),
                            str(destination), str(source.parent)], cwd=source.parent,
                           env=kernel_environment(configuration, root=root), stdout=child_log, stderr=subprocess.STDOUT,
                           timeout=NOTEBOOK_TIMEOUT, check=True)
        except subprocess.TimeoutExpired:
            failure = f"the notebook did not finish in {NOTEBOOK_TIMEOUT} s"
        except subprocess.CalledProcessError as err:
            failure = f"the executing process exited with status {err.returncode}"
    seconds = time.monotonic() - started
    result = NotebookResult(configuration.name, notebook.stem, round(seconds, 1))
    failure_file = Path(str(destination) + ".failure")
    if failure is None and failure_file.exists():
        failure = failure_file.read_text(encoding="utf-8")
    restarted_file = Path(str(destination) + ".restarted")
    if restarted_file.exists():
        result.kernel_restarted = restarted_file.read_text(encoding="utf-8")[:300]
    if destination.exists():
        nb = nbformat.read(destination, as_version=4)
        result.error_cells, result.stderr_tracebacks, result.leaked_key_cells = analyse(nb, configuration.secrets)
    elif failure is None:
        failure = "no executed notebook was written"
    if failure is not None:
        result.failure = redact(failure, configuration.secrets)[:1000]
    if server is not None and mark is not None:
        logged, exceptions = server.since(mark)
        for line in exceptions:
            line = redact(line, configuration.secrets)
            result.server_exceptions[line] = result.server_exceptions.get(line, 0) + 1
        if server.verbose:
            result.requests = len(logged)
            for request in logged:
                key = f"{request.method} {request.path}"
                result.request_paths[key] = result.request_paths.get(key, 0) + 1
                deployment = _DEPLOYMENT_PATH.match(request.path)
                if deployment:
                    name = deployment.group(1)
                    result.deployments[name] = result.deployments.get(name, 0) + 1
                status = str(request.status) if request.status is not None else "closed"
                result.statuses[status] = result.statuses.get(status, 0) + 1
                if request.status is not None and request.status >= 500:
                    result.server_errors += 1
    return result


# --- the matrix --------------------------------------------------------------------------------------------------

def notebooks(selection: Sequence[str] | None = None, root: Path = ROOT) -> list[Path]:
    """The course's notebooks, optionally only those whose name starts with one of ``selection``."""
    found = sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    if selection:
        found = [p for p in found if any(p.name.startswith(s) or p.stem == s for s in selection)]
    return found


# slow notebooks first, so two workers finish at about the same time
_FIRST = ("05", "08", "07", "02", "09")


def run_matrix(configuration_names: Sequence[str] = tuple(CONFIGURATIONS), selection: Sequence[str] | None = None,
               workers: int = 2, keep: Path | None = None, log: Callable[[str], None] | None = print,
               root: Path = ROOT) -> dict[str, Any]:
    """Execute the selected notebooks under each configuration, ``workers`` notebooks at a time.

    Each worker owns one stand-in server (so the requests it logs while a notebook runs belong to that
    notebook). ``root`` is the checkout to test (default: this one); its ``helpers`` are imported by the
    server and the kernels. Returns the report (a JSON-ready dict, secrets masked).
    """
    root = Path(root).resolve()
    say = log or (lambda message: None)
    chosen = notebooks(selection, root)
    if not chosen:
        raise ValueError(f"no notebook matches {selection!r}")
    scratch = Path(tempfile.mkdtemp(prefix="provider-matrix-")) if keep is None else keep
    scratch.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    workers = max(1, min(workers, len(chosen) * len(configuration_names)))
    servers = [RemoteServer(scratch, f"server{i}", root=root) for i in range(workers)]
    results: list[NotebookResult] = []
    configurations: dict[str, list[Configuration]] = {name: [] for name in configuration_names}
    try:
        for server in servers:
            server.start()
        say(f"stand-in servers: {', '.join(s.url for s in servers)} (request log: "
            f"{'yes' if servers[0].verbose else 'no, --verbose not supported'})")
        order = sorted(chosen, key=lambda p: (p.name[:2] not in _FIRST,
                                             _FIRST.index(p.name[:2]) if p.name[:2] in _FIRST else 0, p.name))
        tasks: queue.Queue[tuple[str, Path]] = queue.Queue()
        for nb in order:
            for name in configuration_names:
                tasks.put((name, nb))
        lock = threading.Lock()

        def work(index: int) -> None:
            server = servers[index]
            configuration_by_name = {name: CONFIGURATIONS[name](server.url) for name in configuration_names}
            with lock:
                for name, configuration in configuration_by_name.items():
                    configurations[name].append(configuration)
            workspaces = {name: scratch_copy(scratch / f"w{index}-{name}", root).parent
                          for name in configuration_names}
            while True:
                try:
                    name, nb = tasks.get_nowait()
                except queue.Empty:
                    return
                result = execute_notebook(nb, configuration_by_name[name], workspaces[name], server, root)
                with lock:
                    results.append(result)
                    say(f"  {name:<11} {nb.stem:<26} {len(result.error_cells):>3} error cells"
                        f"{'' if result.requests is None else f', {result.requests:>3} requests'}"
                        f"  {result.seconds:>6.1f} s" + (f"  FAILED: {result.failure}" if result.failure else ""))

        threads = [threading.Thread(target=work, args=(i,), name=f"matrix-worker-{i}") for i in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        for server in servers:
            server.stop()
    wall = time.monotonic() - started
    if keep is None:
        shutil.rmtree(scratch, ignore_errors=True)
    report = build_report(results, configurations, wall, workers, scratch if keep is not None else None)
    report["root"] = str(root)
    return report


def build_report(results: list[NotebookResult], configurations: dict[str, list[Configuration]], wall: float,
                 workers: int, kept: Path | None) -> dict[str, Any]:
    """The JSON report: per configuration and notebook, plus totals and the error causes grouped."""
    results = sorted(results, key=lambda r: (list(configurations).index(r.configuration), r.notebook))
    every_secret = [s for group in configurations.values() for c in group for s in c.secrets]
    report: dict[str, Any] = {
        "wall_seconds": round(wall, 1),
        "workers": workers,
        "scratch": str(kept) if kept else None,
        "configurations": {},
        "results": [],
        "causes": [],
    }
    for name, group in configurations.items():
        first = group[0] if group else None
        shown = {k: (mask(v) if first and v in first.secrets else v) for k, v in (first.variables if first else {}).items()}
        mine = [r for r in results if r.configuration == name]
        report["configurations"][name] = {
            "description": first.description if first else "",
            "variables": shown,
            "error_cells": sum(len(r.error_cells) for r in mine),
            "notebooks_with_errors": sum(1 for r in mine if r.error_cells),
            "stderr_tracebacks": sum(len(r.stderr_tracebacks) for r in mine),
            "leaked_key_cells": sum(len(r.leaked_key_cells) for r in mine),
            "failures": sum(1 for r in mine if r.failure),
            "notebooks": len(mine),
        }
    for r in results:
        entry = asdict(r)
        entry["ok"] = r.ok
        report["results"].append(entry)
    causes: dict[tuple[bool, str, str], list[str]] = {}
    for r in results:
        for cell in r.error_cells + r.stderr_tracebacks:
            key = (cell.follow_on, cell.ename, _normalise(cell.evalue))
            causes.setdefault(key, []).append(f"{r.configuration}:{r.notebook}[{cell.index}]")
    report["causes"] = [{"ename": k[1], "evalue": k[2], "follow_on": k[0], "count": len(v), "cells": v}
                        for k, v in sorted(causes.items(), key=lambda kv: (kv[0][0], -len(kv[1])))]
    text = json.dumps(report)
    assert not any(s in text for s in every_secret), "a secret reached the report"
    return report


def _normalise(evalue: str) -> str:
    """An error message with the parts that vary between runs (ports, ids, numbers) replaced."""
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", evalue)
    text = re.sub(r"req_[0-9a-f]+", "req_ID", text)
    text = re.sub(r"0x[0-9a-f]+", "0xADDR", text)
    return text[:EVALUE_CHARS]


def format_report(report: dict[str, Any]) -> str:
    """The report as a readable table plus the list of error cells."""
    names = list(report["configurations"])
    by_key = {(r["configuration"], r["notebook"]): r for r in report["results"]}
    stems = sorted({r["notebook"] for r in report["results"]})
    width = max([len(s) for s in stems] + [8])
    lines = ["Error cells per notebook (requests the stand-in server received in parentheses):", ""]
    lines.append(f"{'notebook':<{width}}  " + "  ".join(f"{n:>18}" for n in names))
    for stem in stems:
        row = []
        for n in names:
            r = by_key.get((n, stem))
            if r is None:
                row.append(f"{'-':>18}")
                continue
            cell = str(len(r["error_cells"]))
            if r["stderr_tracebacks"]:
                cell += f"+{len(r['stderr_tracebacks'])}tb"
            if r["failure"]:
                cell += "!"
            if r["leaked_key_cells"]:
                cell += " LEAK"
            cell += f" ({r['requests']})" if r["requests"] is not None else ""
            row.append(f"{cell:>18}")
        lines.append(f"{stem:<{width}}  " + "  ".join(row))
    totals = [f"{report['configurations'][n]['error_cells']} in {report['configurations'][n]['notebooks_with_errors']}"
              for n in names]
    lines.append(f"{'total':<{width}}  " + "  ".join(f"{t:>18}" for t in totals))
    lines.append("")
    lines.append("(N+Mtb: M more cells printed a traceback to stderr; !: the notebook did not finish; "
                 "LEAK: a key appeared in an output)")
    for n in names:
        c = report["configurations"][n]
        lines.append(f"{n}: {c['description']}; " + ", ".join(f"{k}={v}" for k, v in c["variables"].items()))
    lines.append(f"wall time {report['wall_seconds']} s with {report['workers']} workers")
    details = []
    for r in report["results"]:
        for cell in r["error_cells"] + r["stderr_tracebacks"]:
            tag = "" if cell["kind"] == "error" else " (stderr)"
            details.append(f"  {r['configuration']:<11} {r['notebook']} cell {cell['index']}{tag}: "
                           f"{cell['ename']}: {cell['evalue']}")
        if r["failure"]:
            details.append(f"  {r['configuration']:<11} {r['notebook']} DID NOT FINISH: {r['failure']}")
        for line, count in r["server_exceptions"].items():
            details.append(f"  {r['configuration']:<11} {r['notebook']} stand-in server raised {count}×: {line}")
        if r["leaked_key_cells"]:
            details.append(f"  {r['configuration']:<11} {r['notebook']} KEY IN OUTPUT of cells "
                           f"{r['leaked_key_cells']}")
    if details:
        lines += ["", "Error cells:"] + details
    if report["causes"]:
        lines += ["", "Grouped by cause:"]
        for cause in report["causes"]:
            follow = " (follow-on: a name an earlier failed cell defines)" if cause["follow_on"] else ""
            lines.append(f"  {cause['count']:>3} × {cause['ename']}: {cause['evalue']}{follow}")
            lines.append(f"        {', '.join(cause['cells'])}")
    return "\n".join(lines)


def failed(report: dict[str, Any]) -> bool:
    return any(not r["ok"] for r in report["results"])


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--execute-one"]:
        return _execute_in_this_process(*argv[1:4])
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", action="append", choices=sorted(CONFIGURATIONS),
                        help="a configuration to run (repeatable; default: all)")
    parser.add_argument("--notebook", action="append",
                        help="only notebooks whose name starts with this, e.g. 07 (repeatable; default: all)")
    parser.add_argument("--workers", type=int, default=2, help="notebooks executed at once (default 2)")
    parser.add_argument("--report", type=Path, help="write the JSON report here")
    parser.add_argument("--keep", type=Path, help="keep the scratch copies and executed notebooks in this folder")
    parser.add_argument("--root", type=Path, default=ROOT,
                        help="the checkout to test, e.g. `git worktree add /tmp/before HEAD` (default: this one)")
    args = parser.parse_args(argv)
    report = run_matrix(args.config or list(CONFIGURATIONS), args.notebook, workers=args.workers, keep=args.keep,
                        root=args.root)
    if args.report:
        args.report.parent.mkdir(parents=True, exist_ok=True)
        args.report.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print()
    print(format_report(report))
    return 1 if failed(report) else 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main())
