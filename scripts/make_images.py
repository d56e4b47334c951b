#!/usr/bin/env python
"""Regenerate the course's sample images in ``images/``.

The images are committed, so learners never run this script. It exists so that anyone can see how every
sample image was made and make it again, byte for byte where the libraries allow (every random choice
uses a fixed seed).

Run from the repository root::

    python scripts/make_images.py            # writes images/*
    python scripts/make_images.py --check    # also runs local OCR on the handwriting pages and the label (CER)
    python scripts/make_images.py --only label   # just one group of images

Authoring-only requirements (NOT in requirements.txt; the course itself does not need them):

* Debian font packages (``apt-get install``):
  - ``fonts-dkg-handwriting`` - "dkg handwriting" (English notes page), GPL-3+ (font source: OFL-1.1)
  - ``fonts-lxgw-wenkai``     - "LXGW WenKai" (Chinese notes page, a handwriting-like KaiTi), OFL-1.1
  DejaVu Sans, bundled with matplotlib, is used for the chart and the spot-the-difference sign.
* pip packages, each for the data it ships inside its wheel:
  - ``plotly``        - ``plotly/package_data/datasets/gapminder.csv.gz`` (Gapminder excerpt, chart data)
  - ``scikit-learn``  - ``sklearn/datasets/images/china.jpg`` (landscape photo, CC BY 2.0)
  Neither is imported: the data files are located with ``importlib.util.find_spec``.
* Already course dependencies: Pillow, numpy, matplotlib, scikit-image (its ``skimage/data`` photos),
  and, for ``--check`` only, rapidocr (with onnxruntime) and rapidfuzz.

Sources and licences of every output file: ``images/CREDITS.md``.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import importlib.util
import io
import re
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageDraw, ImageFilter, ImageFont, ImageOps

ROOT = Path(__file__).resolve().parent.parent
IMAGES = ROOT / "images"
JPEG_QUALITY = 88

FONT_EN = Path("/usr/share/fonts/truetype/fifthhorseman/dkg.ttf")  # fonts-dkg-handwriting
FONT_ZH = Path("/usr/share/fonts/truetype/lxgw-wenkai/LXGWWenKai-Regular.ttf")  # fonts-lxgw-wenkai


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def package_dir(name: str) -> Path:
    """Directory of an installed package, found without importing it."""
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        sys.exit(f"make_images.py needs the '{name}' package for its bundled data: pip install {name}")
    return Path(next(iter(spec.submodule_search_locations)))


def require_font(path: Path, package: str) -> Path:
    if not path.exists():
        sys.exit(f"missing font {path}: apt-get install {package}")
    return path


def dejavu_sans(bold: bool = False) -> Path:
    import matplotlib

    name = "DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf"
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / name


def save_jpeg(img: Image.Image, path: Path, exif: Image.Exif | None = None) -> None:
    kwargs = {"quality": JPEG_QUALITY, "optimize": True}
    if exif is not None:
        kwargs["exif"] = exif.tobytes()
    rgb = img.convert("RGB")
    rgb.info.pop("comment", None)  # source JPEGs carry encoder comments; the course's photos carry no metadata
    rgb.save(path, "JPEG", **kwargs)
    print(f"wrote {path.relative_to(ROOT)}  {img.size[0]}x{img.size[1]}  {path.stat().st_size:,} bytes")


def save_png(img: Image.Image, path: Path) -> None:
    img.save(path, "PNG", optimize=True)
    print(f"wrote {path.relative_to(ROOT)}  {img.size[0]}x{img.size[1]}  {path.stat().st_size:,} bytes")


# --------------------------------------------------------------------------------------------------
# 1. real photographs (scikit-image and scikit-learn sample data)
# --------------------------------------------------------------------------------------------------
SKIMAGE_PHOTOS = {
    # output name: file in skimage/data
    "astronaut.jpg": "astronaut.png",
    "cat.jpg": "chelsea.png",
    "coffee.jpg": "coffee.png",
    "rocket.jpg": "rocket.jpg",
    "hubble_deep_field.jpg": "hubble_deep_field.jpg",
}


def make_photos() -> None:
    data = package_dir("skimage") / "data"
    for out, src in SKIMAGE_PHOTOS.items():
        with Image.open(data / src) as im:
            save_jpeg(im.convert("RGB"), IMAGES / out)
    # Landscape for the URL lesson: the Summer Palace, Beijing, shipped in scikit-learn's wheel.
    china = package_dir("sklearn") / "datasets" / "images" / "china.jpg"
    with Image.open(china) as im:
        save_jpeg(im.convert("RGB"), IMAGES / "landscape_summer_palace.jpg")


# --------------------------------------------------------------------------------------------------
# 2. handwritten study notes, photographed
# --------------------------------------------------------------------------------------------------
NOTES_EN = [
    "PEFT notes - fine-tuning LLMs cheaply",
    "Prompt Tuning (2021, Google)",
    "- learn soft prompt tokens, LLM frozen",
    "Prefix Tuning (2021, Stanford)",
    "- trainable prefix vectors in every layer",
    "Adapter (2019, Google)",
    "- small bottleneck layers in each block",
    "LoRA: W' = W + BA",
    "- A, B low rank, r << d, W stays frozen",
    "QLoRA: 4-bit base model + LoRA",
    "- 65B model on a single 48GB GPU",
    "P-Tuning v1 / v2 (2021, Tsinghua)",
]

NOTES_ZH = [
    "大模型高效微调笔记",
    "1. 全量微调：更新所有参数，成本高",
    "2. Adapter（2019，Google）：插入小模块",
    "3. Prefix Tuning：每层加可训练前缀",
    "4. Prompt Tuning：只学习软提示向量",
    "5. LoRA：W' = W + BA，低秩分解",
    "   A、B 是小矩阵，原权重 W 冻结",
    "6. QLoRA：4比特量化 + LoRA",
    "   一张48GB显卡能微调65B模型",
    "总结：参数少，效果接近全量微调",
]


def _lined_paper(width: int, height: int, first_line: int, gap: int, margin_x: int, rng) -> Image.Image:
    """Cream paper with pale blue rules and a red margin, plus faint fibre texture."""
    base = np.empty((height, width, 3), np.float32)
    base[:] = (247, 244, 234)
    # low-frequency blotches + fine grain
    low = rng.normal(0, 1, (height // 40 + 2, width // 40 + 2)).astype(np.float32)
    low_img = Image.fromarray(low).resize((width, height), Image.BICUBIC)
    base += np.asarray(low_img)[..., None] * 2.5
    base += rng.normal(0, 2.0, (height, width, 1)).astype(np.float32)
    paper = Image.fromarray(np.clip(base, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(paper)
    y = first_line
    while y < height - gap // 2:
        draw.line([(0, y), (width, y)], fill=(150, 180, 215), width=2)
        y += gap
    draw.line([(margin_x, 0), (margin_x, height)], fill=(222, 120, 120), width=2)
    return paper


def _ink_mask(
    lines,
    font_path: Path,
    size: float,
    width: int,
    height: int,
    first_line: int,
    gap: int,
    left: int,
    rng,
    wobble: float,
    warp: float = 0.0,
) -> Image.Image:
    """Coverage mask (L) of the text, drawn glyph by glyph with hand-like jitter.

    Each glyph gets its own small size change, rotation and baseline offset; each line its own slope and
    start. Drawn at 2x and reduced, for smooth strokes.
    """
    s = 2
    mask = Image.new("L", (width * s, height * s), 0)
    fonts: dict[int, ImageFont.FreeTypeFont] = {}
    # Shrink the writing if the longest line (with the widest jitter) would run off the paper: the
    # transcript must match what is visible.
    probe = ImageFont.truetype(str(font_path), 100)
    per_px = max(probe.getlength(line) for line in lines) / 100 * 1.07 * (1 + 0.06 * wobble)
    size = min(size, (width - left - 60) / per_px)

    def font(px: float) -> ImageFont.FreeTypeFont:
        key = int(round(px * s))
        if key not in fonts:
            fonts[key] = ImageFont.truetype(str(font_path), key)
        return fonts[key]

    for i, line in enumerate(lines):
        baseline = first_line + i * gap - gap * 0.12
        x = left + rng.normal(0, 5)
        slope = rng.uniform(-0.010, 0.010)
        line_size = size * rng.uniform(0.96, 1.04)
        for ch in line:
            f = font(line_size * rng.uniform(1 - 0.06 * wobble, 1 + 0.06 * wobble))
            adv = f.getlength(ch) / s
            if ch.isspace():
                x += adv * rng.uniform(0.9, 1.25)
                continue
            # render the glyph on its own tile, anchored at its left baseline point
            asc, desc = f.getmetrics()
            pad = int(f.size * 0.4)
            tile = Image.new("L", (int(adv * s) + 2 * pad, asc + desc + 2 * pad), 0)
            ImageDraw.Draw(tile).text((pad, pad + asc), ch, font=f, fill=255, anchor="ls")
            angle = rng.normal(0, 2.2 * wobble)
            tile = tile.rotate(angle, resample=Image.BICUBIC, center=(pad, pad + asc))
            y = baseline + slope * (x - left) + rng.normal(0, 1.3 * wobble)
            ox, oy = int(round(x * s)) - pad, int(round(y * s)) - pad - asc
            region = (ox, oy, ox + tile.width, oy + tile.height)
            mask.paste(ImageChops.lighter(mask.crop(region), tile), region)
            x += adv * rng.uniform(0.97, 1.07)
    if warp:
        mask = _elastic(mask, rng, amplitude=warp * s, cell=14 * s)
    return mask.resize((width, height), Image.LANCZOS)


def _elastic(img: Image.Image, rng, amplitude: float, cell: int) -> Image.Image:
    """Warp strokes with a smooth random displacement field, so glyphs stop looking typeset."""
    from scipy.ndimage import map_coordinates

    w, h = img.size

    def field() -> np.ndarray:
        coarse = rng.normal(0, 1, (h // cell + 2, w // cell + 2)).astype(np.float32)
        return np.asarray(Image.fromarray(coarse).resize((w, h), Image.BICUBIC)) * amplitude

    dy, dx = field(), field()
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    arr = np.asarray(img).astype(np.float32)
    out = map_coordinates(arr, [yy + dy, xx + dx], order=1, mode="constant", cval=0)
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def _phone_photo(
    page: Image.Image,
    out_size: tuple[int, int],
    angle: float,
    rng,
    blur: float,
    light_from: tuple[float, float],
) -> Image.Image:
    """Lay the page on a desk, rotate it a little, light it unevenly, add sensor noise and blur."""
    w, h = out_size
    # desk: dark grey-brown with grain
    desk = np.empty((h, w, 3), np.float32)
    desk[:] = (92, 84, 76)
    desk += rng.normal(0, 6, (h, w, 1)).astype(np.float32)
    canvas = Image.fromarray(np.clip(desk, 0, 255).astype(np.uint8))
    rgba = page.convert("RGBA")
    rotated = rgba.rotate(angle, resample=Image.BICUBIC, expand=True)
    # soft shadow under the page
    shadow = Image.new("L", rotated.size, 0)
    shadow.paste(rotated.getchannel("A").point(lambda a: 110 if a > 0 else 0), (0, 0))
    shadow = shadow.filter(ImageFilter.GaussianBlur(12))
    px = (w - rotated.width) // 2
    py = (h - rotated.height) // 2
    canvas.paste((30, 26, 22), (px + 10, py + 14), shadow)
    canvas.paste(rotated, (px, py), rotated)

    arr = np.asarray(canvas).astype(np.float32)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    xn, yn = xx / w, yy / h
    # directional light (brighter near light_from) and a vignette, like a phone photo under a lamp
    lx, ly = light_from
    dist = np.sqrt((xn - lx) ** 2 + (yn - ly) ** 2)
    light = 1.06 - 0.30 * dist
    vignette = 1.0 - 0.22 * (((xn - 0.5) ** 2 + (yn - 0.5) ** 2) / 0.5)
    # a faint soft shadow of the phone/hand across one corner
    hand = 1.0 - 0.10 * np.clip(1.0 - np.sqrt((xn - 1.05) ** 2 + (yn - 1.1) ** 2) / 0.55, 0, 1)
    shade = (light * vignette * hand)[..., None]
    # warm white balance
    arr = arr * shade * np.array([1.02, 1.0, 0.95], np.float32)
    arr += rng.normal(0, 3.0, arr.shape).astype(np.float32)  # sensor noise
    out = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))
    return out.filter(ImageFilter.GaussianBlur(blur))


def make_handwriting_page(
    lines,
    font_path: Path,
    name: str,
    *,
    seed: int,
    out_size,
    page_size,
    font_size: float,
    gap: int,
    first_line: int,
    margin_x: int,
    angle: float,
    wobble: float,
    warp: float,
    blur: float,
    light_from,
) -> None:
    rng = np.random.default_rng(seed)
    pw, ph = page_size
    paper = _lined_paper(pw, ph, first_line, gap, margin_x, rng)
    mask = _ink_mask(lines, font_path, font_size, pw, ph, first_line, gap, margin_x + 22, rng, wobble, warp)
    # ballpoint ink: dark blue, with slowly varying pressure along the page
    pressure = rng.uniform(0.80, 1.0, (ph // 60 + 2, pw // 60 + 2)).astype(np.float32)
    pressure = np.asarray(Image.fromarray(pressure).resize((pw, ph), Image.BICUBIC))
    alpha = np.asarray(mask).astype(np.float32) / 255.0 * np.clip(pressure, 0.7, 1.0)
    ink = np.array([28, 38, 105], np.float32)
    paper_arr = np.asarray(paper).astype(np.float32)
    page = paper_arr * (1 - alpha[..., None]) + ink * alpha[..., None]
    photo = _phone_photo(Image.fromarray(page.astype(np.uint8)), out_size, angle, rng, blur, light_from)
    save_jpeg(photo, IMAGES / f"{name}.jpg")
    (IMAGES / f"{name}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print(f"wrote images/{name}.txt  {len(lines)} lines")


def make_handwriting() -> None:
    make_handwriting_page(
        NOTES_EN,
        require_font(FONT_EN, "fonts-dkg-handwriting"),
        "handwriting_en",
        seed=2024,
        out_size=(1200, 1600),
        page_size=(1060, 1440),
        font_size=50,
        gap=96,
        first_line=190,
        margin_x=90,
        angle=-2.6,
        wobble=1.0,
        warp=0.0,
        blur=1.1,
        light_from=(0.15, 0.05),
    )
    make_handwriting_page(
        NOTES_ZH,
        require_font(FONT_ZH, "fonts-lxgw-wenkai"),
        "handwriting_zh",
        seed=1949,
        out_size=(1600, 1200),
        page_size=(1460, 1060),
        font_size=64,
        gap=88,
        first_line=150,
        margin_x=90,
        angle=3.2,
        wobble=1.3,
        warp=2.5,
        blur=1.2,
        light_from=(0.85, 0.1),
    )


# --------------------------------------------------------------------------------------------------
# 3. GDP chart from the Gapminder excerpt bundled with plotly
# --------------------------------------------------------------------------------------------------
GDP_COUNTRIES = {  # name in the data: (label, colour)
    "United States": ("United States", "#1f77b4"),
    "China": ("China", "#d62728"),
    "Japan": ("Japan", "#9467bd"),
    "Germany": ("Germany", "#2ca02c"),
}
GDP_SOURCE = (
    "Source: Gapminder (gapminder.org/data), excerpt as in the R package 'gapminder' by Jennifer Bryan "
    "(CC0),\nshipped with plotly 'package_data/datasets/gapminder.csv.gz'. GDP = gdpPercap × pop; "
    "gdpPercap in international dollars, 2005 prices (PPP)."
)


def make_gdp_chart() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    src = package_dir("plotly") / "package_data" / "datasets" / "gapminder.csv.gz"
    with gzip.open(src, "rt", encoding="utf-8", newline="") as fh:
        rows = [r for r in csv.DictReader(fh) if r["country"] in GDP_COUNTRIES]
    series: dict[str, list[tuple[int, float, int, float]]] = {c: [] for c in GDP_COUNTRIES}
    for r in rows:
        pop, per = int(r["pop"]), float(r["gdpPercap"])
        series[r["country"]].append((int(r["year"]), per, pop, per * pop / 1e12))
    for v in series.values():
        v.sort()

    # the data plotted, with its source in a header comment
    buf = io.StringIO()
    buf.write("# GDP of the United States, China, Japan and Germany, 1952-2007 (every 5 years).\n")
    buf.write(
        "# Source: Gapminder (https://www.gapminder.org/data/), the excerpt published as the R package\n"
    )
    buf.write("# 'gapminder' by Jennifer Bryan (CC0), as shipped inside the plotly wheel:\n")
    buf.write("# plotly/package_data/datasets/gapminder.csv.gz (plotly is MIT-licensed).\n")
    buf.write("# gdp_per_capita is Gapminder's gdpPercap: GDP per person in international dollars at 2005\n")
    buf.write(
        "# prices (PPP, inflation-adjusted). gdp_trillion_intl_dollars = gdp_per_capita * population / 1e12.\n"
    )
    buf.write("# Made by scripts/make_images.py.\n")
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["country", "year", "population", "gdp_per_capita", "gdp_trillion_intl_dollars"])
    for country, pts in series.items():
        for year, per, pop, gdp in pts:
            w.writerow([country, year, pop, f"{per:.2f}", f"{gdp:.4f}"])
    (IMAGES / "gdp_chart_data.csv").write_text(buf.getvalue(), encoding="utf-8")
    print("wrote images/gdp_chart_data.csv")

    plt.rcParams.update({"font.family": "DejaVu Sans", "svg.hashsalt": "course"})
    fig, ax = plt.subplots(figsize=(10, 6.2), dpi=120)
    for country, (label, colour) in GDP_COUNTRIES.items():
        years = [p[0] for p in series[country]]
        gdp = [p[3] for p in series[country]]
        ax.plot(years, gdp, marker="o", markersize=5, linewidth=2.2, color=colour, label=label)
    ax.set_title("GDP of the United States, China, Japan and Germany, 1952–2007", fontsize=15, pad=12)
    ax.set_xlabel("Year")
    ax.set_ylabel("GDP (trillion international dollars, 2005 prices, PPP)")
    ax.set_xlim(1950, 2009)
    ax.set_ylim(0, None)
    ax.set_xticks(range(1952, 2008, 5))
    ax.grid(True, color="#dddddd", linewidth=0.8)
    ax.legend(title="Country", loc="upper left", frameon=True)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)
    fig.text(0.01, 0.012, GDP_SOURCE, fontsize=8, color="#555555", ha="left", va="bottom")
    fig.subplots_adjust(left=0.09, right=0.98, top=0.91, bottom=0.19)
    out = IMAGES / "gdp_chart.png"
    fig.savefig(out, dpi=120, metadata={"Software": None})
    plt.close(fig)
    print(f"wrote images/gdp_chart.png  {out.stat().st_size:,} bytes")


# --------------------------------------------------------------------------------------------------
# 4. a photo with EXIF orientation and GPS tags (privacy lesson)
# --------------------------------------------------------------------------------------------------
def _rational_dms(value: float) -> tuple[float, float, float]:
    value = abs(value)
    deg = int(value)
    minutes_full = (value - deg) * 60
    minutes = int(minutes_full)
    seconds = round((minutes_full - minutes) * 60, 2)
    return (float(deg), float(minutes), seconds)


EXIF_GPS = (48.858370, 2.294481)  # Eiffel Tower, Paris (a public landmark; the photo was not taken there)


def make_exif_photo() -> None:
    from PIL import ExifTags

    data = package_dir("skimage") / "data"
    with Image.open(data / "coffee.png") as im:
        upright = im.convert("RGB").crop((60, 0, 540, 400))  # 480x400, landscape as a viewer shows it
    # A phone held upright stores the sensor image sideways and says so with Orientation=6
    # ("rotate 90 degrees clockwise to display"). So store the pixels rotated counter-clockwise.
    stored = upright.transpose(Image.Transpose.ROTATE_90)  # 400x480 stored; shown as 480x400
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "ExamplePhone"
    exif[ExifTags.Base.Model] = "Course Camera 1"
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Software] = "scripts/make_images.py"
    exif[ExifTags.Base.DateTime] = "2024:05:12 09:41:07"
    exif_ifd = exif.get_ifd(ExifTags.IFD.Exif)
    exif_ifd[ExifTags.Base.DateTimeOriginal] = "2024:05:12 09:41:07"
    exif_ifd[ExifTags.Base.DateTimeDigitized] = "2024:05:12 09:41:07"
    exif_ifd[ExifTags.Base.OffsetTimeOriginal] = "+02:00"
    lat, lon = EXIF_GPS
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[ExifTags.GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
    gps[ExifTags.GPS.GPSLatitude] = _rational_dms(lat)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
    gps[ExifTags.GPS.GPSLongitude] = _rational_dms(lon)
    gps[ExifTags.GPS.GPSAltitudeRef] = b"\x00"
    gps[ExifTags.GPS.GPSAltitude] = 35.0
    gps[ExifTags.GPS.GPSDateStamp] = "2024:05:12"
    save_jpeg(stored, IMAGES / "exif_gps_photo.jpg", exif=exif)


# --------------------------------------------------------------------------------------------------
# 5. spot the difference
# --------------------------------------------------------------------------------------------------
SPOT_DIFFERENCE_KEY = """\
Spot the difference: images/spot_difference_a.png vs images/spot_difference_b.png
Both are 800x560 PNG drawings made by scripts/make_images.py. Everything else is identical.

