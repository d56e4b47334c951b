"""Build every assignment from its master with otter-grader: ``python homework/build.py [NAME ...]``.

For each ``homework/masters/NAME.ipynb`` this runs ``otter assign`` (which also runs the solution against every
public and hidden test, so a master whose solution fails does not build) and then places the results:

- ``homework/student/NAME.ipynb``    what learners open: blanks (``...``), public checks only;
- ``homework/student/homework_checks.py``  runs those public checks when otter-grader is not installed (a learner
  who installed only ``requirements.txt``): a copy of ``homework/checks.py``;
- ``homework/solutions/NAME.ipynb``  the solution notebook, kept apart from the student files (same init cell);
- ``homework/build/NAME/autograder.zip``  every test, public and hidden: what ``homework/grade.py`` grades with.
  It is a build product (ignored by git): hidden tests never sit next to the student files. It is also the zip
  Gradescope takes (otter's ``setup.sh``, ``run_autograder``, ``environment.yml``), and carries what the notebooks
  need to run anywhere: the course's ``helpers/`` and ``images/`` and its requirements
  (``homework/gradescope_local.py`` runs it the way Gradescope does).

**A class edition** (``--secret``): the hidden tests draw their inputs (random image sizes, pictures, questions,
labels) from numbers marked ``EDITION = ...`` in the masters; with ``--secret SECRET`` (or ``--secret-file``) each
becomes HMAC-SHA256(SECRET, "assignment/test")'s first 6 bytes, so the zip's hidden inputs are ones no learner has
seen, while the checks themselves (compare with the course's calculator, round-trip the bytes, ...) are the same.
An edition is written to ``--out`` (default ``homework/build/class-edition``, ignored by git), never over the
repository's files: ``student/`` (the same notebooks as ``homework/student``), ``solutions/`` and
``build/NAME/autograder.zip`` (both carry the edition's hidden tests: keep them private), and ``edition.json`` (a
fingerprint that tells editions apart; the secret itself is written nowhere). Grade with
``python homework/grade.py SUBMISSIONS --autograder DIR/build/NAME/autograder.zip``.

Needs ``pip install -r requirements-teacher.txt``. No key and no network: the masters talk to the offline backend.
One assignment takes 30-60 s (``otter assign`` runs the solution against every test), all five 3-5 minutes on
the 2-core reference machine, the same with or without ``--secret``.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import yaml

HOMEWORK = Path(__file__).resolve().parent
ROOT = HOMEWORK.parent
MASTERS = HOMEWORK / "masters"
STUDENT = HOMEWORK / "student"
SOLUTIONS = HOMEWORK / "solutions"
BUILD = HOMEWORK / "build"
CHECKS = HOMEWORK / "checks.py"
#: Default folder of a class edition (git-ignored, like every build product under homework/build/).
EDITION_OUT = BUILD / "class-edition"

#: In a hidden test: ``EDITION = 21  # ...``, the number its random inputs are drawn from; ``--secret`` replaces it.
EDITION_LINE = re.compile(r"^(?P<indent>[ \t]*)EDITION = (?P<seed>\d+)(?P<note>[ \t]*#.*)?$", re.MULTILINE)
#: Packages of requirements.txt the grading environment does not need (the editor, the course's test tools).
NOT_FOR_GRADING = {"jupyterlab", "pytest", "nbval", "hypothesis", "pytest-xdist"}

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


def edition_seed(secret: str, name: str, test: str) -> int:
    """The number a hidden test draws its inputs from in the edition of ``secret`` (48 bits of HMAC-SHA256)."""
    digest = hmac.new(secret.encode("utf-8"), f"{name}/{test}".encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:6], "big")


def edition_fingerprint(secret: str) -> str:
    """Tells two editions apart without revealing the secret (an HMAC of a fixed message, 12 hex digits)."""
    return hmac.new(secret.encode("utf-8"), b"homework class edition", hashlib.sha256).hexdigest()[:12]


def hidden_test_name(source: str) -> str:
    found = re.search(r"^def (test_\w+)\(", source, re.MULTILINE)
    if not found:
        raise SystemExit(f"a hidden test cell with no `def test_...(`: {source[:80]!r}")
    return found.group(1)


def edition_master(name: str, secret: str | None = None) -> nbformat.NotebookNode:
    """The master of ``name``; with ``secret``, every hidden test's ``EDITION = N`` replaced by the edition's number.

    Only hidden tests change: public tests, solutions and the student notebook stay what the repository shows."""
    nb = nbformat.read(MASTERS / f"{name}.ipynb", as_version=4)
    if secret is None:
        return nb
    if not secret.strip():
        raise SystemExit("--secret is empty: pass a phrase only the teachers know (or --secret-file FILE)")
    replaced = 0
    for cell in nb.cells:
        if cell.cell_type != "code" or not re.search(r"^hidden:\s*true\s*$", cell.source, re.MULTILINE):
            continue
        test = hidden_test_name(cell.source)

        def seed(match: re.Match, test: str = test) -> str:
            return f"{match['indent']}EDITION = {edition_seed(secret, name, test)}{match['note'] or ''}"

        cell.source, count = EDITION_LINE.subn(seed, cell.source)
        replaced += count
    if not replaced:
        raise SystemExit(f"{name}: no hidden test has an `EDITION = ...` line, so a secret would change nothing")
    return nb


def grading_requirements() -> str:
    """requirements.txt without the editable install and the tools grading does not use: the zip's requirements."""
    kept = []
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith(("#", "-")):
            continue
        if re.split(r"[<>=!~ \[;]", line, maxsplit=1)[0].lower() not in NOT_FOR_GRADING:
            kept.append(line)
    return "\n".join(kept) + "\n"


