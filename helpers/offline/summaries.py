"""The pieces of an offline answer about images, each a short Markdown string built from an :class:`ImageReport`.

:mod:`helpers.offline.answers` chooses which pieces a question gets and assembles them. Every image is summarised
in one consistent form: a bold header with its size, then one bullet per aspect asked about, always in the order
of :data:`ASPECTS`::

    **Image 1**: 640×427 px, landscape, JPEG
    - Colours: white 18%, light blue 17%, dark green 11%, light grey 11%, black 9%
    - Layout: top light blue, middle light grey, bottom dark green
    - Faces: none detected
    - Text: none found

>>> from helpers.offline.analysis import ImageReport
>>> report = ImageReport("0" * 64, 640, 427, "image/jpeg", "landscape", (), (), (("light blue", 0.6),), "0" * 16,
...                      thirds=("light blue", "light blue", "dark green"))
>>> print(image_block(report, "Image 1", ("colours", "layout")))
**Image 1**: 640×427 px, landscape, JPEG
- Colours: light blue 60%
- Layout: top light blue, middle light blue, bottom dark green
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from helpers.compare import location_name
from helpers.ocr import OcrLine, lines_to_text
from helpers.offline.analysis import ImageReport, difference, hash_distance, near_duplicates

__all__ = ["ASPECTS", "READABLE_SCORE", "comparison", "fenced", "image_block", "near_identical_groups",
           "readable_lines", "transcription"]

#: What a question can ask about one image, in the order the bullets appear.
ASPECTS = ("size", "colours", "layout", "faces", "text")
#: Text lines quoted per image in a general summary; in an answer that asks about text, up to TEXT_LINES.
SUMMARY_TEXT_LINES = 3
TEXT_LINES = 40
#: OCR lines below this recognizer confidence are "not readable" where an answer must be short (video frames).
READABLE_SCORE = 0.8
MAX_COMPARED_PAIRS = 8


def fenced(text: str) -> str:
    """``text`` in a fenced block whose fence is longer than any run of backticks inside it.

    >>> fenced("a ``` b")
    '````text\\na ``` b\\n````'
    """
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _format_name(mime_type: str) -> str:
    subtype = mime_type.split("/")[-1]
    return {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP"}.get(subtype, subtype.upper())


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def join_words(parts: Sequence[str]) -> str:
    """``["a", "b", "c"]`` -> ``"a, b and c"``."""
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def readable_lines(report: ImageReport, min_score: float = 0.0) -> tuple[OcrLine, ...]:
    """The report's OCR lines whose confidence is at least ``min_score``."""
    return tuple(line for line in report.lines if line.score >= min_score)


def header(report: ImageReport, label: str) -> str:
    return f"**{label}**: {report.width}×{report.height} px, {report.orientation}, {_format_name(report.mime_type)}"


_RATIOS = ((1, 1), (5, 4), (4, 3), (3, 2), (16, 10), (16, 9), (2, 1), (21, 9))


def size_bullet(report: ImageReport) -> str:
    """Megapixels and the aspect ratio (the pixel size is in the header).

    >>> from helpers.offline.analysis import ImageReport
    >>> size_bullet(ImageReport("0" * 64, 640, 427, "image/jpeg", "landscape", (), (), (), "0" * 16))
    '- Size: 0.27 megapixels, aspect ratio about 3:2'
    """
    megapixels = report.width * report.height / 1e6
    long, short = max(report.width, report.height), min(report.width, report.height)
    named = [(a, b) for a, b in _RATIOS if abs(long / short - a / b) <= 0.02 * a / b]
    if named:
        a, b = named[0] if report.width >= report.height else named[0][::-1]
        ratio = f"{a}:{b}" if report.width * b == report.height * a else f"about {a}:{b}"
    else:
        ratio = f"{report.width / report.height:.2f}:1"
    return f"- Size: {megapixels:.2g} megapixels, aspect ratio {ratio}"


def colours_bullet(report: ImageReport) -> str:
    named = ", ".join(f"{name} {share * 100:.0f}%" for name, share in report.colours) or "mixed, none over 5%"
    frame = f" (inside a {report.border}, left out)" if report.border else ""
    return f"- Colours: {named}{frame}"


def _band(names: Sequence[str], places: tuple[str, str, str]) -> str:
    return ", ".join(f"{place} {name}" for place, name in zip(places, names, strict=False))


def _where(centres: list[tuple[float, float]]) -> str:
    """Where points are, with its preposition: one or two places by name (``"at the top and centre"``), or how
    far they spread (``"from top to bottom"``)."""
    names = list(dict.fromkeys(location_name(x, y) for x, y in centres))
    if len(names) <= 2:
        return "at the " + join_words(names)
    rows = sorted({min(int(y * 3), 2) for _, y in centres})
    columns = {min(int(x * 3), 2) for x, _ in centres}
    if len(rows) == 3:
        return "all over the picture" if len(columns) == 3 else "from top to bottom"
    if len(columns) == 3:
        return "across the " + " and ".join(("top", "middle", "bottom")[r] for r in rows)
    return "at the " + ", ".join(names[:2]) + " and elsewhere"


