"""Build every assignment from its master with otter-grader: ``python homework/build.py [NAME ...]``.

For each ``homework/masters/NAME.ipynb`` this runs ``otter assign`` (which also runs the solution against every
public and hidden test, so a master whose solution fails does not build) and then places the results:

- ``homework/student/NAME.ipynb``    what learners open: blanks (``...``), public checks only;
- ``homework/student/homework_checks.py``  runs those public checks when otter-grader is not installed (a learner
  who installed only ``requirements.txt``): a copy of ``homework/checks.py``;
- ``homework/solutions/NAME.ipynb``  the solution notebook, kept apart from the student files (same init cell);
- ``homework/build/NAME/autograder.zip``  every test, public and hidden: what ``homework/grade.py`` grades with.
  It is a build product (ignored by git): hidden tests never sit next to the student files.

Needs ``pip install -r requirements-teacher.txt``. No key and no network: the masters talk to the offline backend.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

HOMEWORK = Path(__file__).resolve().parent
ROOT = HOMEWORK.parent
MASTERS = HOMEWORK / "masters"
STUDENT = HOMEWORK / "student"
SOLUTIONS = HOMEWORK / "solutions"
BUILD = HOMEWORK / "build"
CHECKS = HOMEWORK / "checks.py"

#: The first cell of every student and solution notebook: otter's checks when otter-grader is installed, else the
#: same public checks run by homework_checks.py (homework/checks.py), so homework opens after requirements.txt.
INIT_CELL = """# Initialize the public checks: otter-grader's when it is installed, else homework_checks.py (same checks)
try:
    import otter
except ModuleNotFoundError:  # otter-grader is a teacher tool (requirements-teacher.txt)
    import homework_checks as otter
grader = otter.Notebook("{name}.ipynb")"""


def grading_env() -> dict[str, str]:
    """The environment a build or a grading run gets: offline backend, no key, ``helpers`` importable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "AZURE_OPENAI_"))}
    env["VISION_PROVIDER"] = "offline"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p)
    return env


def masters() -> list[str]:
    return sorted(p.stem for p in MASTERS.glob("*.ipynb"))


def autograder_zip(name: str, build_dir: Path = BUILD) -> Path:
    return build_dir / name / "autograder.zip"


def build(name: str, dest: Path = HOMEWORK) -> Path:
    """Run ``otter assign`` on one master into ``dest`` (student/, solutions/, build/); return the autograder zip.

    ``dest`` is ``homework/`` itself unless a test builds elsewhere so the committed files stay untouched."""
    student, solutions, build_dir = dest / "student", dest / "solutions", dest / "build"
    master = MASTERS / f"{name}.ipynb"
    if not master.is_file():
        raise SystemExit(f"no master {master}; masters: {', '.join(masters()) or 'none'}")
    with tempfile.TemporaryDirectory(prefix=f"otter-assign-{name}-") as tmp:
        out = Path(tmp) / "dist"
        subprocess.run([sys.executable, "-m", "otter", "assign", str(master), str(out)],
                       check=True, env=grading_env(), cwd=MASTERS)
        (zip_path,) = (out / "autograder").glob("*.zip")
        student.mkdir(parents=True, exist_ok=True)
        solutions.mkdir(parents=True, exist_ok=True)
        (build_dir / name).mkdir(parents=True, exist_ok=True)
        for source, folder in ((out / "student", student), (out / "autograder", solutions)):
            write_handout(source / f"{name}.ipynb", folder / f"{name}.ipynb", name)
            shutil.copyfile(CHECKS, folder / "homework_checks.py")
        shutil.copyfile(zip_path, autograder_zip(name, build_dir))
    return autograder_zip(name, build_dir)


def write_handout(source: Path, dest: Path, name: str) -> None:
    """otter's notebook with the course's init cell and stable cell ids (a rebuild leaves git with no diff)."""
    nb = nbformat.read(source, as_version=4)
    init = [c for c in nb.cells if c.cell_type == "code" and "otter.Notebook(" in c.source]
    if init:
        init[0].source = INIT_CELL.format(name=name)
    for index, cell in enumerate(nb.cells):
        cell["id"] = f"{name[:4]}-{index:03d}"
    nbformat.write(nb, dest)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"assignments to build (default: all of {masters()})")
    args = parser.parse_args(argv)
    for name in args.names or masters():
        print(f"built {name}: {build(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
