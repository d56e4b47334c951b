"""scripts/check_wheels.py and scripts/colab.py without the network: what they read and what they write (issue 19)."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "scripts"))
import check_wheels  # noqa: E402
import colab  # noqa: E402


def test_the_wheel_check_reads_every_requirement_but_the_course_itself():
    lines = check_wheels.requirement_lines(("requirements.txt",))
    names = {check_wheels._name(line) for line in lines}
    assert {"rapidocr", "onnxruntime", "opencv-python-headless", "bpe-openai", "openai"} <= names
    assert not any(line.startswith(("-e", "#")) or line == "." for line in lines)
    assert "rapidocr-onnxruntime" not in names and "opencv-python" not in names   # one OpenCV build only
    teacher = check_wheels.requirement_lines(check_wheels.REQUIREMENT_SETS["teachers"])
    assert "otter-grader" in {check_wheels._name(line) for line in teacher}


def test_colab_inserts_one_badge_and_one_bootstrap_cell_before_the_setup_cell_however_often_it_runs():
    original = nbformat.read(REPO / "notebooks" / "06_cost_math.ipynb", as_version=4)
    once = colab.apply(nbformat.from_dict(original), "06_cost_math.ipynb", "OWNER/REPO", "v1.0")
    twice = colab.apply(nbformat.from_dict(once), "06_cost_math.ipynb", "OWNER/REPO", "v1.0")
    assert nbformat.writes(once) == nbformat.writes(twice)
    assert len(once.cells) == len(original.cells) + 1
    first_markdown = colab.cell_source(once.cells[0])
    assert first_markdown.count("colab.research.google.com/github/OWNER/REPO/blob/v1.0/notebooks/06_cost_math.ipynb") == 1
    assert first_markdown.endswith(colab.cell_source(original.cells[0]))
    boot = [i for i, cell in enumerate(once.cells) if colab.BOOTSTRAP_TAG in cell.metadata.get("tags", [])]
    assert len(boot) == 1 and "from helpers import setup" in colab.cell_source(once.cells[boot[0] + 1])
    assert once.cells[boot[0]].outputs == [] and '"google.colab" in sys.modules' in once.cells[boot[0]].source
    nbformat.validate(once)