def layout_bullet(report: ImageReport) -> str:
    parts = []
    if report.thirds and len(set(report.thirds)) > 1:
        parts.append(_band(report.thirds, ("top", "middle", "bottom")))
    if report.columns and len(set(report.columns)) > 1:
        parts.append(_band(report.columns, ("left", "centre", "right")))
    if not parts and report.thirds:
        parts.append(f"{report.thirds[0]} throughout")
    if report.lines:
        centres = [((line.left + line.right) / 2 / report.width, (line.top + line.height / 2) / report.height)
                   for line in report.lines]
        parts.append(f"text {_where(centres)}")
    if report.border:
        parts.append(report.border)
    return "- Layout: " + ("; ".join(parts) if parts else "nothing measured")


def faces_bullet(report: ImageReport) -> str:
    if not report.faces:
        return "- Faces: none detected"
    centres = [((x + w / 2) / report.width, (y + h / 2) / report.height) for x, y, w, h in report.faces]
    return f"- Faces: {len(report.faces)} detected, {_where(centres)}"


def text_bullet(report: ImageReport, max_lines: int = SUMMARY_TEXT_LINES) -> str:
    rows = [row for row in report.text().split("\n") if row]
    if not rows:
        return "- Text: none found"
    shown = rows[:max_lines]
    lead = f"- Text: {_count(len(rows), 'line')}" + (f", the first {len(shown)}:" if len(shown) < len(rows) else ":")
    return f"{lead}\n{fenced(chr(10).join(shown))}"


def image_block(report: ImageReport, label: str, aspects: Sequence[str],
                text_lines: int = SUMMARY_TEXT_LINES) -> str:
    """One image's header (its pixel size, orientation and format) and a bullet for each of ``aspects``, in
    :data:`ASPECTS` order."""
    bullets = {
        "size": lambda: size_bullet(report), "colours": lambda: colours_bullet(report),
        "layout": lambda: layout_bullet(report), "faces": lambda: faces_bullet(report),
        "text": lambda: text_bullet(report, text_lines),
    }
    wanted = [a for a in ASPECTS if a in aspects]
    return "\n".join([header(report, label), *(bullets[a]() for a in wanted)])


def near_identical_groups(reports: Sequence[ImageReport], labels: Sequence[str]) -> str:
    """One sentence naming the groups of near-identical images ("" if there are none).

    Pairs within the perceptual-hash threshold are joined into groups (1~2 and 2~3 make 1, 2, 3), so that a
    run of similar images is one short phrase rather than a list of every pair.
    """
    pairs = near_duplicates(list(reports))
    if not pairs:
        return ""
    parent = list(range(len(reports)))

    def root(i: int) -> int:
        while parent[i] != i:
            i = parent[i]
        return i

    for i, j, _ in pairs:
        parent[max(root(i), root(j))] = min(root(i), root(j))
    members: dict[int, list[int]] = {}
    for index in range(len(reports)):
        members.setdefault(root(index), []).append(index)
    phrases = []
    for group in (g for g in members.values() if len(g) > 1):
        distances = [hash_distance(reports[i], reports[j]) for n, i in enumerate(group) for j in group[n + 1:]]
        low, high = min(distances), max(distances)
        spread = f"hash distance {low}" if low == high else f"hash distances {low}-{high}"
        phrases.append(f"{join_words([labels[i] for i in group])} ({spread} of 64 bits)")
    return "Near-identical: " + "; ".join(phrases) + "."


def transcription(reports: Sequence[ImageReport], labels: Sequence[str]) -> list[str]:
    """Each image's OCR text in reading order, in a fenced block (or that none was found, with its summary)."""
    parts = []
    for report, label in zip(reports, labels, strict=True):
        text = report.text()
        if text:
            parts.append(f"Text in **{label}**, read by local OCR in reading order:\n{fenced(text)}")
        else:
            parts.append(f"{image_block(report, label, ('colours', 'faces'))}\n- Text: none found by local OCR")
    return parts


def comparison(reports: Sequence[ImageReport], data: Sequence[bytes], labels: Sequence[str]) -> list[str]:
    """What changed between consecutive images (up to :data:`MAX_COMPARED_PAIRS` pairs), and which are alike."""
    parts = []
    pair_count = len(reports) - 1
    for index in range(min(pair_count, MAX_COMPARED_PAIRS)):
        parts.append(difference(reports[index], reports[index + 1], data[index], data[index + 1],
                                labels=(labels[index], labels[index + 1])))
    if pair_count > MAX_COMPARED_PAIRS:
        parts.append(f"The other {pair_count - MAX_COMPARED_PAIRS} consecutive pairs are not compared, to keep "
                     "this answer short.")
    if len(reports) >= 3:
        parts.append(near_identical_groups(reports, labels) or "No two images are near-identical.")
    return parts


def text_of(lines: Sequence[OcrLine]) -> str:
    """Lines joined in reading order (one row per line)."""
    return lines_to_text(tuple(lines))
