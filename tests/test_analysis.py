"""helpers.offline.analysis: faces, colours, orientation, hashes, differences and the content-hash cache."""

from __future__ import annotations

import dataclasses
import io
import threading
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib import font_manager  # noqa: E402
from PIL import Image, ImageDraw, ImageFont  # noqa: E402

from helpers.errors import UnsupportedImageError  # noqa: E402
from helpers.offline import analysis  # noqa: E402
from helpers.offline.analysis import (  # noqa: E402
    ImageReport,
    analyze,
    cache_info,
    changed_regions,
    clear_cache,
    difference,
    near_duplicates,
)
from helpers.offline.colours import PALETTE  # noqa: E402


def _course_photo(name: str) -> Image.Image:
    """A public-domain / CC0 photo shipped in images/ (the same pictures scikit-image ships), as RGB."""
    with Image.open(Path(__file__).resolve().parents[1] / "images" / name) as img:
        return img.convert("RGB")

IMAGES = Path(__file__).resolve().parents[1] / "images"
FONT = font_manager.findfont(font_manager.FontProperties(family="DejaVu Sans"), fallback_to_default=True)


def encode(img: Image.Image, fmt: str = "PNG", **options) -> bytes:
    buffer = io.BytesIO()
    img.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def astronaut() -> Image.Image:
    return _course_photo("astronaut.jpg")


@pytest.fixture(scope="module")
def coffee() -> Image.Image:
    return _course_photo("coffee.jpg")


def chart_png() -> bytes:
    fig, ax = plt.subplots(figsize=(6.4, 4.8), dpi=100)
    ax.bar(["north", "south", "east", "west"], [3, 5, 2, 7], color="tab:blue")
    ax.plot([0, 1, 2, 3], [1, 4, 2, 6], "r-o")
    ax.set_title("Quarterly sales")
    ax.set_ylabel("units")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()


def text_page(lines: list[str], size: tuple[int, int] = (900, 400)) -> Image.Image:
    img = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 34)
    for i, line in enumerate(lines):
        draw.text((30, 30 + i * 60), line, fill="black", font=font)
    return img


# --- one image -------------------------------------------------------------------------------------------

def test_astronaut_photo_has_one_face(astronaut: Image.Image):
    report = analyze(encode(astronaut))
    assert isinstance(report, ImageReport)
    assert (report.width, report.height, report.orientation, report.mime_type) == (512, 512, "square", "image/png")
    assert len(report.faces) == 1
    x, y, w, h = report.faces[0]
    # Eileen Collins' face: roughly x 170-280, y 60-170 in the 512x512 sample.
    assert 150 <= x <= 200 and 40 <= y <= 100 and 70 <= w <= 130


def test_chart_and_text_have_no_faces_but_text():
    chart = analyze(chart_png())
    assert chart.faces == ()
    assert "Quarterly sales" in chart.text()
    page = analyze(encode(text_page(["Meeting notes, Monday", "Budget approved: 12,400", "Next review in May"])))
    assert page.faces == ()
    assert page.text().splitlines() == ["Meeting notes, Monday", "Budget approved: 12,400", "Next review in May"]


def test_colours_of_plain_images():
    red = analyze(encode(Image.new("RGB", (200, 100), (230, 20, 30))))
    assert red.colours == (("red", 1.0),)
    assert red.orientation == "landscape"
    blue = analyze(encode(Image.new("RGB", (100, 200), (20, 60, 220))))
    assert blue.colours == (("blue", 1.0),)
    assert blue.orientation == "portrait"
    half = Image.new("RGB", (200, 200), "white")
    half.paste((0, 160, 0), (0, 0, 200, 100))
    assert analyze(encode(half)).colours == (("green", 0.5), ("white", 0.5))


def test_colour_names_of_a_photo_are_plain_words(coffee: Image.Image):
    names = [name for name, _ in analyze(encode(coffee)).colours]
    assert names and set(names) <= {name for name, _ in PALETTE}
    assert names[0] == "brown"                     # coffee, a wooden table: brown first, as a person would say
    shares = [share for _, share in analyze(encode(coffee)).colours]
    assert shares == sorted(shares, reverse=True) and sum(shares) <= 1.01


