"""Structured answers without a model: a JSON schema filled from local image analysis, and empty elsewhere.

No language model runs offline, so a field gets a value only when local analysis measured it; every other field
gets the schema's *empty* value (``null`` where the schema allows it, else ``""``, ``0``, ``false``, ``[]``, the
first ``enum`` value). Fields are matched by their names (lower case, ``_``/``-``/spaces ignored):

=====================================================  ==============================================================
field name                                             filled with
=====================================================  ==============================================================
``text``, ``*text``, ``transcription``, ``ocr``...      the OCR text in reading order (all images, blank line apart)
``lines``, ``text_lines``, ``words``, ``boxes``,        one item per OCR line: a string, or an object whose ``text``,
``regions``, ``detections``, ``annotations``...         ``box``/``bbox``, ``x``/``y``/``width``/``height``,
                                                        ``confidence``/``score`` and ``image`` fields are filled
``faces`` (array), ``face_count``, ``num_faces``...      face boxes (objects as above, label ``"face"``), their count
``colours``/``colors`` (array), ``dominant_colour``     colour names (or objects with ``name`` and ``share``)
``width``, ``height``, ``orientation``, ``format``       the (first) image's size in pixels, orientation, file format
``image_count``, ``line_count``                         how many images / OCR lines
``images`` (array of objects)                           one object per image, each filled from that image
=====================================================  ==============================================================

**Boxes** are in pixels of the image as sent (EXIF-upright, not resized), origin at the top-left corner, x to the
right, y down. An array of four numbers is ``[x_min, y_min, x_max, y_max]``; an array of points is the four
corners clockwise from the top-left; an object takes ``x``/``left``/``x_min``, ``y``/``top``/``y_min``,
``x_max``/``right``/``x1``, ``y_max``/``bottom``/``y1``, ``width``/``w``, ``height``/``h`` (``x0, y0, x1, y1``
is the top-left and bottom-right corner, as in Pillow). When the list's or the item's schema says the coordinates
are relative (its text mentions "fraction", "normalised", "relative" or "0-1"), they are fractions (0-1) of the
image's width and height instead, as Azure's grounding polygons were.

Nothing else is guessed: a receipt's total, a chart's values, a product's name stay empty even when OCR read the
characters, because deciding which characters they are needs a model. :func:`fill` returns a log of what was
filled and what was left empty; the server sends it in the ``x-offline-fill`` response header.

A property that is neither required nor measured is left out.

>>> schema = {"type": "object", "properties": {"total": {"type": ["number", "null"]}}, "required": ["total"]}
>>> value, log = fill(schema, Facts(()))
>>> value, log.header()
({'total': None}, 'filled=-; empty=total')
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from helpers.ocr import lines_to_text
from helpers.offline.analysis import ImageReport

__all__ = ["Facts", "FillLog", "fill", "json_object"]

MAX_HEADER = 1500
_TEXT = {"text", "fulltext", "rawtext", "ocrtext", "alltext", "extractedtext", "transcription", "transcript", "ocr",
         "content", "detectedtext", "visibletext"}
_LINES = {"lines", "textlines", "ocrlines", "words", "boxes", "textboxes", "regions", "textregions", "detections",
          "annotations", "blocks", "textblocks", "texts", "ocrresults", "lineboxes"}
_FACES_COUNT = {"facecount", "faces", "numfaces", "numberoffaces", "facescount", "nfaces"}
_RELATIVE = re.compile(r"(?i)fraction|normali[sz]|relative|proportion|\b0(\.0)?\s*(-|–|to)\s*1(\.0)?\b")
_BOX = {"box", "bbox", "boundingbox", "rect", "rectangle", "polygon", "boundingpolygon", "points", "corners"}
_EDGES = {"left": ("x", "left", "xmin", "x0", "minx"), "top": ("y", "top", "ymin", "y0", "miny"),
          "right": ("xmax", "right", "maxx", "x1", "x2"), "bottom": ("ymax", "bottom", "maxy", "y1", "y2"),
          "width": ("width", "w"), "height": ("height", "h")}


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


@dataclass(frozen=True)
class Box:
    """One located thing: an OCR line or a face, in pixels of image ``image`` (1-based)."""

    text: str
    left: float
    top: float
    right: float
    bottom: float
    score: float | None
    image: int
    corners: tuple[tuple[float, float], ...] = ()
    size: tuple[int, int] = (1, 1)          # the image's width and height
    relative: bool = False                  # coordinates are fractions (0-1) of the width and height

    def as_fractions(self) -> Box:
        """The same box in fractions (0-1) of the image's width and height, to 4 decimals."""
        w, h = self.size
        return Box(self.text, round(self.left / w, 4), round(self.top / h, 4), round(self.right / w, 4),
                   round(self.bottom / h, 4), self.score, self.image,
                   tuple((round(x / w, 4), round(y / h, 4)) for x, y in self.corners), self.size, True)

    def edge(self, name: str) -> float:
        return {"left": self.left, "top": self.top, "right": self.right, "bottom": self.bottom,
                "width": self.right - self.left, "height": self.bottom - self.top}[name]


