"""Azure OpenAI's response extras, built by the offline backend: content-filter verdicts and the retired vision
enhancements (``choices[0].enhancements``: OCR lines and grounding spans computed from the real image).

The request side (``build_enhanced_request``, ``chat_url``) and the parser learners call (``parse_grounding``)
live in :mod:`helpers.azure`; the shapes and their sources are described there. Taught in
notebooks/07_azure.ipynb.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from helpers.offline.analysis import ImageReport

#: Words in an answer that the offline grounding ties to detected faces.
FACE_WORDS = ("faces", "face", "people", "persons", "person")


def content_filter_results() -> dict[str, Any]:
    """Azure's per-choice content-filter verdict for harmless text (every category ``safe``).

    >>> content_filter_results()["violence"]
    {'filtered': False, 'severity': 'safe'}
    """
    return {name: {"filtered": False, "severity": "safe"} for name in ("hate", "self_harm", "sexual", "violence")}


def prompt_filter_results() -> list[dict[str, Any]]:
    """Azure's ``prompt_filter_results`` for a harmless prompt (as in the how-to's sample response)."""
    return [{"prompt_index": 0, "content_filter_results": content_filter_results()}]


def _normalised(points: Sequence[Sequence[float]], width: int, height: int) -> list[dict[str, float]]:
    """Pixel corners -> ``[{"x": 0..1, "y": 0..1}, ...]`` (clamped, 4 decimals)."""
    def clamp(value: float) -> float:
        return round(min(max(value, 0.0), 1.0), 4)

    return [{"x": clamp(x / width), "y": clamp(y / height)} for x, y in points]


def _rectangle(x: float, y: float, w: float, h: float) -> list[tuple[float, float]]:
    return [(x, y), (x + w, y), (x + w, y + h), (x, y + h)]


def _find(text: str, needle: str, start: int) -> tuple[int, int] | None:
    """Case-insensitive position of ``needle`` in ``text`` at or after ``start``, as (offset, end).

    Only forward: OCR lines are matched in reading order, so spans never overlap (an axis label "2007"
    must not be matched inside an earlier title that happens to contain "2007").
    """
    match = re.compile(re.escape(needle), re.IGNORECASE).search(text, start)
    return (match.start(), match.end()) if match else None


def grounding_from_report(answer_text: str, report: ImageReport) -> dict[str, Any]:
    """Azure's ``enhancements.grounding`` object for an answer about one analysed image.

    One line (the whole answer) whose ``spans`` tie phrases of the answer to places on the image:

    * every OCR line of ``report`` whose text appears in the answer (case-insensitive, searched in reading
      order) -> its box;
    * the first word "face(s)"/"person"/"people" in the answer -> one span per detected face.

    ``offset``/``length`` count Python characters; polygons are 4 corners in 0-1 image coordinates.

    >>> grounding_from_report('It says "EXIT".', report)["lines"][0]["spans"][0]["text"]  # doctest: +SKIP
    'EXIT'

    Taught in notebooks/07_azure.ipynb (helpers.display draws the polygons).
    """
    width, height = max(int(report.width), 1), max(int(report.height), 1)
    spans: list[dict[str, Any]] = []
    cursor = 0
    for line in report.lines:
        needle = line.text.strip()
        if len(needle) < 2:
            continue
        found = _find(answer_text, needle, cursor)
        if found is None:
            continue
        start, end = found
        cursor = end
        spans.append({"text": answer_text[start:end], "length": end - start, "offset": start,
                      "polygon": _normalised(line.box, width, height)})
    if report.faces:
        for word in FACE_WORDS:
            found = _find(answer_text, word, 0)
            if found is not None:
                start, end = found
                for x, y, w, h in report.faces:
                    spans.append({"text": answer_text[start:end], "length": end - start, "offset": start,
                                  "polygon": _normalised(_rectangle(x, y, w, h), width, height)})
                break
    spans.sort(key=lambda span: span["offset"])
    return {"lines": [{"text": answer_text, "spans": spans}], "status": "Success"}


def ocr_from_report(report: ImageReport) -> dict[str, Any]:
    """An ``enhancements.ocr`` object for one analysed image.

    Azure's documentation shows only the grounding part of an enhanced response, so the OCR part uses the
    documented shape of Azure AI Vision Image Analysis 4.0 ``read`` results (``metadata`` + ``readResult.blocks
    [].lines[]`` with ``text`` and a 4-point ``boundingPolygon`` in *pixels*; source:
    https://learn.microsoft.com/training/modules/read-text-images-documents-with-computer-vision-service/
    4-use-read-api, checked 2026-11-21), plus ``status``. Lines have no ``words``: the local OCR finds lines.

    >>> ocr_from_report(report)["readResult"]["blocks"][0]["lines"][0]["text"]  # doctest: +SKIP
    'EXIT'
    """
    lines = [{"text": line.text,
              "boundingPolygon": [{"x": round(float(x)), "y": round(float(y))} for x, y in line.box]}
             for line in report.lines]
    return {"status": "Success",
            "metadata": {"width": int(report.width), "height": int(report.height)},
            "readResult": {"blocks": [{"lines": lines}] if lines else []}}
