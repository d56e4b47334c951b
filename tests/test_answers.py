"""helpers.offline.answers: the offline backend's honest, deterministic answer text."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from helpers.offline.analysis import ImageReport, OcrLine, analyze, clear_cache
from helpers.offline.answers import NOTICE, NOTICE_PREFIX, compose, detect_intent


def _course_photo(name: str) -> Image.Image:
    """A public-domain / CC0 photo shipped in images/ (the same pictures scikit-image ships), as RGB."""
    with Image.open(Path(__file__).resolve().parents[1] / "images" / name) as img:
        return img.convert("RGB")


FONT = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=True)


def encode(img: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt)
    return buffer.getvalue()


def note(lines: list[str], size: tuple[int, int] = (900, 300)) -> bytes:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 36)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * 70), line, fill="black", font=font)
    return encode(img)


def first_sentence(answer: str) -> str:
    return re.split(r"(?<=\.)\s", answer, maxsplit=1)[0]


@pytest.fixture(scope="module")
def astronaut_png() -> bytes:
    return encode(_course_photo("astronaut.jpg"))


@pytest.fixture(scope="module")
def shopping_note() -> bytes:
    return note(["Shopping list", "Milk 2 litres", "Apples and pears"])


def ask(question: str, *images: bytes) -> str:
    return compose(question, [analyze(img) for img in images], list(images))


# --- every answer -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("question", ["Describe this image.", "Transcribe the text.", "What is this?", ""])
def test_first_sentence_says_no_model_runs(question: str, astronaut_png: bytes):
    answer = ask(question, astronaut_png)
    assert first_sentence(answer) == NOTICE
    assert answer.startswith(NOTICE_PREFIX)


def test_text_only_message_says_it_can_only_analyse_images():
    answer = compose("Thanks! And what was the weather like?", [], [])
    assert answer.startswith(NOTICE_PREFIX)
    assert "only analyse the images" in first_sentence(answer)
    assert "OPENAI_API_KEY" in answer and "notebooks/00_setup.ipynb" in answer


def test_same_input_same_answer_byte_for_byte(astronaut_png: bytes, shopping_note: bytes):
    first = ask("Describe these images.", astronaut_png, shopping_note)
    clear_cache()  # analyse again from scratch
    assert ask("Describe these images.", astronaut_png, shopping_note) == first
    assert ask("Compare them.", astronaut_png, shopping_note) == ask("Compare them.", astronaut_png, shopping_note)


# --- by intent ----------------------------------------------------------------------------------------------

def test_transcription_returns_the_ocr_text_in_reading_order(shopping_note: bytes):
    answer = ask("Please transcribe this note.", shopping_note)
    assert "```text\nShopping list\nMilk 2 litres\nApples and pears\n```" in answer
    assert "Image 1" in answer
    assert "main colours" not in answer  # a transcription, not a description


def test_transcription_of_an_image_without_text_says_so(astronaut_png: bytes):
    plain = encode(Image.new("RGB", (300, 200), (20, 60, 220)))
    answer = ask("What does it say?", plain)
    assert "no text found" in answer
    assert "blue" in answer


def test_description_lists_facts_and_limits(astronaut_png: bytes, shopping_note: bytes):
    answer = ask("What is in these pictures?", astronaut_png, shopping_note)
    assert "**Image 1**: 512×512 px, square, PNG" in answer
    assert "1 face detected" in answer
    assert "**Image 2**: 900×300 px, landscape, PNG" in answer
    assert "no faces detected" in answer
    assert "Text: 3 lines:\n```text\nShopping list\nMilk 2 litres\nApples and pears\n```" in answer
    assert "cannot recognise objects" in answer
    assert "OPENAI_API_KEY" in answer and "OPENAI_BASE_URL" in answer and "notebooks/00_setup.ipynb" in answer


def test_description_quotes_only_the_first_lines():
    page = note([f"Line number {i}" for i in range(1, 6)], size=(700, 400))
    answer = ask("Describe it.", page)
    assert "Text: 5 lines, the first 3:\n```text\nLine number 1\nLine number 2\nLine number 3\n```" in answer
    assert "Line number 4" not in answer


def test_compare_names_the_differences(astronaut_png: bytes):
    edited = _course_photo("astronaut.jpg")
    ImageDraw.Draw(edited).rectangle((392, 392, 492, 492), fill=(255, 255, 0))
    edited_png = encode(edited)
    answer = ask("What is the difference between these two images?", astronaut_png, edited_png)
    assert first_sentence(answer) == NOTICE
    assert "Image 1 and Image 2 are near-identical" in answer
    assert "bottom-right" in answer


def test_compare_names_changed_words():
    before = note(["Flight to Paris on time", "Gate 22"])
    after = note(["Flight to Paris delayed", "Gate 22"])
    answer = ask("Are these the same?", before, after)
    assert "Text only in Image 1: “on”, “time”." in answer
    assert "Text only in Image 2: “delayed”." in answer


def test_compare_many_images_lists_near_duplicates(astronaut_png: bytes, shopping_note: bytes):
    astronaut_jpeg = encode(_course_photo("astronaut.jpg"), "JPEG")
    answer = ask("What changed between the frames?", astronaut_png, shopping_note, astronaut_jpeg)
    assert "Image 1 and Image 2 are different pictures" in answer
    assert "Image 2 and Image 3 are different pictures" in answer
    assert re.search(r"Near-identical images: Images 1 and 3 \(hash distance \d+ of 64 bits\)\.", answer)


def test_video_frames_are_grouped_not_listed_pair_by_pair():
    frames = []
    for step in range(5):
        frame = _course_photo("astronaut.jpg")
        ImageDraw.Draw(frame).ellipse((40 + step * 100, 400, 100 + step * 100, 460), fill=(255, 255, 0))
        frames.append(encode(frame))
    answer = ask("What happens in this video?", *frames)
    assert "Image 4 and Image 5 are near-identical" in answer
    assert "bottom-right" in answer
    assert re.search(r"Near-identical images: Images 1, 2, 3, 4 and 5 \(hash distances \d+-\d+ of 64 bits\)\.", answer)
    assert answer.count("Near-identical images") == 1


def test_compare_with_one_image_explains_why_not(astronaut_png: bytes):
    answer = ask("Compare this with the original.", astronaut_png)
    assert "Comparing needs at least two images" in answer
    assert "512×512 px" in answer


# --- Chinese questions -------------------------------------------------------------------------------------

def test_chinese_questions_pick_the_right_intent(astronaut_png: bytes, shopping_note: bytes):
    describe = ask("介绍下这幅图?", astronaut_png)
    assert describe.startswith(NOTICE)
    assert "answers in English only" in describe
    assert "1 face detected" in describe

    transcribe = ask("图里的文字写了什么？", shopping_note)
    assert "```text\nShopping list\nMilk 2 litres\nApples and pears\n```" in transcribe

    compare = ask("这两张图有什么区别？", astronaut_png, shopping_note)
    assert "Image 1 and Image 2 are different pictures" in compare


@pytest.mark.parametrize(("question", "count", "intent"), [
    ("Transcribe the handwriting", 1, "transcribe"),
    ("What does the sign say?", 1, "transcribe"),
    ("Can you read this receipt?", 1, "transcribe"),
    ("图里的内容讲了什么？", 1, "transcribe"),
    ("Describe this image in five words.", 1, "describe"),
    ("介绍下这幅图?", 1, "describe"),
    ("What are the differences?", 2, "compare"),
    ("Are they identical?", 3, "compare"),
    ("两张图不同的地方在哪里", 2, "compare"),
    ("What are the differences?", 1, "describe"),
    ("Transcribe both", 2, "transcribe"),
    ("Any question at all", 0, "no_image"),
])
def test_detect_intent(question: str, count: int, intent: str):
    assert detect_intent(question, count) == intent


# --- Markdown safety ----------------------------------------------------------------------------------------

def test_ocr_text_with_backticks_cannot_break_the_fence():
    box = ((0.0, 0.0), (100.0, 0.0), (100.0, 20.0), (0.0, 20.0))
    report = ImageReport(sha256="0" * 64, width=100, height=20, mime_type="image/png", orientation="landscape",
                         lines=(OcrLine("run ```rm``` now", box, 0.9),), faces=(), colours=(("white", 1.0),),
                         phash="0" * 16)
    answer = compose("transcribe", [report], [b""])
    assert "````text\nrun ```rm``` now\n````" in answer


def test_mismatched_reports_and_images_are_refused(astronaut_png: bytes):
    with pytest.raises(ValueError, match="same order"):
        compose("Describe", [analyze(astronaut_png)], [])
