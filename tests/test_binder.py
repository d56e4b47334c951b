"""The JupyterHub / Binder configuration (issue 13): what repo2docker would build from ``binder/``.

repo2docker renders the Dockerfile without Docker (``--no-build``); these tests read it. They need
``jupyter-repo2docker`` (not a course dependency: ``.ci/run`` step 5 installs it), so plain ``pytest`` skips this
module where it is missing. Building the image itself needs Docker and is not done here; README ("Quick start")
says what was checked by hand.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

pytest.importorskip("repo2docker")

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def dockerfile() -> str:
    """The Dockerfile repo2docker generates for this repository, as Binder's user (uid 1000, jovyan)."""
    command = shutil.which("jupyter-repo2docker")
    assert command, "jupyter-repo2docker is importable but its command is not on PATH"
    run = subprocess.run([command, "--no-build", "--debug", "--no-run", "--user-id", "1000",
                          "--user-name", "jovyan", str(REPO)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout + run.stderr


def test_binder_uses_python_311_and_installs_opencvs_system_libraries(dockerfile: str) -> None:
    assert "Building conda environment for python=3.11" in dockerfile
    apt = re.search(r"apt-get install --yes --no-install-recommends (.+?) &&", dockerfile)
    assert apt, "no apt.txt packages in the Dockerfile"
    assert {"libgl1", "libglib2.0-0"} <= set(apt.group(1).split())


def test_the_course_requirements_are_installed_after_the_repository_is_copied(dockerfile: str) -> None:
    """``-e .`` (in the root requirements.txt) needs the whole repository in place, and ``helpers`` must stay
    editable: a plain ``pip install .`` would put a copy in site-packages that cannot find ``images/``."""
    lines = dockerfile.splitlines()
    copy = next(i for i, line in enumerate(lines) if re.match(r"COPY --chown=1000:1000 src/ \$\{REPO_DIR\}/", line))
    pip = [i for i, line in enumerate(lines) if "/bin/pip install" in line]
    assert [lines[i].split("pip install", 1)[1].strip() for i in pip] == ['--no-cache-dir -r "binder/requirements.txt"']
    assert pip[0] > copy
    assert "-r ../requirements.txt" in (REPO / "binder" / "requirements.txt").read_text().splitlines()
    assert "-e ." in (REPO / "requirements.txt").read_text().splitlines()
