"""Run an otter autograder zip the way Gradescope does, locally and without Docker.

``python homework/gradescope_local.py homework/build/hw01_images_base64/autograder.zip SUBMISSION.ipynb [...]``

Gradescope unpacks the zip into ``/autograder/source``, runs ``setup.sh`` once to build the grading image, then for
every submission puts the student's files in ``/autograder/submission``, runs ``/autograder/run_autograder`` and
reads ``/autograder/results/results.json``. This script does the same in a temporary folder per submission:

1. **setup** (once, cached): otter's ``setup.sh`` installs apt packages and Miniforge (downloaded from GitHub),
   creates the conda environment of the zip's ``environment.yml`` and activates it in ``run_autograder``. Here
   the same ``environment.yml`` is installed with pip into a fresh virtualenv (``python -m venv``, the Python
   version it names when that interpreter is on this machine), from the package index only. The steps left out
   are the ones that do not change a grade for these assignments: the apt packages (compilers, ``jq``), LaTeX,
   pandoc and Playwright (PDF export, off in the courses' ``otter_config.json``: a zip that turns it on is
   refused), ``nb_conda_kernels`` (conda's kernel discovery; the virtualenv's own ``python3`` kernel is used).
   The virtualenv is reused while the zip's requirements and Python version are unchanged (``--venv DIR``;
   pip's cache makes a rebuild faster).
2. **run**, per submission: ``autograder/{source,submission,results}`` and ``submission_metadata.json`` in a
   temporary folder, the zip extracted into ``source/``, ``/autograder`` in ``run_autograder`` and
   ``run_otter.py`` rewritten to that folder, and ``run_autograder``'s command run with the virtualenv's Python,
   with a clean environment (no ``PYTHONPATH``: the notebooks import the ``helpers/`` the zip carries, not this
   repository's; no key: the assignments use the offline backend), in its own process group, ended at the timeout.
3. **results**: ``results/results.json``, read as Gradescope reads it: one score per question.

No integrity scan runs here (Gradescope has none either: ``homework/grade.py`` scans each notebook first and
adds an always-failing test; see ``homework/integrity.py``).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import yaml

HOMEWORK = Path(__file__).resolve().parent
#: Where the grading virtualenv is kept between runs (git-ignored, like every build product under homework/build/).
DEFAULT_VENV = HOMEWORK / "build" / "gradescope-venv"
MARKER = "gradescope-setup.json"


@dataclass
class Environment:
    """What the zip's ``environment.yml`` asks for: a Python version and pip packages."""

    python: str
    packages: list[str]

    @property
    def key(self) -> str:
        return hashlib.sha256(json.dumps([self.python, self.packages]).encode()).hexdigest()[:16]


@dataclass
class Outcome:
    submission: str
    status: str = "graded"
    scores: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def read_environment(zip_path: Path) -> Environment:
    with zipfile.ZipFile(zip_path) as z:
        names = set(z.namelist())
        missing = {"environment.yml", "run_autograder", "run_otter.py", "setup.sh", "otter_config.json"} - names
        if missing:
            raise SystemExit(f"{zip_path} is not an otter autograder zip for Gradescope (no {', '.join(sorted(missing))}):"
                             " build it with `python homework/build.py`")
        config = json.loads(z.read("otter_config.json"))
        if config.get("pdf") or config.get("token"):
            raise SystemExit(f"{zip_path} exports PDFs to Gradescope (otter_config.json: pdf/token): that needs "
                             "setup.sh's LaTeX and Playwright steps, which this local run leaves out")
        env = yaml.safe_load(z.read("environment.yml"))
    python, packages = "", []
    for dep in env.get("dependencies", []):
        if isinstance(dep, dict):
            packages += [str(p) for p in dep.get("pip", [])]
        elif str(dep).startswith("python="):
            python = str(dep).split("=", 1)[1]
    return Environment(python, packages)


def find_python(version: str) -> Path:
    """An interpreter of the version ``environment.yml`` names (PATH, then pyenv), else this one, with a note."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    candidates += sorted((str(p / "bin" / "python") for p in pyenv.glob(f"{version}.*")), reverse=True)
    for found in candidates:  # each one run, since a pyenv shim exists even where it cannot start that version
        if found and Path(found).is_file():
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                run = subprocess.run([found, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
                                     capture_output=True, text=True, timeout=60)
                if run.returncode == 0 and run.stdout.strip() == version:
                    return Path(found)
    print(f"note: no python{version} here (environment.yml asks for it); the virtualenv uses Python "
          f"{sys.version_info.major}.{sys.version_info.minor}", file=sys.stderr)
    return Path(sys.executable)


def venv_python(venv: Path) -> Path:
    return venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def setup(zip_path: Path, venv: Path = DEFAULT_VENV, quiet: bool = True) -> Path:
    """setup.sh, the virtualenv way: the zip's environment.yml installed into ``venv``; returns its Python."""
    env = read_environment(zip_path)
    marker = venv / MARKER
    if marker.is_file() and json.loads(marker.read_text()).get("key") == env.key and venv_python(venv).is_file():
        return venv_python(venv)
    started = time.perf_counter()
    base = find_python(env.python)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([str(base), "-m", "venv", str(venv)], check=True)
    pip = [str(venv_python(venv)), "-m", "pip", "install", "--disable-pip-version-check", *(["-q"] if quiet else [])]
    run = subprocess.run([*pip, *env.packages], capture_output=quiet, text=True)
    if run.returncode:
        shutil.rmtree(venv, ignore_errors=True)
        lines = (run.stderr or "").strip().splitlines()
        errors = [line for line in lines if not line.startswith("WARNING")][-5:]
        raise SystemExit("pip could not install the zip's environment.yml:\n" + "\n".join(errors))
    seconds = time.perf_counter() - started
    marker.write_text(json.dumps({"key": env.key, "python": env.python, "packages": env.packages,
                                  "seconds": round(seconds, 1)}, indent=2) + "\n")
    print(f"setup: virtualenv {venv} ready in {seconds:.0f} s", file=sys.stderr)
    return venv_python(venv)


