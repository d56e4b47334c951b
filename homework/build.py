"""Build every assignment from its master with otter-grader: ``python homework/build.py [NAME ...]``.

For each ``homework/masters/NAME.ipynb`` this runs ``otter assign`` (which also runs the solution against every
public and hidden test, so a master whose solution fails does not build) and then places the results:

- ``homework/student/NAME.ipynb``    what learners open: blanks (``...``), public checks only;
- ``homework/solutions/NAME.ipynb``  the solution notebook, kept apart from the student files;
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

HOMEWORK = Path(__file__).resolve().parent
ROOT = HOMEWORK.parent
MASTERS = HOMEWORK / "masters"
STUDENT = HOMEWORK / "student"
SOLUTIONS = HOMEWORK / "solutions"
BUILD = HOMEWORK / "build"


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
        shutil.copyfile(out / "student" / f"{name}.ipynb", student / f"{name}.ipynb")
        shutil.copyfile(out / "autograder" / f"{name}.ipynb", solutions / f"{name}.ipynb")
        shutil.copyfile(zip_path, autograder_zip(name, build_dir))
    return autograder_zip(name, build_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"assignments to build (default: all of {masters()})")
    args = parser.parse_args(argv)
    for name in args.names or masters():
        print(f"built {name}: {build(name).relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