Differences (b compared with a):
1. The sign on the shop says "OPEN" in a and "CLOSED" in b.
2. The apple on the tree at the right (upper right of the crown) is missing in b.
3. The front door of the house is red in a and blue in b.
4. A small bird sits on the roof ridge in b; there is no bird in a.
"""


def _scene(variant: str) -> Image.Image:
    s = 2  # draw at 2x, then reduce, for anti-aliased edges
    w, h = 800, 560
    img = Image.new("RGB", (w * s, h * s), (176, 216, 240))
    d = ImageDraw.Draw(img)

    def S(*v):
        return [round(x * s) for x in v]

    # sky gradient bands, sun, clouds
    for i in range(0, 330):
        t = i / 330
        d.line(S(0, i, w, i), fill=(int(150 + 60 * t), int(200 + 35 * t), int(240 + 10 * t)), width=s)
    d.ellipse(S(650, 40, 730, 120), fill=(255, 214, 80))
    for cx, cy in ((150, 80), (420, 60)):
        for dx, dy, r in ((0, 0, 28), (30, -12, 32), (62, 0, 26)):
            d.ellipse(S(cx + dx - r, cy + dy - r, cx + dx + r, cy + dy + r), fill=(250, 250, 252))
    # hills and grass
    d.ellipse(S(-200, 250, 500, 620), fill=(120, 180, 95))
    d.ellipse(S(350, 270, 1050, 640), fill=(105, 168, 85))
    d.rectangle(S(0, 400, w, h), fill=(110, 175, 90))
    # path
    d.polygon(S(330, h, 470, h, 420, 400, 380, 400), fill=(214, 190, 150))
    # house (shop)
    d.rectangle(S(110, 250, 330, 420), fill=(236, 222, 196), outline=(90, 70, 60), width=3 * s)
    d.polygon(S(95, 255, 220, 165, 345, 255), fill=(170, 70, 60), outline=(90, 40, 35))
    door = (200, 70, 60) if variant == "a" else (60, 100, 190)
    d.rectangle(S(195, 335, 245, 420), fill=door, outline=(70, 50, 40), width=2 * s)
    d.ellipse(S(233, 375, 240, 382), fill=(240, 210, 90))
    for x0 in (130, 270):
        d.rectangle(S(x0, 290, x0 + 45, 330), fill=(170, 210, 235), outline=(90, 70, 60), width=2 * s)
        d.line(S(x0 + 22, 290, x0 + 22, 330), fill=(90, 70, 60), width=2 * s)
    # sign board on the facade
    d.rectangle(S(155, 258, 285, 286), fill=(250, 246, 225), outline=(90, 70, 60), width=2 * s)
    word = "OPEN" if variant == "a" else "CLOSED"
    font = ImageFont.truetype(str(dejavu_sans(bold=True)), 20 * s)
    d.text(S(220, 272), word, font=font, fill=(40, 40, 40), anchor="mm")
    # bird on the roof ridge (b only)
    if variant == "b":
        d.ellipse(S(208, 148, 232, 166), fill=(60, 60, 70))
        d.ellipse(S(225, 143, 239, 156), fill=(60, 60, 70))
        d.polygon(S(239, 148, 247, 151, 239, 153), fill=(240, 170, 40))
        d.line(S(215, 166, 213, 172), fill=(240, 170, 40), width=s)
    # tree with apples
    d.rectangle(S(585, 300, 615, 430), fill=(120, 85, 55))
    for cx, cy, r in ((600, 250, 80), (545, 285, 55), (655, 285, 55), (600, 200, 55)):
        d.ellipse(S(cx - r, cy - r, cx + r, cy + r), fill=(60, 140, 60))
    apples = [(560, 260), (620, 230), (640, 300), (585, 310), (655, 222)]
    if variant == "b":
        apples.remove((655, 222))
    for ax, ay in apples:
        d.ellipse(S(ax - 10, ay - 10, ax + 10, ay + 10), fill=(215, 40, 40))
    # fence
    for x0 in range(20, 300, 34):
        d.rectangle(S(x0, 440, x0 + 12, 500), fill=(245, 245, 240), outline=(150, 150, 150))
    d.rectangle(S(10, 455, 310, 463), fill=(245, 245, 240), outline=(150, 150, 150))
    d.rectangle(S(10, 480, 310, 488), fill=(245, 245, 240), outline=(150, 150, 150))
    # flowers (deterministic positions)
    rng = np.random.default_rng(7)
    for _ in range(26):
        fx, fy = rng.integers(480, 790), rng.integers(450, 550)
        col = [(250, 220, 60), (240, 120, 170), (255, 255, 255)][int(rng.integers(0, 3))]
        d.ellipse(S(fx - 5, fy - 5, fx + 5, fy + 5), fill=col)
    return img.resize((w, h), Image.LANCZOS)


def make_spot_difference() -> None:
    save_png(_scene("a"), IMAGES / "spot_difference_a.png")
    save_png(_scene("b"), IMAGES / "spot_difference_b.png")
    (IMAGES / "spot_difference.txt").write_text(SPOT_DIFFERENCE_KEY, encoding="utf-8")
    print("wrote images/spot_difference.txt")


# --------------------------------------------------------------------------------------------------
# 6. a product label: big title, small print (what detail="low" loses, notebooks/04_detail_levels.ipynb)
# --------------------------------------------------------------------------------------------------
LABEL_SIZE = (1536, 1024)
LABEL_SMALL_PX = 13  # the fine print's font size in pixels; chosen with --check, see make_label()
LABEL_TITLE = "ALPINE OAT BAR"
LABEL_SUBTITLE = "Honey & Almond · 6 bars × 40 g"
LABEL_CLAIM = "Whole-grain oats · no palm oil · 182 kcal per bar"
LABEL_SMALL_PRINT = [
    "Ingredients: rolled oats (42%), honey (18%), almonds (12%), glucose syrup, sunflower oil, rice flour, sea salt, "
    "natural flavouring,",
    "antioxidant: vitamin E.",
    "Allergens: contains almonds and oats (gluten). Made in a factory that also handles peanuts and sesame.",
    "Nutrition per bar (40 g): energy 764 kJ / 182 kcal, fat 7.1 g (saturates 0.9 g), carbohydrate 24.6 g "
    "(sugars 9.4 g), fibre 3.2 g,",
    "protein 4.2 g, salt 0.12 g.",
    "Store in a cool, dry place. Once opened, eat within 3 days.",
    "Best before: 14 MAR 2027 · Lot: L2417B-06",
    "A sample label made for the GPT Vision Course by scripts/make_images.py. Not a real product: every name and "
    "number is invented.",
]


def make_label() -> None:
    """An invented product label: a title, a subtitle and a claim large enough to read at any size, and eight
    lines of small print (ingredients, allergens, nutrition, best-before date and lot number) that do not
    survive being shrunk to fit 512x512, the version a tile model such as gpt-4o sees with detail="low".

    The fine print's size was chosen by measurement (``--check`` prints it again): with local OCR
    (``helpers.ocr``) on Lanczos-resized copies, 13-px print on the 1536x1024 label reads with a character
    error rate of about 0.01 at gpt-4o's ``high`` size (1152x768) and about 0.8 at its ``low`` size
    (512x341); at 16 px even the low copy was read (CER 0.05), at 10 px even the high copy failed (0.13).
    Drawn with DejaVu Sans (bundled with matplotlib), saved as PNG: no randomness, byte-identical re-runs.
    """
    width, height = LABEL_SIZE
    cream, brown, ink = (250, 246, 232), (150, 60, 40), (40, 40, 40)
    img = Image.new("RGB", LABEL_SIZE, cream)
    d = ImageDraw.Draw(img)

    def font(bold: bool, px: int) -> ImageFont.FreeTypeFont:
        return ImageFont.truetype(str(dejavu_sans(bold=bold)), px)

    d.rectangle((24, 24, width - 25, height - 25), outline=brown, width=8)
    d.rectangle((24, 24, width - 25, 300), fill=brown)
    d.text((width // 2, 165), LABEL_TITLE, font=font(True, 128), fill=(255, 250, 235), anchor="mm")
    d.text((width // 2, 390), LABEL_SUBTITLE, font=font(False, 60), fill=(60, 40, 30), anchor="mm")
    d.text((width // 2, 500), LABEL_CLAIM, font=font(True, 40), fill=brown, anchor="mm")
    d.line((80, 590, width - 80, 590), fill=brown, width=3)
    small = font(False, LABEL_SMALL_PX)
    y = 640
    for line in LABEL_SMALL_PRINT:
        d.text((80, y), line, font=small, fill=ink)
        y += round(LABEL_SMALL_PX * 2.1)
    save_png(img, IMAGES / "product_label.png")
    truth = "\n".join([LABEL_TITLE, LABEL_SUBTITLE, LABEL_CLAIM, *LABEL_SMALL_PRINT]) + "\n"
    (IMAGES / "product_label.txt").write_text(truth, encoding="utf-8")
    print("wrote images/product_label.txt")


# --------------------------------------------------------------------------------------------------
# 7. a two-panel joke, for "what OCR cannot do" in notebooks/05
# --------------------------------------------------------------------------------------------------
MEME_CAPTIONS = ("THE PLAN: ship my vision app tonight", "3 A.M.: still fixing the base64")


def make_meme() -> None:
    """A two-panel "plan vs reality" joke built from two of the course's photos: the rocket on its launch pad at dusk under
    "THE PLAN: ship my vision app tonight", the espresso under "3 A.M.: still fixing the base64". The captions are
    large, so OCR reads them; the joke lives in the pictures (a launch for ambition, coffee for a late night), which
    is what the source notebook's meme showed a vision model explaining and what OCR cannot do. Made from
    ``images/rocket.jpg`` (public domain, SpaceX) and ``images/coffee.jpg`` (CC0), so run ``photos`` first; captions
    in DejaVu Sans Bold (bundled with matplotlib); no randomness.
    """
    panel_w, photo_h, caption_h, gap = 640, 427, 110, 16
    width, height = panel_w * 2 + gap * 3, caption_h + photo_h + gap * 2
    img = Image.new("RGB", (width, height), (255, 255, 255))
    d = ImageDraw.Draw(img)
    font = ImageFont.truetype(str(dejavu_sans(bold=True)), 30)
    for i, (photo, caption) in enumerate(zip(("rocket.jpg", "coffee.jpg"), MEME_CAPTIONS, strict=True)):
        x = gap + i * (panel_w + gap)
        with Image.open(IMAGES / photo) as source:
            picture = ImageOps.fit(source.convert("RGB"), (panel_w, photo_h), Image.Resampling.LANCZOS)
        img.paste(picture, (x, gap + caption_h))
        head, _, tail = caption.partition(": ")
        d.text((x + panel_w // 2, gap + 30), head + ":", font=font, fill=(0, 0, 0), anchor="mm")
        d.text((x + panel_w // 2, gap + 78), tail, font=font, fill=(0, 0, 0), anchor="mm")
        d.rectangle((x - 1, gap + caption_h - 1, x + panel_w, gap + caption_h + photo_h), outline=(0, 0, 0), width=2)
    save_jpeg(img, IMAGES / "meme_plan_vs_reality.jpg")


# --------------------------------------------------------------------------------------------------
# OCR check of the handwriting pages
# --------------------------------------------------------------------------------------------------
def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def cer(reference: str, hypothesis: str) -> float:
    from rapidfuzz.distance import Levenshtein

    ref, hyp = _norm(reference), _norm(hypothesis)
    return Levenshtein.distance(ref, hyp) / max(1, len(ref))


def check_ocr() -> None:
    """Print the CER of local OCR against each transcript: raw RapidOCR output scored with the simple
    CER above, and, when the course's ``helpers.ocr`` is importable, its own transcribe/CER pair."""
    from rapidocr import RapidOCR

    engine = RapidOCR(params={"Global.log_level": "critical"})
    sys.path.insert(0, str(ROOT))
    try:
        from helpers import ocr as course_ocr
    except Exception:  # pragma: no cover - the helpers may not be installed
        course_ocr = None
    for name in ("handwriting_en", "handwriting_zh"):
        path = IMAGES / f"{name}.jpg"
        hyp = "\n".join(engine(str(path)).txts or ())
        ref = (IMAGES / f"{name}.txt").read_text(encoding="utf-8")
        nospace = cer(ref.replace(" ", ""), hyp.replace(" ", ""))
        print(f"{name}: CER {cer(ref, hyp):.3f} (whitespace collapsed), {nospace:.3f} (spaces removed)")
        print("  RapidOCR:", hyp.replace("\n", " | "))
        if course_ocr is not None:
            text = course_ocr.transcribe(path)
            print(f"  helpers.ocr.character_error_rate: {course_ocr.character_error_rate(ref, text):.3f}")
    if course_ocr is not None:
        check_label(course_ocr)


