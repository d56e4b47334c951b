#!/usr/bin/env python
"""Estimate how long a first-time learner needs per lesson, from the lesson's length (docs/TEACHING.md, the plan).

An estimate, not a measurement: reading the Markdown at 200 words a minute, half a minute per code cell (run it and
read its output; the offline backend answers in seconds), and ten minutes per exercise (a ``## Exercise`` heading).
Lessons timed by working through them are marked in docs/TEACHING.md; re-run this after changing a lesson::

    python scripts/lesson_minutes.py [NOTEBOOKS_DIR]
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import nbformat

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
WORDS_PER_MINUTE = 200
MINUTES_PER_CELL = 0.5
MINUTES_PER_EXERCISE = 10


def estimate(path: Path) -> tuple[int, int, int, int]:
    """``(markdown words, code cells, exercises, minutes rounded up to 5)`` of one notebook."""
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    words = len(re.findall(r"\S+", text))
    cells = sum(cell.cell_type == "code" for cell in nb.cells)
    exercises = len(re.findall(r"(?m)^## Exercise", text))
    minutes = words / WORDS_PER_MINUTE + cells * MINUTES_PER_CELL + exercises * MINUTES_PER_EXERCISE
    return words, cells, exercises, 5 * math.ceil(minutes / 5)


def main(folder: Path = NOTEBOOKS) -> None:
    print(f"{'lesson':<28} {'words':>6} {'cells':>6} {'exercises':>9} {'minutes':>8}")
    total = 0
    for path in sorted(folder.glob("[0-9][0-9]_*.ipynb")):
        words, cells, exercises, minutes = estimate(path)
        total += minutes
        print(f"{path.stem:<28} {words:>6} {cells:>6} {exercises:>9} {minutes:>8}")
    print(f"{'total':<28} {'':>6} {'':>6} {'':>9} {total:>8}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else NOTEBOOKS)
