"""The sample images in images/: listed with their licence, readable, and what each lesson needs.

The files are made by scripts/make_images.py (and the video by scripts/make_video.py); these tests check
the committed files, so they need neither the fonts nor the authoring-only packages.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageChops, ImageOps

IMAGES = Path(__file__).resolve().parent.parent / "images"
CREDITS = IMAGES / "CREDITS.md"
IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".gif", ".webp", ".bmp", ".tif", ".tiff", ".heic", ".avif"}
# Rows of the credits table start with the file name in backticks: | `name.ext` | ...
_ROW = re.compile(r"^\|\s*`([^`/]+)`\s*\|(.*)\|\s*$")


def credited() -> dict[str, list[str]]:
    rows: dict[str, list[str]] = {}
    for line in CREDITS.read_text(encoding="utf-8").splitlines():
        m = _ROW.match(line)
        if m:
            rows[m.group(1)] = [cell.strip() for cell in m.group(2).split("|")]
    return rows


def image_files() -> list[Path]:
    return sorted(p for p in IMAGES.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def test_credits_table_has_rows_with_source_and_licence():
    rows = credited()
    assert len(rows) >= 10
    for name, cells in rows.items():
        assert len(cells) == 4, f"{name}: expected what / source / licence / notes columns, got {cells}"
        what, source, licence, _notes = cells
        assert what and source and licence, f"{name}: empty 'what', 'source' or 'licence' cell"


def test_every_credited_file_exists():
    missing = [name for name in credited() if not (IMAGES / name).is_file()]
    assert not missing, f"listed in CREDITS.md but not in images/: {missing}"


def test_every_image_file_is_credited():
    rows = credited()
    unlisted = [p.name for p in image_files() if p.name not in rows]
    assert not unlisted, f"in images/ but not listed in CREDITS.md: {unlisted}"


@pytest.mark.parametrize("path", image_files(), ids=lambda p: p.name)
def test_image_opens_and_decodes(path: Path):
    with Image.open(path) as im:
        im.load()
        assert im.width >= 100 and im.height >= 100
        assert im.format in {"JPEG", "PNG"}
        assert path.suffix.lower() == {"JPEG": ".jpg", "PNG": ".png"}[im.format], "suffix matches content"


def test_images_folder_is_small():
    total = sum(p.stat().st_size for p in IMAGES.iterdir() if p.is_file())
    assert total < 6.5 * 1024 * 1024, f"images/ is {total / 1e6:.1f} MB"


# --- the EXIF / privacy lesson -------------------------------------------------------------------


def test_exif_photo_has_orientation_6_and_is_stored_sideways():
    with Image.open(IMAGES / "exif_gps_photo.jpg") as im:
        exif = im.getexif()
        assert exif.get(ExifTags.Base.Orientation) == 6
        stored = im.size
        upright = ImageOps.exif_transpose(im)
    assert stored[0] < stored[1], "pixels are stored portrait (sideways)"
    assert upright.size == (stored[1], stored[0]), "an EXIF-aware viewer shows it landscape"


def test_exif_photo_has_gps_camera_and_date():
    with Image.open(IMAGES / "exif_gps_photo.jpg") as im:
        exif = im.getexif()
    assert exif.get(ExifTags.Base.Make) and exif.get(ExifTags.Base.Model)
    assert ExifTags.IFD.GPSInfo in exif, "GPS IFD pointer (0x8825)"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)

    def degrees(dms) -> float:
        d, m, s = (float(x) for x in dms)
        return d + m / 60 + s / 3600

    lat = degrees(gps[ExifTags.GPS.GPSLatitude]) * (1 if gps[ExifTags.GPS.GPSLatitudeRef] == "N" else -1)
    lon = degrees(gps[ExifTags.GPS.GPSLongitude]) * (1 if gps[ExifTags.GPS.GPSLongitudeRef] == "E" else -1)
    assert lat == pytest.approx(48.8584, abs=1e-3) and lon == pytest.approx(2.2945, abs=1e-3)
    original = exif.get_ifd(ExifTags.IFD.Exif).get(ExifTags.Base.DateTimeOriginal)
    assert re.fullmatch(r"\d{4}:\d\d:\d\d \d\d:\d\d:\d\d", original or "")


def test_plain_photos_carry_no_exif():
    for name in ("astronaut.jpg", "cat.jpg", "coffee.jpg", "rocket.jpg", "landscape_summer_palace.jpg"):
        with Image.open(IMAGES / name) as im:
            assert not im.getexif(), f"{name} should have no metadata"


# --- handwriting transcripts ---------------------------------------------------------------------


def _is_cjk(ch: str) -> bool:
    return "\u4e00" <= ch <= "\u9fff" or "\u3400" <= ch <= "\u4dbf"


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_handwriting_transcript(lang: str):
    image = IMAGES / f"handwriting_{lang}.jpg"
    raw = (IMAGES / f"handwriting_{lang}.txt").read_bytes()
    text = raw.decode("utf-8")  # strict: must be valid UTF-8
    assert not text.startswith("\ufeff"), "no byte-order mark"
    lines = [line for line in text.splitlines() if line.strip()]
    assert 8 <= len(lines) <= 14
    assert all(unicodedata.is_normalized("NFC", line) for line in lines)
    with Image.open(image) as im:
        assert max(im.size) >= 1200 and min(im.size) >= 900
    cjk = sum(_is_cjk(ch) for ch in text)
    if lang == "zh":
        assert cjk >= 50
    else:
        assert cjk == 0 and "LoRA" in text


# --- chart ---------------------------------------------------------------------------------------


def test_gdp_chart_data_cites_its_source_and_matches_the_chart():
    text = (IMAGES / "gdp_chart_data.csv").read_text(encoding="utf-8")
    header = [line for line in text.splitlines() if line.startswith("#")]
    assert any("gapminder" in line.lower() for line in header)
    rows = [line.split(",") for line in text.splitlines() if line and not line.startswith("#")]
    assert rows[0] == ["country", "year", "population", "gdp_per_capita", "gdp_trillion_intl_dollars"]
    countries = {r[0] for r in rows[1:]}
    assert countries == {"United States", "China", "Japan", "Germany"}
    for country, _year, pop, per, gdp in rows[1:]:
        assert float(gdp) == pytest.approx(int(pop) * float(per) / 1e12, rel=1e-3), country
    with Image.open(IMAGES / "gdp_chart.png") as im:
        assert im.width >= 800


# --- spot the difference -------------------------------------------------------------------------


def test_spot_difference_pair_differs_a_little():
    with Image.open(IMAGES / "spot_difference_a.png") as a, Image.open(IMAGES / "spot_difference_b.png") as b:
        assert a.size == b.size
        diff = np.asarray(ImageChops.difference(a.convert("RGB"), b.convert("RGB"))).max(axis=2)
    changed = float((diff > 0).mean())
    assert 0 < changed < 0.05, f"{changed:.2%} of pixels differ"


def test_spot_difference_answer_key_lists_the_changes():
    key = (IMAGES / "spot_difference.txt").read_text(encoding="utf-8")
    items = re.findall(r"^\d+\. ", key, flags=re.MULTILINE)
    assert len(items) >= 3
