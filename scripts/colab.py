"""Make every lesson open and run on Google Colab: a badge in its first Markdown cell and a bootstrap cell (issue 19).

A lesson opened on Colab arrives alone, without ``../images/``, ``helpers/`` or the requirements. The bootstrap
cell, placed just before the lesson's setup cell, fixes that **only on Colab** (``"google.colab" in sys.modules``):
it clones the course at the version recorded in the cell into ``./gpt-vision-course`` (once), checks out that
commit or tag, ``pip install -r requirements.txt`` from it, puts the clone on ``sys.path`` (the editable install's
``.pth`` file is only read by a new process) and changes into its ``notebooks/`` folder, so ``../images/`` and
``import helpers`` work as in the repository. Anywhere else it does nothing and prints nothing, so the stored
outputs nbval compares stay the same. ``COURSE_REPO_URL`` and ``COURSE_REF`` override the recorded repository and
version (the test points them at a local clone).

Run (idempotent: a second run replaces what the first inserted, nothing is added twice)::

    python scripts/colab.py --repo OWNER/REPO --ref v1.0            # every notebooks/NN_*.ipynb
    python scripts/colab.py --repo OWNER/REPO --ref v1.0 --check    # exit 1 if a notebook is not up to date
    python scripts/colab.py --repo OWNER/REPO --ref "$(git rev-parse HEAD)" path/to/05_handwriting_ocr.ipynb

``--ref`` should be a tag or commit that exists on GitHub: the badge opens that version and the cell installs it.
Re-execute the notebooks afterwards (the new cell shifts every execution count).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import nbformat

REPO_ROOT = Path(__file__).resolve().parent.parent
BOOTSTRAP_TAG = "colab-bootstrap"
BADGE_MARK = "<!-- colab-badge -->"
BADGE = ("[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]"
         "(https://colab.research.google.com/github/{repo}/blob/{ref}/notebooks/{name}) " + BADGE_MARK)

BOOTSTRAP = '''\
# Colab only (scripts/colab.py): fetch the course at this version, install it, work from its notebooks/ folder.
import sys
if "google.colab" in sys.modules:
    import os, subprocess
    _url = os.environ.get("COURSE_REPO_URL", "{url}")
    _ref = os.environ.get("COURSE_REF", "{ref}")
    _home = os.path.abspath("gpt-vision-course")
    if not os.path.isdir(os.path.join(_home, ".git")):
        subprocess.run(["git", "clone", "--quiet", _url, _home], check=True)
    subprocess.run(["git", "-C", _home, "checkout", "--quiet", _ref], check=True)
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "-r", "requirements.txt"], cwd=_home, check=True)
    sys.path.insert(0, _home)
    os.chdir(os.path.join(_home, "notebooks"))'''


def bootstrap_source(repo: str, ref: str) -> str:
    """The bootstrap cell's code for GitHub repository ``repo`` (OWNER/NAME) at ``ref``."""
    return BOOTSTRAP.format(url=f"https://github.com/{repo}.git", ref=ref)


def _setup_index(nb: nbformat.NotebookNode) -> int:
    """Index of the lesson's setup cell (the first code cell that imports helpers), else of its first code cell."""
    code = [i for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            and BOOTSTRAP_TAG not in cell.get("metadata", {}).get("tags", [])]
    if not code:
        raise ValueError("the notebook has no code cell to put the bootstrap before")
    return next((i for i in code if "helpers" in cell_source(nb.cells[i])), code[0])


def cell_source(cell: nbformat.NotebookNode) -> str:
    return cell.source if isinstance(cell.source, str) else "".join(cell.source)


def apply(nb: nbformat.NotebookNode, name: str, repo: str, ref: str) -> nbformat.NotebookNode:
    """Insert (or replace) the badge and the bootstrap cell in ``nb``, a lesson saved as ``name``."""
    nb.cells = [cell for cell in nb.cells if BOOTSTRAP_TAG not in cell.get("metadata", {}).get("tags", [])]
    markdown = next((cell for cell in nb.cells if cell.cell_type == "markdown"), None)
    if markdown is None:
        raise ValueError("the notebook has no Markdown cell for the badge")
    text = "\n".join(line for line in cell_source(markdown).split("\n") if BADGE_MARK not in line)
    markdown.source = BADGE.format(repo=repo, ref=ref, name=name) + "\n\n" + text.lstrip("\n")
    cell = nbformat.v4.new_code_cell(bootstrap_source(repo, ref), metadata={"tags": [BOOTSTRAP_TAG]})
    cell.pop("id", None)
    if nb.nbformat_minor >= 5:
        cell.id = BOOTSTRAP_TAG
    nb.cells.insert(_setup_index(nb), cell)
    return nb


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repo", required=True, help="the course on GitHub, OWNER/NAME")
    parser.add_argument("--ref", required=True, help="tag or commit the badge opens and the cell installs")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a notebook is out of date")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: notebooks/NN_*.ipynb")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[\w.-]+/[\w.-]+", args.repo):
        parser.error(f"--repo must look like OWNER/NAME, got {args.repo!r}")
    if not re.fullmatch(r"[\w./-]+", args.ref):
        parser.error(f"--ref must be a tag, branch or commit, got {args.ref!r}")
    paths = args.notebooks or sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    stale = []
    for path in paths:
        original = path.read_text(encoding="utf-8")
        nb = apply(nbformat.reads(original, as_version=4), path.name, args.repo, args.ref)
        updated = nbformat.writes(nb) + "\n"
        if updated != original:
            stale.append(path)
            if not args.check:
                path.write_text(updated, encoding="utf-8")
    verb = "out of date" if args.check else "updated"
    print(f"{len(stale)} of {len(paths)} notebooks {verb}" + "".join(f"\n  {p}" for p in stale))
    return 1 if args.check and stale else 0


if __name__ == "__main__":
    sys.exit(main())
