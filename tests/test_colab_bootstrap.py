"""A lesson opened alone, as on Google Colab, fetches and installs the course itself (issue 19, scripts/colab.py).

The lesson is copied alone into an empty folder, with the bootstrap cell of ``scripts/colab.py`` pointed at a local
``git clone`` of this repository (``COURSE_REPO_URL``, ``COURSE_REF``: the commit checked out here) instead of
GitHub. A fresh virtualenv with only ipykernel runs it under nbclient, with ``google.colab`` present in
``sys.modules`` (as on Colab): the cell clones the course, pip-installs its requirements into that virtualenv,
changes into its ``notebooks/`` folder, and the lesson then runs top to bottom with no error, its ``helpers`` and
``../images/`` coming from the clone. The same cell outside Colab does nothing and prints nothing.

Slow (a full ``pip install -r requirements.txt`` into a new virtualenv: 2-5 minutes with a warm pip cache) and
needs the package index, so plain ``pytest`` leaves it out: ``pytest -m bootstrap tests/test_colab_bootstrap.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import venv
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import colab  # noqa: E402

pytestmark = pytest.mark.bootstrap

LESSON = "06_cost_math.ipynb"     # light on the offline backend, and it reads ../images/


def _git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def test_outside_colab_the_bootstrap_cell_does_nothing_and_prints_nothing(tmp_path: Path):
    before = os.getcwd()
    done = subprocess.run([sys.executable, "-c", colab.bootstrap_source("OWNER/REPO", "v1")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    assert list(tmp_path.iterdir()) == [] and os.getcwd() == before


def test_a_lone_lesson_bootstraps_the_course_and_runs_top_to_bottom(tmp_path: Path):
    commit = _git("rev-parse", "HEAD")
    clone = tmp_path / "origin"
    _git("clone", "--quiet", str(REPO), str(clone))     # what GitHub would serve, at this commit

    lesson_dir = tmp_path / "colab"                      # the lone lesson, as Colab opens it
    lesson_dir.mkdir()
    nb = colab.apply(nbformat.read(REPO / "notebooks" / LESSON, as_version=4), LESSON, "OWNER/REPO", commit)
    # On Colab the google.colab package is imported before any cell runs; here a stand-in module is registered.
    nb.cells.insert(0, nbformat.v4.new_code_cell("import sys, types\nsys.modules['google.colab'] = "
                                                 "types.ModuleType('google.colab')"))
    nb.cells.append(nbformat.v4.new_code_cell("import helpers, os\nprint(helpers.__file__)\nprint(os.getcwd())"))
    nbformat.write(nb, lesson_dir / LESSON)

    env_dir = tmp_path / "venv"                          # a fresh virtualenv with only a kernel in it
    venv.EnvBuilder(with_pip=True).create(env_dir)
    python = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "ipykernel"], check=True, timeout=600)
    kernels = tmp_path / "jupyter" / "kernels" / "lone"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps({
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "fresh venv", "language": "python"}), encoding="utf-8")

    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VIRTUAL_ENV") and not key.startswith(("VISION_", "OPENAI_", "AZURE_"))}
    env.update(JUPYTER_PATH=str(tmp_path / "jupyter"), COURSE_REPO_URL=str(clone), COURSE_REF=commit,
               VISION_OFFLINE_CACHE="off", HOME=str(tmp_path / "home"))
    (tmp_path / "home").mkdir()
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)                               # the kernel inherits this process's environment
    try:
        NotebookClient(nb, kernel_name="lone", timeout=900, allow_errors=False,
                       resources={"metadata": {"path": str(lesson_dir)}}).execute()
    finally:
        os.environ.clear()
        os.environ.update(saved)

    assert all(output.get("output_type") != "error" for cell in nb.cells for output in cell.get("outputs", []))
    assert (lesson_dir / "gpt-vision-course" / ".git").is_dir()
    assert _git("rev-parse", "HEAD", cwd=lesson_dir / "gpt-vision-course") == commit
    setup_output = "".join(out.get("text", "") for cell in nb.cells if "setup()" in colab.cell_source(cell)
                           for out in cell.get("outputs", []))
    assert "Provider: offline" in setup_output, setup_output
    executed = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.get("execution_count") for cell in executed), "a cell did not run"
    helpers_file, cwd = nb.cells[-1].outputs[0]["text"].split()
    home = lesson_dir / "gpt-vision-course"
    assert Path(helpers_file) == home / "helpers" / "__init__.py" and Path(cwd) == home / "notebooks"
