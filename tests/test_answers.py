"""helpers.offline.answers: the offline backend's honest, deterministic answer text."""

from __future__ import annotations

import dataclasses
import io
import re
from pathlib import Path

import pytest
from matplotlib import font_manager
from PIL import Image, ImageDraw, ImageFont

from helpers.offline.analysis import ImageReport, OcrLine, analyze, clear_cache
from helpers.offline.answers import HINT, NOTICE, NOTICE_PREFIX, Context, build, compose, detect_intent


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


def paragraphs(answer: str) -> int:
    return len(answer.split("\n\n"))


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


def test_a_conversation_without_any_image_gets_a_short_honest_answer():
    answer = compose("Thanks! And what was the weather like?", [], [])
    assert answer.startswith(NOTICE_PREFIX)
    assert "only analyse the images" in first_sentence(answer)
    assert "No message of this request has an image, so there is nothing to analyse." in answer
    assert paragraphs(answer) == 3 and answer.endswith(HINT)


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
    assert "- Text: none found by local OCR" in answer
    assert "- Colours: blue 100%" in answer


def test_description_lists_facts_and_limits(astronaut_png: bytes, shopping_note: bytes):
    answer = ask("What is in these pictures?", astronaut_png, shopping_note)
    assert "**Image 1**: 512×512 px, square, PNG\n- Colours: " in answer
    assert "- Faces: 1 detected, at the top" in answer
    assert "**Image 2**: 900×300 px, landscape, PNG\n- Colours: white" in answer
    assert "- Faces: none detected" in answer
    assert "- Text: 3 lines:\n```text\nShopping list\nMilk 2 litres\nApples and pears\n```" in answer
    assert "cannot recognise objects" in answer
    assert answer.endswith("\n\n" + HINT)


def test_description_quotes_only_the_first_lines():
    page = note([f"Line number {i}" for i in range(1, 6)], size=(700, 400))
    answer = ask("Describe it.", page)
    assert "- Text: 5 lines, the first 3:\n```text\nLine number 1\nLine number 2\nLine number 3\n```" in answer
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
    answer = ask("What changed between these images?", astronaut_png, shopping_note, astronaut_jpeg)
    assert "Image 1 and Image 2 are different pictures" in answer
    assert "Image 2 and Image 3 are different pictures" in answer
    assert re.search(r"Near-identical: Image 1 and Image 3 \(hash distance \d+ of 64 bits\)\.", answer)


def test_compare_with_one_image_explains_why_not(astronaut_png: bytes):
    answer = ask("Compare this with the original.", astronaut_png)
    assert "Comparing needs at least two images; there is 1." in answer
    assert "512×512 px" in answer


# --- Chinese questions -------------------------------------------------------------------------------------

def test_chinese_questions_pick_the_right_intent(astronaut_png: bytes, shopping_note: bytes):
    describe = ask("介绍下这幅图?", astronaut_png)
    assert describe.startswith(NOTICE)
    assert "answers in English only" in describe
    assert "- Faces: 1 detected" in describe

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


# --- issue 13: answers worth reading ---------------------------------------------------------------------------

def test_the_how_to_get_real_answers_hint_is_one_short_line_at_the_end(astronaut_png: bytes, shopping_note: bytes):
    answers = [compose("Hello?", [], []), ask("Describe this image.", astronaut_png),
               ask("Transcribe this note.", shopping_note), ask("What is different?", astronaut_png, shopping_note),
               compose("What colours were in it?", [analyze(astronaut_png)], [astronaut_png], Context(earlier=True))]
    for answer in answers:
        assert answer.endswith("\n\n" + HINT)
        assert answer.count(HINT) == 1 and answer.count("00_setup") == 1
    assert len(HINT) < 100 and "\n" not in HINT


def test_describe_questions_get_the_aspects_they_ask_about(astronaut_png: bytes):
    colours = ask("What colours are in this picture?", astronaut_png)
    faces = ask("How many people are in this photo?", astronaut_png)
    size = ask("How big is this image, in pixels?", astronaut_png)
    layout = ask("Where is everything placed in this image?", astronaut_png)
    general = ask("Describe this image.", astronaut_png)
    assert len({colours, faces, size, layout, general}) == 5          # the answer follows the question
    assert "- Colours: " in colours and "- Faces" not in colours and "- Text" not in colours
    assert "- Faces: 1 detected, at the top" in faces and "- Colours" not in faces
    assert faces.count("1 image in this message; 1 face detected in all.") == 1
    assert "- Size: 0.26 megapixels, aspect ratio 1:1" in size and "- Colours" not in size
    assert "- Layout: top light grey" in layout and "- Colours" not in layout
    for bullet in ("- Colours: ", "- Layout: ", "- Faces: ", "- Text: none found"):   # a summary of everything
        assert bullet in general
    # Each bullet has one wording, whichever question asked for it.
    colour_line = next(line for line in colours.splitlines() if line.startswith("- Colours: "))
    assert colour_line in general


def test_a_question_only_a_model_can_answer_says_so_and_gives_what_was_found(astronaut_png: bytes):
    answer = ask("Why is she smiling, and what is she doing?", astronaut_png)
    assert answer.split("\n\n")[1] == "That needs a vision model to answer; here is what local analysis found."
    assert "- Faces: 1 detected" in answer