@dataclass(frozen=True)
class Facts:
    """What local analysis measured in the images of the last user turn."""

    reports: tuple[ImageReport, ...]

    def text(self) -> str:
        return "\n\n".join(t for t in (lines_to_text(r.lines) for r in self.reports) if t)

    def lines(self) -> list[Box]:
        return [Box(line.text, line.left, line.top, line.right, line.bottom, round(line.score, 3), i + 1,
                    tuple(line.box), (r.width, r.height)) for i, r in enumerate(self.reports) for line in r.lines]

    def faces(self) -> list[Box]:
        return [Box("face", x, y, x + w, y + h, None, i + 1, (), (r.width, r.height))
                for i, r in enumerate(self.reports) for x, y, w, h in r.faces]

    def colours(self) -> list[tuple[str, float]]:
        return [c for r in self.reports[:1] for c in r.colours]


@dataclass
class FillLog:
    """Which fields were filled (and from what), and which were left empty."""

    filled: dict[str, str] = field(default_factory=dict)
    empty: list[str] = field(default_factory=list)

    def header(self) -> str:
        """The ``x-offline-fill`` header: ``filled=path(source),...; empty=path,...`` (ASCII, bounded)."""
        filled = ",".join(f"{p}({s})" for p, s in self.filled.items()) or "-"
        text = f"filled={filled}; empty={','.join(self.empty) or '-'}"
        text = text.encode("ascii", "backslashreplace").decode("ascii")
        return text if len(text) <= MAX_HEADER else text[:MAX_HEADER - 3] + "..."


def _resolve(schema: Any, root: dict[str, Any]) -> dict[str, Any]:
    """Follow ``$ref`` (local ``#/...`` only) and merge ``allOf``; ``{}`` for anything unreadable."""
    seen = 0
    while isinstance(schema, dict) and "$ref" in schema and seen < 32:
        target: Any = root
        for part in str(schema["$ref"]).lstrip("#").strip("/").split("/"):
            target = target.get(part, {}) if isinstance(target, dict) and part else target
        schema = {**{k: v for k, v in schema.items() if k != "$ref"}, **(target if isinstance(target, dict) else {})}
        seen += 1
    if isinstance(schema, dict) and schema.get("allOf"):
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for sub in schema["allOf"]:
            merged.update(_resolve(sub, root))
        return merged
    return schema if isinstance(schema, dict) else {}