def check_label(course_ocr) -> None:
    """OCR the product label at the sizes gpt-4o sees it with detail="low" and "high" (resized with Pillow's
    Lanczos filter) and at full size, and print the character error rates against its transcript."""
    from helpers.tokens import scaled_size

    truth = (IMAGES / "product_label.txt").read_text(encoding="utf-8")
    with Image.open(IMAGES / "product_label.png") as label:
        label = label.convert("RGB")
        sizes = {detail: scaled_size(*label.size, detail, "gpt-4o") for detail in ("low", "high")}
        sizes["full"] = label.size
        for name, size in sizes.items():
            copy = label if size == label.size else label.resize(size, Image.Resampling.LANCZOS)
            text = course_ocr.transcribe(copy)
            print(f"product_label ({name}, {size[0]}x{size[1]}): CER "
                  f"{course_ocr.character_error_rate(truth, text):.3f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="OCR the handwriting pages and the label and print the CER")
    parser.add_argument("--only", choices=["photos", "handwriting", "chart", "exif", "spot", "label", "meme"], nargs="*")
    args = parser.parse_args(argv)
    IMAGES.mkdir(exist_ok=True)
    steps = {
        "photos": make_photos,
        "handwriting": make_handwriting,
        "chart": make_gdp_chart,
        "exif": make_exif_photo,
        "spot": make_spot_difference,
        "label": make_label,
        "meme": make_meme,
    }
    for name, step in steps.items():
        if not args.only or name in args.only:
            step()
    if args.check:
        check_ocr()


if __name__ == "__main__":
    main()