def test_a_text_only_follow_up_is_answered_from_the_earlier_image(shopping_note: bytes):
    report = analyze(shopping_note)
    answer = compose("What colours does it have?", [report], [shopping_note], Context(earlier=True))
    assert answer.startswith(NOTICE_PREFIX + ", and this message has no image, so this answer comes from local "
                             "analysis (OCR, face detection, colours) of the image earlier in this conversation.")
    assert "this message has none" not in answer and "- Colours: white" in answer
    transcript = compose("And what does the note say?", [report], [shopping_note], Context(earlier=True))
    assert "```text\nShopping list\nMilk 2 litres\nApples and pears\n```" in transcript


def test_follow_ups_in_a_conversation_are_answered_not_refused(offline, tmp_path: Path):
    # The path a learner takes (lesson 09): Conversation sends the whole history with every turn.
    from helpers import Conversation

    photo = tmp_path / "coffee.jpg"
    photo.write_bytes((Path(__file__).resolve().parents[1] / "images" / "coffee.jpg").read_bytes())
    chat = Conversation()
    first = chat.ask("What is in this photo?", images=[photo])
    colours = chat.ask("What colour is the cup?")
    hot = chat.ask("Is the drink hot or cold?")
    assert "earlier in this conversation" not in first
    for reply in (colours, hot):
        assert "earlier in this conversation" in first_sentence(reply) or "earlier in this conversation" in reply
        assert "this message has none" not in reply
    assert "- Colours: brown" in colours and "which object has which" in colours
    assert "That needs a vision model to answer" in hot and "- Faces: none detected" in hot
    assert chat.ask("What colour is the cup?") == colours            # deterministic, history and all


# --- video frames ----------------------------------------------------------------------------------------------

def card(text: str, background: tuple[int, int, int] = (20, 30, 90)) -> bytes:
    img = Image.new("RGB", (512, 512), background)
    ImageDraw.Draw(img).text((40, 230), text, fill="white", font=ImageFont.truetype(FONT, 40))
    return encode(img)


@pytest.fixture(scope="module")
def clip() -> list[bytes]:
    """Five frames: the astronaut (a dot moves a little), a title card, the coffee photo twice."""
    frames = []
    for step in range(2):
        frame = _course_photo("astronaut.jpg")
        ImageDraw.Draw(frame).ellipse((40 + step * 12, 440, 70 + step * 12, 470), fill=(255, 255, 0))
        frames.append(encode(frame))
    frames.append(card("Chapter two: coffee"))
    coffee = _course_photo("coffee.jpg")
    frames += [encode(coffee), encode(coffee, "JPEG")]
    return frames


TIMES = ("00:01.0", "00:02.0", "00:04.0", "00:06.0", "00:07.5")


def test_video_frames_are_summarised_as_scenes_with_timestamps(clip: list[bytes]):
    reports = [analyze(frame) for frame in clip]
    answer = compose("Describe what changes between consecutive frames.", reports, clip, Context(TIMES))
    assert "**5 frames (00:01.0 to 00:07.5): 3 scenes, cuts at 00:04.0 and 00:06.0.**" in answer
    assert "- **00:01.0–00:02.0** (2 near-identical frames): " in answer
    assert "- **00:04.0**: navy" in answer and "text “Chapter two: coffee”" in answer
    assert "- **00:06.0–00:07.5** (2 near-identical frames): brown" in answer
    assert "perceptual-hash distance" not in answer                 # not the pair-by-pair wall of text
    assert compose("Describe what changes between consecutive frames.", reports, clip, Context(TIMES)) == answer


def test_video_frames_without_timestamps_are_numbered(clip: list[bytes]):
    answer = ask("What happens in this video?", *clip)
    assert "**5 frames (no timestamps given, so frames are numbered): 3 scenes, cuts at frame 3 and frame 4.**" \
        in answer
    assert "- **frames 1–2** (2 near-identical frames)" in answer


def test_video_frames_quote_only_readable_text(clip: list[bytes]):
    reports = [analyze(frame) for frame in clip]
    box = ((40.0, 230.0), (400.0, 230.0), (400.0, 270.0), (40.0, 270.0))
    blurred = dataclasses.replace(reports[2], lines=(OcrLine("Chqpter twc: cofee", box, 0.41),))
    answer = compose("What happens in these frames?", [*reports[:2], blurred, *reports[3:]], clip, Context(TIMES))
    assert "Chqpter" not in answer and "- **00:04.0**: navy; no readable text" in answer
    assert "at least 80% confident" in answer


def test_video_frames_sent_by_frames_to_parts_get_their_timestamps(offline, clip: list[bytes]):
    from helpers.chat import complete
    from helpers.images import image_part

    content: list[dict] = [{"type": "text", "text": "Describe what changes between consecutive frames."}]
    for when, frame in zip(TIMES, clip, strict=True):
        content += [{"type": "text", "text": f"Frame at {when}"}, image_part(frame)]
    reply = complete([{"role": "user", "content": content}], max_tokens=2000).reply
    assert "3 scenes, cuts at 00:04.0 and 00:06.0" in reply
    transcript = complete([{"role": "user", "content": [
        {"type": "text", "text": "Transcribe the text in each frame."}, *content[5:7]]}], max_tokens=2000).reply
    assert "Text in **Image 1 (00:04.0)**, read by local OCR" in transcript


def test_an_answer_is_assembled_in_one_place_so_a_note_can_be_added(astronaut_png: bytes):
    answer = build("Describe this image.", [analyze(astronaut_png)], [astronaut_png])
    answer.notes.append("A note another module adds.")
    text = answer.render()
    assert text.split("\n\n")[0] == f"{NOTICE} A note another module adds."
    assert text.endswith("\n\n" + HINT) and text.count("A note another module adds.") == 1