def stage(name: str, secret: str | None, folder: Path) -> Path:
    """A folder for ``otter assign``: the (edition's) master, plus the ``helpers/``, ``images/`` and requirements
    the autograder zip must carry (``autograder_files``: in the zip only, never in the student version)."""
    nb = edition_master(name, secret)
    config_cell = nb.cells[0]
    header, _, body = config_cell.source.partition("\n")
    config = yaml.safe_load(body) or {}
    config.update({"requirements": "requirements.txt", "autograder_files": ["helpers", "images"]})
    config_cell.source = header + "\n" + yaml.safe_dump(config, sort_keys=False)
    folder.mkdir(parents=True)
    nbformat.write(nb, folder / f"{name}.ipynb")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".*")
    shutil.copytree(ROOT / "helpers", folder / "helpers", ignore=ignore)
    shutil.copytree(ROOT / "images", folder / "images", ignore=ignore)
    (folder / "requirements.txt").write_text(grading_requirements())
    return folder / f"{name}.ipynb"


def build(name: str, dest: Path = HOMEWORK, secret: str | None = None) -> Path:
    """Run ``otter assign`` on one master into ``dest`` (student/, solutions/, build/); return the autograder zip.

    ``dest`` is ``homework/`` itself unless a test builds elsewhere so the committed files stay untouched; with
    ``secret``, the class edition's hidden inputs (see the module's docstring)."""
    student, solutions, build_dir = dest / "student", dest / "solutions", dest / "build"
    if not (MASTERS / f"{name}.ipynb").is_file():
        raise SystemExit(f"no master {MASTERS / (name + '.ipynb')}; masters: {', '.join(masters()) or 'none'}")
    with tempfile.TemporaryDirectory(prefix=f"otter-assign-{name}-") as tmp:
        out = Path(tmp) / "dist"
        master = stage(name, secret, Path(tmp) / "stage")
        subprocess.run([sys.executable, "-m", "otter", "assign", str(master), str(out)],
                       check=True, env=grading_env(), cwd=master.parent)
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


def edition_out(out: Path | None) -> Path:
    """Where a class edition goes: outside the repository, or inside it only where git ignores it."""
    out = (out or EDITION_OUT).resolve()
    if out == HOMEWORK or HOMEWORK in out.parents and out.relative_to(HOMEWORK).parts[0] in ("student", "solutions",
                                                                                             "masters", "fixtures"):
        raise SystemExit(f"--out {out}: a class edition never goes over the repository's homework files; "
                         f"use a folder outside the repository or {EDITION_OUT.relative_to(ROOT)}")
    if ROOT in out.parents:
        ignored = subprocess.run(["git", "check-ignore", "-q", str(out / "x")], cwd=ROOT, capture_output=True)
        if ignored.returncode == 1:
            raise SystemExit(f"--out {out} is inside the repository and not ignored by git: the edition's hidden "
                             f"tests could be committed; use a folder outside the repository or "
                             f"{EDITION_OUT.relative_to(ROOT)}")
    return out


def read_secret(args: argparse.Namespace) -> str | None:
    if args.secret_file:
        try:
            return args.secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise SystemExit(f"--secret-file {args.secret_file}: {exc.strerror}") from None
    return args.secret


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"assignments to build (default: all of {masters()})")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--secret", help="build a class edition: hidden tests' inputs derived from this phrase")
    group.add_argument("--secret-file", type=Path, help="the same, the phrase read from a file (keeps it out of "
                                                         "the shell history and the process list)")
    parser.add_argument("--out", type=Path, help=f"folder of a class edition (default {EDITION_OUT.relative_to(ROOT)})")
    args = parser.parse_args(argv)
    secret = read_secret(args)
    if args.out and secret is None:
        parser.error("--out is for a class edition: pass --secret or --secret-file too")
    names = args.names or masters()
    unknown = [n for n in names if n not in masters()]
    if unknown:
        parser.error(f"no master {', '.join(unknown)}; masters: {', '.join(masters())}")
    dest = HOMEWORK if secret is None else edition_out(args.out)
    for name in names:
        zip_path = build(name, dest, secret)
        print(f"built {name}: {zip_path}")
    if secret is not None:
        (dest / "edition.json").write_text(json.dumps({"edition": edition_fingerprint(secret),
                                                      "assignments": sorted(names)}, indent=2) + "\n")
        print(f"class edition {edition_fingerprint(secret)} in {dest}: grade with `python homework/grade.py "
              f"SUBMISSIONS --autograder {dest}/build/NAME/autograder.zip`; keep solutions/ and build/ private")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