def _types(schema: dict[str, Any], root: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The JSON types a schema allows and the non-null alternatives (``anyOf``/``oneOf`` arms) to fill."""
    arms = [_resolve(a, root) for a in schema.get("anyOf") or schema.get("oneOf") or []]
    if arms:
        kinds = [k for a in arms for k in _types(a, root)[0]]
        return kinds, [a for a in arms if _types(a, root)[0] != ["null"]]
    kind = schema.get("type")
    kinds = list(kind) if isinstance(kind, list) else [kind] if isinstance(kind, str) else []
    if not kinds:
        kinds = ["object"] if "properties" in schema else ["array"] if "items" in schema else []
    return kinds, [schema]


def _empty(schema: dict[str, Any], root: dict[str, Any], path: str, log: FillLog, facts: Facts) -> Any:
    if "const" in schema:
        return schema["const"]
    kinds, arms = _types(schema, root)
    if "null" in kinds:
        log.empty.append(path)
        return None
    if schema.get("enum"):
        log.empty.append(path)
        return schema["enum"][0]
    main = arms[0] if arms else schema
    kind = next((k for k in kinds if k != "null"), "object" if not kinds else kinds[0])
    if kind == "object":
        return _object(main, root, path, log, None, facts)
    log.empty.append(path)
    if kind == "array":
        item = _resolve(main.get("items", {}), root)
        return [_empty(item, root, path + "[]", FillLog(), Facts(())) for _ in range(int(main.get("minItems", 0)))]
    return {"string": "", "integer": max(0, int(main.get("minimum", 0))), "number": max(0, main.get("minimum", 0)),
            "boolean": False}.get(kind)


def _cast(value: Any, kinds: list[str], schema: dict[str, Any]) -> Any:
    """``value`` as one of the schema's types, or ``None`` when it cannot be (the field is then left empty)."""
    if schema.get("enum") and value not in schema["enum"]:
        return None
    if isinstance(value, str):
        return value if "string" in kinds or not kinds else None
    if isinstance(value, bool):
        return value if "boolean" in kinds else None
    if isinstance(value, int | float):
        if "integer" in kinds:
            return int(round(value))
        if "number" in kinds:
            return round(float(value), 4)
        return str(value) if "string" in kinds else None
    return value


def _box_value(box: Box, schema: dict[str, Any], root: dict[str, Any], path: str, log: FillLog,
               facts: Facts) -> Any:
    kinds, arms = _types(schema, root)
    main = arms[0] if arms else schema
    if "array" in kinds:
        item_kinds, _ = _types(_resolve(main.get("items", {}), root), root)
        corners = box.corners or ((box.left, box.top), (box.right, box.top), (box.right, box.bottom),
                                  (box.left, box.bottom))
        num = (lambda v: v) if box.relative else round
        if "array" in item_kinds:
            return [[num(x), num(y)] for x, y in corners]
        if "object" in item_kinds:
            return [{"x": num(x), "y": num(y)} for x, y in corners]
        return [_cast(v, item_kinds or ["number"], {}) for v in (box.left, box.top, box.right, box.bottom)]
    if "object" in kinds:
        return _object(main, root, path, log, box, facts)
    return None


def _located(boxes: list[Box], schema: dict[str, Any], root: dict[str, Any], path: str, log: FillLog,
             source: str, facts: Facts) -> Any:
    _, arms = _types(schema, root)
    main = arms[0] if arms else schema
    item = _resolve(main.get("items", {}), root)
    item_kinds, _ = _types(item, root)
    if _RELATIVE.search(json.dumps([main.get("description", ""), item], ensure_ascii=False, default=str)):
        boxes = [b.as_fractions() for b in boxes]
    values: list[Any]
    if "object" in item_kinds:
        values = [_object(_types(item, root)[1][0], root, path + "[]", log, b, facts) for b in boxes]
    elif "string" in item_kinds:
        values = [b.text for b in boxes]
    else:
        return None
    log.filled[path] = source
    return values[:main["maxItems"]] if isinstance(main.get("maxItems"), int) else values


def _measured(key: str, schema: dict[str, Any], root: dict[str, Any], facts: Facts, path: str, log: FillLog,
              box: Box | None) -> tuple[Any, str] | None:
    """``(value, source)`` for a field local analysis can fill, else ``None``."""
    kinds, _ = _types(schema, root)
    first = facts.reports[0] if facts.reports else None
    if box is not None:
        if key in _BOX:
            return _box_value(box, schema, root, path, log, facts), "box"
        for edge, names in _EDGES.items():
            if key in names:
                return box.edge(edge), "box"
        if key in ("text", "label", "content", "name", "value", "word", "line"):
            return box.text, "ocr" if box.text != "face" else "faces"
        if key in ("confidence", "score", "probability"):
            return box.score, "ocr"
        if key in ("image", "imageindex", "page"):
            return box.image, "analysis"
        return None
    plural = "array" in kinds
    if not facts.reports:                       # no image in the last user turn: nothing was measured
        return None
    if plural and key in _LINES:
        return _located(facts.lines(), schema, root, path, log, "ocr", facts), "ocr"
    if plural and "face" in key:
        return _located(facts.faces(), schema, root, path, log, "faces", facts), "faces"
    if plural and ("colour" in key or "color" in key):
        item = _resolve(_types(schema, root)[1][0].get("items", {}), root)
        values: list[Any]
        if "object" in _types(item, root)[0]:
            values = [_colour_object(name, share, item, root) for name, share in facts.colours()]
        else:
            values = [name for name, _ in facts.colours()]
        return values, "colours"
    if plural and key in ("images", "pictures", "photos", "pages"):
        item = _resolve(_types(schema, root)[1][0].get("items", {}), root)
        if "object" in _types(item, root)[0]:
            return [_object(_types(item, root)[1][0], root, f"{path}[]", log, None, Facts((r,)))
                    for r in facts.reports], "analysis"
        return None
    if key in _TEXT or (key.endswith("text") and "string" in kinds) or "transcri" in key:
        return (facts.text(), "ocr") if facts.reports else None
    if key in _FACES_COUNT or (("face" in key) and ("count" in key or "number" in key or key.startswith("num"))):
        return (len(facts.faces()), "faces") if facts.reports else None
    if key in ("imagecount", "numimages", "numberofimages"):
        return len(facts.reports), "analysis"
    if key in ("linecount", "numlines", "numberoflines"):
        return (len(facts.lines()), "ocr") if facts.reports else None
    if first is None:
        return None
    if key in ("width", "imagewidth", "widthpx"):
        return first.width, "size"
    if key in ("height", "imageheight", "heightpx"):
        return first.height, "size"
    if key in ("orientation", "aspect"):
        return first.orientation, "size"
    if key in ("format", "mimetype", "mediatype", "imageformat", "filetype"):
        enum = schema.get("enum") or [""]
        full = key in ("mimetype", "mediatype") or "/" in str(enum[0])
        return (first.mime_type if full else first.mime_type.split("/")[-1]), "analysis"
    if ("colour" in key or "color" in key) and facts.colours():
        return facts.colours()[0][0], "colours"
    return None


def _colour_object(name: str, share: float, item: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    obj = _types(item, root)[1][0]
    value: dict[str, Any] = {}
    for prop, sub in (obj.get("properties") or {}).items():
        key, sub = _key(prop), _resolve(sub, root)
        kinds, _ = _types(sub, root)
        if key in ("name", "colour", "color", "label"):
            value[prop] = name
        elif key in ("share", "fraction", "proportion", "ratio"):
            value[prop] = _cast(share, kinds, sub)
        elif key in ("percent", "percentage", "pct"):
            value[prop] = _cast(share * 100, kinds, sub)
        else:
            value[prop] = _empty(sub, root, prop, FillLog(), Facts(()))
    return value


def _object(schema: dict[str, Any], root: dict[str, Any], path: str, log: FillLog, box: Box | None,
            facts: Facts) -> dict[str, Any]:
    value: dict[str, Any] = {}
    required = set(schema.get("required") or [])
    for prop, sub in (schema.get("properties") or {}).items():
        sub = _resolve(sub, root)
        where = f"{path}.{prop}" if path else prop
        found = _measured(_key(prop), sub, root, facts, where, log, box)
        kinds, _ = _types(sub, root)
        result = _cast(found[0], kinds, sub) if found is not None and found[0] is not None else None
        if found is not None and result is not None:
            value[prop] = result
            if box is None:
                log.filled.setdefault(where, found[1])
        elif prop in required or "object" in kinds or schema.get("additionalProperties") is False:
            value[prop] = _empty(sub, root, where, log if box is None else FillLog(), facts)
    return value


def fill(schema: dict[str, Any], facts: Facts) -> tuple[Any, FillLog]:
    """A value valid against ``schema`` with the measured fields filled and the rest empty, and the log."""
    log = FillLog()
    root = schema if isinstance(schema, dict) else {}
    top = _resolve(root, root)
    kinds, arms = _types(top, root)
    if "object" in kinds or not kinds:
        return _object(arms[0] if arms else top, root, "", log, None, facts), log
    return _empty(top, root, "$", log, facts), log


def json_object(facts: Facts, notice: str) -> tuple[dict[str, Any], FillLog]:
    """The answer to ``response_format={"type": "json_object"}``: the local analysis, as JSON."""
    images = [{"width": r.width, "height": r.height, "orientation": r.orientation, "format": r.mime_type,
               "text": lines_to_text(r.lines),
               "lines": [{"text": b.text, "box": [round(b.left), round(b.top), round(b.right), round(b.bottom)]}
                         for b in Facts((r,)).lines()],
               "faces": [[x, y, x + w, y + h] for x, y, w, h in r.faces],
               "colours": [{"name": n, "share": round(s, 2)} for n, s in r.colours]} for r in facts.reports]
    log = FillLog({"images": "analysis"} if images else {}, [] if images else ["images"])
    return {"offline_notice": notice, "box_convention": "[x_min, y_min, x_max, y_max] in pixels, origin top-left",
            "images": images}, log
