"""The offline backend's answer text: honest, deterministic Markdown built from local image analysis.

No language model runs offline, so the first sentence of every answer says so. The rest depends on what the
question asks for (English or Chinese keywords, see :func:`detect_intent`):

- ``transcribe`` ("transcribe", "what does it say", "read", "text", "文字", "写了什么"...): the OCR text of each
  image in reading order, in a fenced block;
- ``compare`` ("difference", "compare", "same", "区别", "不同"...) with two images or more: what changed between
  consecutive images, and which images are near-identical;
- ``describe`` (anything else): per image its size, orientation, main colours, faces and the first lines of
  text, then a plain statement of what the offline backend cannot do and how to switch to a real model;
- ``no_image`` (a text-only message): it can only analyse images, and how to switch.

The same question and images always give the same answer, byte for byte, so notebook outputs are stable.
Every notebook that runs offline shows these answers; switching providers is taught in notebooks/00_setup.ipynb.

>>> from helpers.offline.answers import compose
>>> print(compose("What is the capital of France?", [], []))   # doctest: +ELLIPSIS
Offline backend: no language model is running here, so I can only analyse the images you send, and this message has none. ...
"""

from __future__ import annotations

import re

from helpers.offline.analysis import ImageReport, difference, hash_distance, near_duplicates
from helpers.writing import IDEOGRAPHS

__all__ = ["NOTICE", "NOTICE_PREFIX", "SWITCH_HINT", "compose", "detect_intent"]

#: Every answer starts with this; tests and notebooks can look for it.
NOTICE_PREFIX = "Offline backend: no language model is running here"
#: The first sentence of an answer about images.
NOTICE = f"{NOTICE_PREFIX}, so this answer comes from local image analysis (OCR, face detection, colours)."
#: The first sentence of an answer to a message without images.
NOTICE_NO_IMAGE = f"{NOTICE_PREFIX}, so I can only analyse the images you send, and this message has none."
#: How to get real answers.
SWITCH_HINT = ("For real answers, switch to a vision model: set OPENAI_API_KEY, or the Azure settings, or "
               "OPENAI_BASE_URL of a local engine in .env (see notebooks/00_setup.ipynb).")
CANNOT = ("I cannot recognise objects or people, describe the scene, reason about the image or answer open "
          "questions.")
OCR_CAVEAT = "Local OCR can misread handwriting, names and numbers: check them against the image."

#: Text lines quoted per image in a description; consecutive pairs compared in one answer.
DESCRIBE_TEXT_LINES = 3
MAX_COMPARED_PAIRS = 8

_CJK_CHAR = re.compile(rf"[{IDEOGRAPHS}]")   # Chinese characters in the question: answer in Chinese

# Keywords by intent. English ones are matched as whole words (case-insensitive), Chinese ones as substrings.
_COMPARE_EN = re.compile(
    r"\b(differen\w*|differ|diff|compar\w*|same|identical|duplicates?|chang\w*|versus|vs|happen\w*|spot)\b", re.I
)
_COMPARE_ZH = ("区别", "不同", "差异", "差别", "比较", "对比", "一样", "相同", "变化", "改变", "变了", "发生")
_TRANSCRIBE_EN = re.compile(
    r"\b(transcri\w*|ocr|read|reading|written|writing|handwrit\w*|text|extract\w*|says"
    r"|what\b.{0,40}\bsay)\b",
    re.I,
)
_TRANSCRIBE_ZH = ("文字", "文本", "写了什么", "写的什么", "写的是", "写着", "识别", "转录", "转写", "誊写", "抄写", "读", "讲了什么",
                  "说了什么", "说的什么")


def detect_intent(question: str, image_count: int) -> str:
    """What the question asks for: ``"no_image"``, ``"compare"``, ``"transcribe"`` or ``"describe"``.

    ``compare`` needs at least two images; with fewer, a comparison question is answered as a description.

    >>> detect_intent("Transcribe the handwriting.", 1)
    'transcribe'
    >>> detect_intent("这两张图有什么区别？", 2)
    'compare'
    >>> detect_intent("介绍下这幅图?", 1)
    'describe'
    """
    if image_count == 0:
        return "no_image"
    question = question or ""
    if image_count >= 2 and (_COMPARE_EN.search(question) or any(k in question for k in _COMPARE_ZH)):
        return "compare"
    if _TRANSCRIBE_EN.search(question) or any(k in question for k in _TRANSCRIBE_ZH):
        return "transcribe"
    return "describe"