def test_exif_orientation_is_applied():
    img = Image.new("RGB", (300, 100), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    report = analyze(encode(img, "JPEG", exif=exif))
    assert (report.width, report.height, report.orientation, report.mime_type) == (100, 300, "portrait", "image/jpeg")


def test_undecodable_bytes_raise_a_course_error():
    with pytest.raises(UnsupportedImageError, match="What to do"):
        analyze(b"\x89PNG\r\n\x1a\n but truncated")


# --- cache ----------------------------------------------------------------------------------------------

def test_cache_returns_the_same_report(coffee: Image.Image):
    clear_cache()
    data = encode(coffee)
    first = analyze(data)
    assert analyze(data) is first
    info = cache_info()
    assert (info["misses"], info["hits"], info["size"]) == (1, 1, 1)


def test_concurrent_requests_for_one_image_compute_once(monkeypatch: pytest.MonkeyPatch):
    clear_cache()
    calls: list[str] = []
    real_compute = analysis._compute

    def counting_compute(rgb, key: str, mime: str) -> ImageReport:
        calls.append(key)
        return real_compute(rgb, key, mime)

    monkeypatch.setattr(analysis, "_compute", counting_compute)
    data = encode(text_page(["Shared image"], size=(500, 120)))
    results: list[ImageReport] = []
    threads = [threading.Thread(target=lambda: results.append(analyze(data))) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(calls) == 1
    assert len(results) == 4 and all(result is results[0] for result in results)


def test_cache_drops_least_recently_used(monkeypatch: pytest.MonkeyPatch):
    clear_cache()
    monkeypatch.setattr(analysis, "CACHE_SIZE", 2)
    images = [encode(Image.new("RGB", (40, 40), colour)) for colour in ("red", "green", "blue")]
    analyze(images[0])
    analyze(images[1])
    analyze(images[0])      # red is now the most recently used
    analyze(images[2])      # evicts green
    assert cache_info()["size"] == 2
    analyze(images[0])
    assert cache_info()["misses"] == 3
    analyze(images[1])
    assert cache_info()["misses"] == 4


# --- comparing ------------------------------------------------------------------------------------------

def test_identical_near_identical_and_different(astronaut: Image.Image, coffee: Image.Image):
    png = encode(astronaut)
    jpeg = encode(astronaut, "JPEG", quality=90)
    other = encode(coffee)
    a, b, c = analyze(png), analyze(jpeg), analyze(other)

    same = difference(a, a, png, png)
    assert same.startswith("The first image and the second image are identical")

    reencoded = difference(a, b, png, jpeg, labels=("Image 1", "Image 2"))
    assert reencoded.startswith("Image 1 and Image 2 are near-identical")
    assert "pixels match" in reencoded

    unrelated = difference(a, c, png, other)
    assert "different pictures" in unrelated
    assert "512×512 px" in unrelated and "600×400 px" in unrelated

    assert near_duplicates([a, b, c]) == [(0, 1, analysis.hash_distance(a, b))]


def test_difference_locates_a_changed_patch(astronaut: Image.Image):
    original = encode(astronaut)
    edited_img = astronaut.copy()
    ImageDraw.Draw(edited_img).rectangle((20, 20, 120, 120), fill=(0, 220, 0))  # top-left, ~4% of the area
    edited = encode(edited_img)

    share, regions = changed_regions(original, edited)
    assert len(regions) == 1
    where, area, box = regions[0]
    assert where == "top-left"
    assert 0.03 <= area <= 0.06 and 0.02 <= share <= 0.06
    assert box[0] < 0.06 and box[1] < 0.06 and 0.2 < box[2] < 0.27

    text = difference(analyze(original), analyze(edited), original, edited, labels=("Image 1", "Image 2"))
    assert "near-identical" in text
    assert "1 region: top-left (a box covering about 4% of the image)" in text


def test_difference_names_added_and_removed_words():
    before = encode(text_page(["Order 1182 shipped", "Arrives Tuesday"]))
    after = encode(text_page(["Order 1182 delayed", "Arrives Thursday"]))
    text = difference(analyze(before), analyze(after), before, after, labels=("Image 1", "Image 2"))
    assert "Text only in Image 1: “shipped”, “Tuesday”." in text
    assert "Text only in Image 2: “delayed”, “Thursday”." in text


def test_difference_of_resized_copy_reports_sizes(astronaut: Image.Image):
    big, small = encode(astronaut), encode(astronaut.resize((256, 256)))
    text = difference(analyze(big), analyze(small), big, small)
    assert "near-identical" in text
    assert "512×512 px" in text and "256×256 px" in text


def test_spot_the_difference_pair_finds_all_four_changes():
    # images/spot_difference.txt lists 4 changes: the sign text, a missing apple, the door colour, a bird.
    a_bytes = (IMAGES / "spot_difference_a.png").read_bytes()
    b_bytes = (IMAGES / "spot_difference_b.png").read_bytes()
    share, regions = changed_regions(a_bytes, b_bytes)
    assert len(regions) == 4 and share < 0.05
    assert {where for where, _, _ in regions} == {"bottom-left", "left", "top-left", "right"}
    text = difference(analyze(a_bytes), analyze(b_bytes), a_bytes, b_bytes, labels=("Image 1", "Image 2"))
    assert "Text only in Image 1: “OPEN”. Text only in Image 2: “CLOSED”." in text


def test_reencoded_copy_reports_no_text_changes():
    page = text_page(["United States", "Quarterly report"])
    png, jpeg = encode(page), encode(page, "JPEG", quality=60)
    a = analyze(png)
    # Suppose OCR read the JPEG copy a little differently (it does, on busier pages): that is noise.
    misread = tuple(dataclasses.replace(line, text=line.text.replace(" ", "").replace("o", "0")) for line in a.lines)
    b = dataclasses.replace(analyze(jpeg), lines=misread)
    assert b.text() != a.text()
    text = difference(a, b, png, jpeg)
    assert "pixels match" in text
    assert "Text only" not in text
