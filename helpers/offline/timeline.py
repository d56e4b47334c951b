"""The offline answer about video frames: what changed when, scene by scene, instead of every pair in full.

Frames arrive as images in one message, each after a short text part with its time (``helpers.video.
frames_to_parts`` writes ``"Frame at 00:07.0"``; notebooks/08_video.ipynb). Consecutive frames are grouped into
scenes: a new scene starts where two neighbours differ in most of their pixels (a cut), or where their
perceptual hashes jump and the text read in them has nothing in common (a cut between two pages that are both
mostly white). Within a scene the answer says whether the frames are near-identical or where they change, and
which text appeared. Text is quoted only where local OCR is confident (:data:`summaries.READABLE_SCORE`), so a
blurred caption does not turn into a list of fragments.

>>> parse_time("Frame at 00:07.0"), parse_time("a frame"), parse_time("t=1:02:03.5")
('00:07.0', None, '1:02:03.5')
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from helpers.compare import changed_regions
from helpers.offline.analysis import NEAR_DUPLICATE_MAX_DISTANCE, ImageReport, hash_distance
from helpers.offline.summaries import READABLE_SCORE, join_words, readable_lines

__all__ = ["CUT_CHANGED_SHARE", "Scene", "parse_time", "scenes", "timeline"]

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


def scenes(reports: Sequence[ImageReport], data: Sequence[bytes]) -> list[Scene]:
    """Group consecutive frames into scenes (see the module docstring)."""
    groups: list[list[int]] = [[0]] if reports else []
    same: list[list[bool]] = [[]]
    shares: list[list[float]] = [[]]
    places: list[list[str]] = [[]]
    for i in range(1, len(reports)):
        distance = hash_distance(reports[i - 1], reports[i])
        share, regions = changed_regions(data[i - 1], data[i])
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


def timeline(reports: Sequence[ImageReport], data: Sequence[bytes], times: Sequence[str | None]) -> list[str]:
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