def compose(question: str, reports: list[ImageReport], image_bytes: list[bytes]) -> str:
    """The offline answer to ``question`` about the analysed images (Markdown, deterministic).

    ``reports[i]`` is ``analysis.analyze(image_bytes[i])``, in the order the images appear in the request;
    ``image_bytes`` is needed to compare pixels. The first sentence always says that no language model runs.

    >>> from helpers.offline.analysis import analyze                   # doctest: +SKIP
    >>> data = open("images/astronaut.jpg", "rb").read()              # doctest: +SKIP
    >>> print(compose("Describe this image.", [analyze(data)], [data]))   # doctest: +SKIP
    """
    reports = list(reports)
    image_bytes = list(image_bytes)
    if len(image_bytes) != len(reports):
        raise ValueError(
            f"compose() got {len(reports)} reports but {len(image_bytes)} images; pass the bytes of every "
            "analysed image, in the same order."
        )
    question = question or ""
    intent = detect_intent(question, len(reports))
    if intent == "no_image":
        return "\n\n".join([
            f"{NOTICE_NO_IMAGE} I cannot answer questions in words, follow up on earlier answers or reason.",
            "Send an image with your question, for example “Transcribe this image.”, “Describe this image.” "
            f"or, with two images, “What is different?”. {SWITCH_HINT}",
        ])
    opening = NOTICE
    if _CJK_CHAR.search(question):
        opening += " The offline backend answers in English only."
    if intent == "transcribe":
        body = _transcription(reports)
    elif intent == "compare":
        body = _comparison(reports, image_bytes)
    else:
        body = _description(reports)
        if len(reports) == 1 and (_COMPARE_EN.search(question) or any(k in question for k in _COMPARE_ZH)):
            body.append("Comparing needs at least two images in the same message; this one has 1.")
        body.append(f"{CANNOT} {SWITCH_HINT}")
    return "\n\n".join([opening, *body])


# --- parts ---------------------------------------------------------------------------------------------

def _label(index: int) -> str:
    return f"Image {index + 1}"


def _fenced(text: str) -> str:
    """``text`` in a fenced block whose fence is longer than any run of backticks inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}text\n{text}\n{fence}"


def _format_name(mime_type: str) -> str:
    subtype = mime_type.split("/")[-1]
    return {"jpeg": "JPEG", "png": "PNG", "gif": "GIF", "webp": "WebP"}.get(subtype, subtype.upper())


def _facts(report: ImageReport) -> str:
    """One sentence of facts: size, orientation, format, colours, faces."""
    colours = ", ".join(f"{name} ({share * 100:.0f}%)" for name, share in report.colours) or "mixed"
    faces = len(report.faces)
    face_text = "no faces detected" if faces == 0 else ("1 face detected" if faces == 1 else f"{faces} faces detected")
    return (f"{report.width}×{report.height} px, {report.orientation}, {_format_name(report.mime_type)}; "
            f"main colours: {colours}; {face_text}.")


def _description(reports: list[ImageReport]) -> list[str]:
    parts = []
    for index, report in enumerate(reports):
        text_rows = [row for row in report.text().split("\n") if row]
        paragraph = f"**{_label(index)}**: {_facts(report)}"
        if not text_rows:
            paragraph += " No text found."
        else:
            shown = text_rows[:DESCRIBE_TEXT_LINES]
            noun = "line" if len(text_rows) == 1 else "lines"
            lead = f"Text: {len(text_rows)} {noun}" + (f", the first {len(shown)}:" if len(shown) < len(text_rows) else ":")
            paragraph += f" {lead}\n{_fenced(chr(10).join(shown))}"
        parts.append(paragraph)
    if len(reports) >= 2:
        groups = _near_identical_groups(reports)
        if groups:
            parts.append(groups)
    return parts


def _near_identical_groups(reports: list[ImageReport]) -> str:
    """One sentence naming the groups of near-identical images ("" if there are none).

    Pairs within the perceptual-hash threshold are joined into groups (1~2 and 2~3 make 1, 2, 3), so that a
    run of similar video frames is one short phrase rather than a list of every pair.
    """
    pairs = near_duplicates(reports)
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
        numbers = [str(i + 1) for i in group]
        names = numbers[0] + " and " + numbers[1] if len(numbers) == 2 else \
            ", ".join(numbers[:-1]) + " and " + numbers[-1]
        spread = f"hash distance {low}" if low == high else f"hash distances {low}-{high}"
        phrases.append(f"Images {names} ({spread} of 64 bits)")
    return "Near-identical images: " + "; ".join(phrases) + "."


def _transcription(reports: list[ImageReport]) -> list[str]:
    parts = []
    found_text = False
    for index, report in enumerate(reports):
        text = report.text()
        if text:
            found_text = True
            parts.append(f"Text in **{_label(index)}**, read by local OCR in reading order:\n{_fenced(text)}")
        else:
            parts.append(f"**{_label(index)}**: no text found by local OCR. It is {_facts(report)}")
    parts.append(OCR_CAVEAT if found_text else f"{CANNOT} {SWITCH_HINT}")
    return parts


def _comparison(reports: list[ImageReport], image_bytes: list[bytes]) -> list[str]:
    parts = []
    pair_count = len(reports) - 1
    for index in range(min(pair_count, MAX_COMPARED_PAIRS)):
        parts.append(difference(reports[index], reports[index + 1], image_bytes[index], image_bytes[index + 1],
                                labels=(_label(index), _label(index + 1))))
    if pair_count > MAX_COMPARED_PAIRS:
        parts.append(f"The other {pair_count - MAX_COMPARED_PAIRS} consecutive pairs are not compared, to keep "
                     "this answer short.")
    if len(reports) >= 3:
        parts.append(_near_identical_groups(reports) or "No two images are near-identical.")
    parts.append(f"This compares pixels, hashes and OCR text only; it cannot say what the change means. {SWITCH_HINT}")
    return parts
