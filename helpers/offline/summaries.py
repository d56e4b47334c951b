"""The pieces of an offline answer about images, each a short Markdown string built from an :class:`ImageReport`.

:mod:`helpers.offline.answers` chooses which pieces a question gets and assembles them. Every image is summarised
in one consistent form: a bold header with its size, then one bullet per aspect asked about, always in the order
of :data:`ASPECTS`::

    **Image 1**: 640×427 px, landscape, JPEG
    - Colours: white 18%, light blue 17%, dark green 11%, light grey 11%, black 9%
    - Layout: top light blue, middle light grey, bottom dark green
    - Faces: none detected
    - Text: none found

>>> from helpers.offline.analysis import pixels_of, ImageReport
>>> report = ImageReport("0" * 64, 640, 427, "image/jpeg", "landscape", (), (), (("light blue", 0.6),), "0" * 16,
...                      thirds=("light blue", "light blue", "dark green"))
>>> print(image_block(report, "Image 1", ("colours", "layout")))
**Image 1**: 640×427 px, landscape, JPEG
- Colours: light blue 60%
- Layout: top light blue, middle light blue, bottom dark green

The offline answer about video frames: what changed when, scene by scene, instead of every pair in full.

Frames arrive as images in one message, each after a short text part with its time (``helpers.video.
frames_to_parts`` writes ``"Frame at 00:07.0"``; notebooks/08_video.ipynb). Consecutive frames are grouped into
scenes: a new scene starts where two neighbours differ in most of their pixels (a cut), or where their
perceptual hashes jump and the text read in them has nothing in common (a cut between two pages that are both
mostly white). Within a scene the answer says whether the frames are near-identical or where they change, and
which text appeared. Text is quoted only where local OCR is confident (:data:`READABLE_SCORE`), so a
blurred caption does not turn into a list of fragments.

>>> parse_time("Frame at 00:07.0"), parse_time("a frame"), parse_time("t=1:02:03.5")
('00:07.0', None, '1:02:03.5')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from helpers.compare import changed_regions, location_name
from helpers.ocr import OcrLine, lines_to_text
from helpers.offline.analysis import (
    NEAR_DUPLICATE_MAX_DISTANCE,
    ImageReport,
    Pixels,
    difference,
    hash_distance,
    near_duplicates,
    pixels_of,
)

__all__ = ["ASPECTS", "comparison", "CUT_CHANGED_SHARE", "fenced", "image_block", "near_identical_groups",
           "parse_time", "readable_lines", "READABLE_SCORE", "Scene", "scenes", "timeline", "transcription"]

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


def comparison(reports: Sequence[ImageReport], data: Sequence[Pixels], labels: Sequence[str]) -> list[str]:
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


# --- timeline --------------------------------------------------------------------------------------------

#: Consecutive frames differing in at least this share of their pixels are a cut.
CUT_CHANGED_SHARE = 0.3
#: Above this hash distance, neighbours whose readable text shares no word are a cut even if few pixels changed.
CUT_TEXT_DISTANCE = 20
QUOTED_LINES = 2
_TIME = re.compile(r"(?<![\d:])(?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?(?![\d:])")
_WORD = re.compile(r"[^\W_]{3,}")
_LETTERS = re.compile(r"[^\W\d_]{3,}")
_SAME_LINE = 0.8   # OCR readings of one line in two frames differ a little: a similarity ratio above this is "the same"


def parse_time(text: str) -> str | None:
    """The first ``[H:]MM:SS[.s]`` timestamp in a short label, or None."""
    if len(text) > 60:
        return None
    found = _TIME.search(text)
    return found.group(0) if found else None


@dataclass(frozen=True)
class Scene:
    """Consecutive frames (0-based indices) and what changed between them."""

    frames: tuple[int, ...]
    near_identical: bool                   # every neighbour within the near-duplicate hash distance
    changed_share: float                   # the largest share of pixels changed between two neighbours
    places: tuple[str, ...]                # where the pixels changed (top-left ... bottom-right)


def _words(report: ImageReport) -> set[str]:
    return {w.lower() for line in readable_lines(report, READABLE_SCORE) for w in _WORD.findall(line.text)}


def scenes(reports: Sequence[ImageReport], data: Sequence[Pixels]) -> list[Scene]:
    """Group consecutive frames into scenes (see the module docstring)."""
    groups: list[list[int]] = [[0]] if reports else []
    same: list[list[bool]] = [[]]
    shares: list[list[float]] = [[]]
    places: list[list[str]] = [[]]
    for i in range(1, len(reports)):
        distance = hash_distance(reports[i - 1], reports[i])
        share, regions = changed_regions(pixels_of(data[i - 1]), pixels_of(data[i]))
        before, after = _words(reports[i - 1]), _words(reports[i])
        cut = distance > NEAR_DUPLICATE_MAX_DISTANCE and (
            share >= CUT_CHANGED_SHARE
            or (distance > CUT_TEXT_DISTANCE and bool(before or after) and not before & after))
        if cut:
            groups.append([i])
            same.append([])
            shares.append([])
            places.append([])
        else:
            groups[-1].append(i)
            same[-1].append(distance <= NEAR_DUPLICATE_MAX_DISTANCE)
            shares[-1].append(share)
            places[-1].extend(where for where, _, _ in regions)
    return [Scene(tuple(g), all(s), max(sh, default=0.0), tuple(dict.fromkeys(p)))
            for g, s, sh, p in zip(groups, same, shares, places, strict=True)]


def _quote(lines: Sequence[str]) -> str:
    shown = [f"“{line}”" for line in lines[:QUOTED_LINES]]
    more = len(lines) - len(shown)
    return ", ".join(shown) + (f" and {more} more line{'s' if more > 1 else ''}" if more else "")


def _readable(report: ImageReport) -> list[str]:
    """Readable lines with at least 3 letters (axis numbers and stray marks are not worth quoting)."""
    return [line.text for line in readable_lines(report, READABLE_SCORE) if _LETTERS.search(line.text)]


def _is_new(line: str, seen: Sequence[str]) -> bool:
    return all(difflib.SequenceMatcher(a=line, b=old, autojunk=False).ratio() < _SAME_LINE for old in seen)


def _scene_bullet(scene: Scene, reports: Sequence[ImageReport], labels: Sequence[str]) -> str:
    first, last = scene.frames[0], scene.frames[-1]
    if first == last:
        when = labels[first]
    elif labels[first].startswith("frame "):
        when = f"frames {first + 1}–{last + 1}"
    else:
        when = f"{labels[first]}–{labels[last]}"
    if len(scene.frames) == 1:
        how = ""
    elif scene.near_identical:
        how = f" ({len(scene.frames)} near-identical frames)"
    else:
        where = f" at the {join_words(list(scene.places[:3]))}" if scene.places else ""
        how = f" ({len(scene.frames)} frames; changes{where}, up to {scene.changed_share * 100:.0f}% of the pixels)"
    report = reports[first]
    facts = [", ".join(name for name, _ in report.colours[:3]) or "mixed colours"]
    if report.faces:
        facts.append(f"{len(report.faces)} face{'s' if len(report.faces) > 1 else ''}")
    text = _readable(report)
    facts.append(f"text {_quote(text)}" if text else "no readable text")
    seen = list(text)
    for index in scene.frames[1:]:
        new = [line for line in _readable(reports[index]) if _is_new(line, seen)]
        seen.extend(new)
        if new:
            facts.append(f"new text by {labels[index]}: {_quote(new)}")
    return f"- **{when}**{how}: " + "; ".join(facts)


def timeline(reports: Sequence[ImageReport], data: Sequence[Pixels], times: Sequence[str | None]) -> list[str]:
    """The answer's body for video frames: a headline, one bullet per scene, repeated shots."""
    timed = all(times) and len(times) == len(reports)
    labels = [str(t) for t in times] if timed else [f"frame {i + 1}" for i in range(len(reports))]
    found = scenes(reports, data)
    span = f"{labels[0]} to {labels[-1]}" if timed else "no timestamps given, so frames are numbered"
    noun = "scene" if len(found) == 1 else "scenes"
    cuts = [labels[scene.frames[0]] for scene in found[1:]]
    cut_text = f", cuts at {join_words(cuts)}" if cuts else ", no cut"
    parts = [f"**{len(reports)} frames ({span}): {len(found)} {noun}{cut_text}.** A cut is where neighbouring "
             "frames differ in most of their pixels, or in their hash and all their text."]
    parts.append("\n".join(_scene_bullet(scene, reports, labels) for scene in found))
    scene_of = {frame: n for n, scene in enumerate(found) for frame in scene.frames}
    repeats = [f"{labels[i]} and {labels[j]}" for i in range(len(reports)) for j in range(i + 1, len(reports))
               if scene_of[i] != scene_of[j] and hash_distance(reports[i], reports[j]) <= NEAR_DUPLICATE_MAX_DISTANCE]
    if repeats:
        parts.append(f"The same shot returns: {join_words(repeats[:4])} are near-identical.")
    return parts