def layout(zip_path: Path, submission: Path, root: Path) -> Path:
    """Gradescope's ``/autograder`` under ``root``: source/ (the zip), submission/ (the student's file), results/."""
    ag = root / "autograder"
    for sub in ("source", "submission", "results"):
        (ag / sub).mkdir(parents=True)
    with zipfile.ZipFile(zip_path) as z:
        z.extractall(ag / "source")
    (ag / "submission_metadata.json").write_text("{}")
    if submission.suffix == ".zip":
        with zipfile.ZipFile(submission) as z:
            z.extractall(ag / "submission")
    else:
        shutil.copy(submission, ag / "submission" / submission.name)
    for name in ("run_autograder", "run_otter.py"):  # the paths otter wrote for Gradescope, pointed at this folder
        path = ag / "source" / name
        path.write_text(re.sub(r"(?<![\w/])/autograder(?=[/\"'\s]|$)", str(ag), path.read_text()))
    return ag


def run_command(ag: Path, python: Path) -> list[str]:
    """``run_autograder``'s last line (``python .../run_otter.py``) with the virtualenv's Python."""
    lines = [line.strip() for line in (ag / "source" / "run_autograder").read_text().splitlines() if line.strip()]
    program, *args = lines[-1].split()
    if program != "python" or not args or not args[0].endswith("run_otter.py"):
        raise SystemExit(f"unexpected run_autograder (last line {lines[-1]!r}): this script knows otter 7's")
    return [str(python), *args]


def grade_one(zip_path: Path, submission: Path, python: Path, timeout: float = 600) -> Outcome:
    outcome = Outcome(submission.stem)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="gradescope-") as tmp:
        ag = layout(zip_path, submission, Path(tmp))
        env = {"PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}", "HOME": str(Path(tmp) / "home"),
               "LANG": "C.UTF-8", "VIRTUAL_ENV": str(python.parent.parent)}
        Path(env["HOME"]).mkdir()
        process = subprocess.Popen(run_command(ag, python), cwd=ag, env=env, stdout=subprocess.PIPE,
                                   stderr=subprocess.STDOUT, text=True, start_new_session=True)
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            outcome.status = f"timed out after {timeout:.0f} s"
            output = ""
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
        results = ag / "results" / "results.json"
        if outcome.status == "graded":
            if not results.is_file():
                outcome.status = "no results.json: " + (output.strip().splitlines() or ["no output"])[-1][:160]
            else:
                for test in json.loads(results.read_text()).get("tests", []):
                    if test.get("name") != "Public Tests" and test.get("score") is not None:
                        outcome.scores[test["name"]] = float(test["score"])
                if not outcome.scores:
                    outcome.status = "results.json has no scores"
    outcome.seconds = time.perf_counter() - started
    return outcome


def grade(zip_path: Path, submissions: list[Path], venv: Path = DEFAULT_VENV, jobs: int = 1,
          timeout: float = 600) -> list[Outcome]:
    python = setup(zip_path, venv)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(lambda s: grade_one(zip_path, s, python, timeout), submissions))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("zip", type=Path, help="an autograder zip (homework/build/NAME/autograder.zip)")
    parser.add_argument("submissions", type=Path, nargs="*", help="notebooks (or submission zips) to grade")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV, help="the grading virtualenv (made, or reused)")
    parser.add_argument("-j", "--jobs", type=int, default=1, help="submissions graded at once")
    parser.add_argument("--timeout", type=float, default=600, help="seconds per submission")
    parser.add_argument("--json", action="store_true", help="print the outcomes as JSON")
    args = parser.parse_args(argv)
    if not args.zip.is_file():
        raise SystemExit(f"{args.zip} is missing: run `python homework/build.py` first")
    missing = [str(s) for s in args.submissions if not s.is_file()]
    if missing:
        raise SystemExit(f"not a file: {', '.join(missing)}")
    started = time.perf_counter()
    outcomes = grade(args.zip, args.submissions, args.venv, args.jobs, args.timeout)
    if args.json:
        print(json.dumps([o.__dict__ for o in outcomes], indent=2))
    else:
        for o in outcomes:
            scores = ", ".join(f"{q} {s:g}" for q, s in o.scores.items())
            print(f"{o.submission}: {o.status}; {scores} (total {sum(o.scores.values()):g}; {o.seconds:.0f} s)")
        if outcomes:
            print(f"graded {len(outcomes)} in {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
