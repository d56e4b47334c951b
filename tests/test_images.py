"""helpers.images: real images made here with Pillow/numpy, written to tmp_path, prepared and checked.

Run: cd /work/main && python -m pytest -q -o addopts="" tests/test_images.py
"""

from __future__ import annotations

import base64
import io
import struct
import warnings
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from localhttp import QuietHandler, base_url, serve, stop
from PIL import ExifTags, Image, ImageCms, PngImagePlugin, features

from helpers import tokens
from helpers.errors import (
    CourseError,
    ImageNotFoundError,
    ImageTooLargeError,
    NetworkError,
    UnsupportedImageError,
)
from helpers.images import (
    MAX_IMAGE_BYTES,
    SUPPORTED_MIME,
    PreparedImage,
    decode_data_url,
    encode_image,
    image_part,
    load_image,
    prepare_image,
    sniff_mime,
    to_data_url,
)

MODEL = "gpt-4o"


# --- image factories -----------------------------------------------------------------------------------------

def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Photo-like RGB: smooth gradients plus sensor-like noise (compresses like a real photo, not flat colour)."""
    rng = np.random.default_rng(seed)
    x = np.linspace(0, 255, width, dtype=np.float32)[None, :]
    y = np.linspace(0, 255, height, dtype=np.float32)[:, None]
    base = np.stack(np.broadcast_arrays(x, y, (x + y) / 2), axis=-1)
    noise = rng.integers(-24, 25, size=base.shape, dtype=np.int16)
    return Image.fromarray(np.clip(base + noise, 0, 255).astype(np.uint8))


def smooth(width: int, height: int, seed: int = 0) -> Image.Image:
    """Cheap photo-like content for property tests: 24x24 random colours blown up with bilinear filtering."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8))
    return small.resize((width, height), Image.Resampling.BILINEAR)


def encode(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def decode(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def pixels(data: bytes, mode: str | None = None) -> np.ndarray:
    image = decode(data)
    return np.asarray(image.convert(mode) if mode else image)


def camera_exif(orientation: int = 1) -> Image.Exif:
    """EXIF as a phone writes it: orientation, camera make/model, date, and a GPS position."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    exif[ExifTags.Base.Make] = "TestCamMaker"
    exif[ExifTags.Base.Model] = "Model-X1000"
    exif[ExifTags.Base.DateTime] = "2024:05:06 07:08:09"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (52.0, 22.0, 12.0)
    gps[ExifTags.GPS.GPSLongitudeRef] = "E"
    gps[ExifTags.GPS.GPSLongitude] = (4.0, 53.0, 30.0)
    gps[ExifTags.GPS.GPSMapDatum] = "WGS-84-TESTDATUM"
    return exif


XMP = b'<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:Description>SECRET-XMP</rdf:Description></x:xmpmeta>'
SECRETS = (b"Exif", b"TestCamMaker", b"Model-X1000", b"WGS-84-TESTDATUM", b"SECRET", b"2024:05:06")


def assert_no_metadata(data: bytes) -> None:
    """No EXIF/GPS/XMP/comment/text in the bytes, and Pillow finds none either."""
    for secret in SECRETS:
        assert secret not in data, secret
    image = decode(data)
    assert len(image.getexif()) == 0
    assert image.getexif().get_ifd(ExifTags.IFD.GPSInfo) == {}
    for key in ("exif", "xmp", "XML:com.adobe.xmp", "comment", "icc_profile", "photoshop"):
        assert key not in image.info, key
    assert not getattr(image, "text", {})


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- sniffing ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("fmt", "options", "mime"), [
    ("PNG", {}, "image/png"),
    ("JPEG", {"quality": 90}, "image/jpeg"),
    ("GIF", {}, "image/gif"),
    ("WEBP", {"quality": 80}, "image/webp"),
    ("WEBP", {"lossless": True}, "image/webp"),
    ("BMP", {}, "image/bmp"),
    ("TIFF", {}, "image/tiff"),
])
def test_sniff_mime_reads_magic_numbers(fmt, options, mime):
    assert sniff_mime(encode(photo(20, 10), fmt, **options)) == mime


def test_sniff_mime_for_non_images():
    assert sniff_mime(b"") is None
    assert sniff_mime(b"just some text\n") is None
    assert sniff_mime(b"%PDF-1.7\n...") is None
    assert sniff_mime(b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg"/>') == "image/svg+xml"
    assert sniff_mime(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic") == "image/heic"
    assert sniff_mime(b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00avifmif1miaf") == "image/avif"


@given(st.binary(max_size=64))
@settings(max_examples=200, deadline=None)
def test_sniff_mime_never_crashes(data):
    assert sniff_mime(data) in (None, *SUPPORTED_MIME) or sniff_mime(data).startswith("image/")


def test_real_format_wins_over_the_file_name(tmp_path):
    jpeg_named_png = write(tmp_path, "really_a_jpeg.png", encode(photo(64, 48), "JPEG"))
    png_named_jpg = write(tmp_path, "really_a_png.jpg", encode(photo(64, 48), "PNG"))
    assert prepare_image(jpeg_named_png, model=MODEL).mime_type == "image/jpeg"
    assert to_data_url(jpeg_named_png, model=MODEL).startswith("data:image/jpeg;base64,")
    assert prepare_image(png_named_jpg, model=MODEL).mime_type == "image/png"
    assert image_part(png_named_jpg, model=MODEL)["image_url"]["url"].startswith("data:image/png;base64,")


# --- conversions ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_bmp_and_tiff_become_lossless_png(tmp_path, fmt):
    source = photo(120, 80)
    prepared = prepare_image(write(tmp_path, f"scan.{fmt.lower()}", encode(source, fmt)), model=MODEL)
    assert prepared.mime_type == "image/png"
    assert np.array_equal(pixels(prepared.data), np.asarray(source))
    assert f"converted {fmt} to PNG (lossless)" in prepared.notes


def test_16_bit_png_is_scaled_to_8_bits_not_clipped(tmp_path):
    values = np.array([[0, 257, 32896, 65535]], dtype=np.uint16).repeat(4, axis=0)
    data = encode(Image.fromarray(values), "PNG")
    assert data[24] == 16                                     # really a 16-bit PNG
    prepared = prepare_image(write(tmp_path, "depth.png", data), model=MODEL)
    out = decode(prepared.data)
    assert (out.mode, prepared.mime_type) == ("L", "image/png")
    assert np.asarray(out)[0].tolist() == [0, 1, 128, 255]


def test_16_bit_rgb_png_becomes_8_bit(tmp_path):
    # Pillow cannot write 48-bit PNGs, so build one: IHDR bit depth 16, colour type 2, filter-0 rows.
    rgb16 = np.array([[[65535, 0, 0], [0, 65535, 0]], [[0, 0, 65535], [32896, 32896, 32896]]], dtype=">u2")
    rows = b"".join(b"\x00" + row.tobytes() for row in rgb16)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    data = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 16, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    prepared = prepare_image(write(tmp_path, "hdr.png", data), model=MODEL)
    assert decode(prepared.data).mode == "RGB"
    assert prepared.data[24] == 8
    assert pixels(prepared.data).tolist() == [[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [128, 128, 128]]]


def test_cmyk_jpeg_becomes_rgb_jpeg(tmp_path):
    cmyk = Image.new("CMYK", (64, 64), (0, 255, 255, 0))        # no cyan, full magenta + yellow = red
    prepared = prepare_image(write(tmp_path, "print.jpg", encode(cmyk, "JPEG", quality=95)), model=MODEL)
    out = decode(prepared.data)
    assert (prepared.mime_type, out.mode) == ("image/jpeg", "RGB")
    red, green, blue = out.getpixel((32, 32))
    assert red > 230 and green < 25 and blue < 25
    assert "converted CMYK pixels to RGB" in prepared.notes


def test_la_tiff_becomes_rgba_png_with_its_alpha(tmp_path):
    grey = np.tile(np.arange(0, 250, 10, dtype=np.uint8), (20, 1))
    alpha = np.full_like(grey, 77)
    source = Image.fromarray(np.dstack([grey, alpha]), "LA")
    prepared = prepare_image(write(tmp_path, "mask.tif", encode(source, "TIFF")), model=MODEL)
    out = decode(prepared.data)
    assert (prepared.mime_type, out.mode) == ("image/png", "RGBA")
    rgba = np.asarray(out)
    assert np.array_equal(rgba[..., 0], grey) and np.array_equal(rgba[..., 3], alpha)


def test_palette_bmp_becomes_rgb_png_with_the_same_colours(tmp_path):
    source = photo(90, 60).quantize(16)
    prepared = prepare_image(write(tmp_path, "icon.bmp", encode(source, "BMP")), model=MODEL)
    out = decode(prepared.data)
    assert (prepared.mime_type, out.mode) == ("image/png", "RGB")
    assert np.array_equal(np.asarray(out), np.asarray(source.convert("RGB")))


def test_small_palette_png_keeps_its_palette_pixels(tmp_path):
    source = photo(90, 60).quantize(16)
    data = encode(source, "PNG")
    prepared = prepare_image(write(tmp_path, "icon.png", data), model=MODEL)
    assert prepared.data == data                               # nothing to change: sent as it is
    assert decode(prepared.data).mode == "P"


def test_large_palette_png_that_must_shrink_is_converted_and_resized(tmp_path):
    rng = np.random.default_rng(3)
    source = Image.fromarray(rng.integers(0, 256, (1000, 2600), dtype=np.uint8), "P")
    source.putpalette(rng.integers(0, 256, 768, dtype=np.uint8).tobytes())
    prepared = prepare_image(write(tmp_path, "chart.png", encode(source, "PNG")), "low", MODEL)
    assert (prepared.width, prepared.height) == tokens.scaled_size(2600, 1000, "low", MODEL)
    assert decode(prepared.data).mode == "RGB"


@pytest.mark.skipif(not features.check("avif"), reason="this Pillow has no AVIF support")
def test_avif_photo_becomes_jpeg(tmp_path):
    prepared = prepare_image(write(tmp_path, "phone.avif", encode(photo(96, 64), "AVIF")), model=MODEL)
    assert prepared.mime_type == "image/jpeg"
    assert "converted AVIF to JPEG (quality 90)" in prepared.notes


def test_animated_gif_warns_and_sends_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "lime", "blue")]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    path = write(tmp_path, "loop.gif", data)
    with pytest.warns(UserWarning, match=r"loop\.gif is an animated GIF with 3 frames.*first frame"):
        prepared = prepare_image(path, model=MODEL)
    out = decode(prepared.data)
    assert getattr(out, "n_frames", 1) == 1 and prepared.mime_type in ("image/png", "image/gif")
    assert out.convert("RGB").getpixel((20, 15)) == (255, 0, 0)
    with pytest.warns(UserWarning, match="first frame"):
        assert load_image(path).convert("RGB").getpixel((5, 5)) == (255, 0, 0)


def test_animated_pillow_image_sends_the_selected_frame_and_is_not_moved(tmp_path):
    frames = [Image.new("RGB", (40, 30), colour) for colour in ("red", "lime", "blue")]
    animated = Image.open(io.BytesIO(encode(frames[0], "GIF", save_all=True, append_images=frames[1:])))
    animated.seek(1)
    with pytest.warns(UserWarning, match=r"frame 1 \(the frame selected\)"):
        prepared = prepare_image(animated, model=MODEL)
    assert decode(prepared.data).convert("RGB").getpixel((5, 5)) == (0, 255, 0)
    assert animated.tell() == 1


# --- errors --------------------------------------------------------------------------------------------------

def _truncated_jpeg() -> bytes:
    data = encode(photo(200, 150), "JPEG", quality=90)
    return data[: len(data) // 2]


@pytest.mark.parametrize(("name", "content", "error", "words"), [
    ("half.jpg", _truncated_jpeg(), UnsupportedImageError, "truncated"),
    ("notes.png", b"Shopping list:\n- milk\n- eggs\n", UnsupportedImageError, "contains text, not an image"),
    ("logo.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" width="9" height="9"/>',
     UnsupportedImageError, "SVG"),
    ("empty.jpg", b"", UnsupportedImageError, "empty"),
    ("iphone.heic", b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic" + bytes(200), UnsupportedImageError, "HEIC"),
    ("scan.pdf", b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", UnsupportedImageError, "PDF"),
    ("noise.bin", bytes(range(256)) * 8, UnsupportedImageError, "not an image format Pillow can read"),
    ("clip.png", b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(64), UnsupportedImageError,
     "contains a video"),
])
def test_bad_files_raise_a_clear_error_naming_the_file(tmp_path, name, content, error, words):
    path = write(tmp_path, name, content)
    with pytest.raises(error) as caught:
        prepare_image(path, model=MODEL)
    message = str(caught.value)
    assert name in message and words in message and "What to do:" in message
    assert caught.value.source is not None and name in caught.value.source
    with pytest.raises(error):
        load_image(path)


def test_svg_error_says_to_convert_to_png(tmp_path):
    path = write(tmp_path, "logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg"/>')
    with pytest.raises(UnsupportedImageError, match="export it to PNG"):
        to_data_url(path)


def test_missing_path_and_directory(tmp_path):
    with pytest.raises(ImageNotFoundError, match="missing_photo.jpg") as caught:
        prepare_image(tmp_path / "missing_photo.jpg", model=MODEL)
    assert isinstance(caught.value, FileNotFoundError)          # `except FileNotFoundError` still works
    (tmp_path / "holiday").mkdir()
    with pytest.raises(ImageNotFoundError, match="holiday.*is a folder"):
        image_part(str(tmp_path / "holiday"), model=MODEL)
    with pytest.raises(ImageNotFoundError, match="missing_photo.jpg"):
        encode_image(tmp_path / "missing_photo.jpg")


def test_base64_text_passed_as_a_path_gets_advice():
    text = base64.b64encode(encode(photo(30, 20), "PNG")).decode()
    with pytest.raises(UnsupportedImageError, match="not a file path.*data:image"):
        prepare_image(text, model=MODEL)


def test_decompression_bomb_is_image_too_large(tmp_path):
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    # A 100-byte PNG that claims 30000 x 30000 pixels (900 megapixels).
    bomb = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 30000, 30000, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00")) + chunk(b"IEND", b""))
    with pytest.raises(ImageTooLargeError, match=r"bomb\.png has too many pixels") as caught:
        prepare_image(write(tmp_path, "bomb.png", bomb), model=MODEL)
    assert "What to do:" in str(caught.value)
    assert not isinstance(caught.value, Image.DecompressionBombError)


def test_per_image_byte_limit_is_checked_after_preparation(tmp_path):
    noise = Image.fromarray(np.random.default_rng(1).integers(0, 256, (300, 300, 3), dtype=np.uint8))
    path = write(tmp_path, "noise.png", encode(noise, "PNG"))
    assert MAX_IMAGE_BYTES == 20 * 1024 * 1024
    prepared = prepare_image(path, "low", MODEL)                  # fine under the real limit
    with pytest.raises(ImageTooLargeError, match=r"noise\.png is still .* over the .* per-image limit"):
        prepare_image(path, "low", MODEL, max_bytes=len(prepared.data) - 1)
    # A big file is fine when preparation brings it under the limit.
    big = write(tmp_path, "big.bmp", encode(photo(1600, 1200), "BMP"))
    assert big.stat().st_size > 5_000_000
    assert len(prepare_image(big, "low", MODEL, max_bytes=1_000_000).data) <= 1_000_000


# --- orientation and metadata ------------------------------------------------------------------------------

def _corner_photo() -> Image.Image:
    """60 wide x 40 high, white with a red 12x12 block in the top-left corner (as stored)."""
    image = Image.new("RGB", (60, 40), "white")
    image.paste((255, 0, 0), (0, 0, 12, 12))
    return image


@pytest.mark.parametrize(("orientation", "size", "red_at", "white_at"), [
    (3, (60, 40), (55, 35), (4, 4)),      # rotated 180: the red corner ends bottom-right
    (6, (40, 60), (35, 4), (4, 4)),       # rotated 90 clockwise: top-left goes to top-right
    (8, (40, 60), (4, 55), (4, 4)),       # rotated 90 counter-clockwise: top-left goes to bottom-left
])
def test_exif_orientation_is_applied_and_metadata_removed(tmp_path, orientation, size, red_at, white_at):
    data = encode(_corner_photo(), "JPEG", quality=95, exif=camera_exif(orientation), comment=b"SECRET-COMMENT")
    path = write(tmp_path, "phone.jpg", data)
    prepared = prepare_image(path, "high", MODEL)
    out = decode(prepared.data)
    assert out.size == size == (prepared.width, prepared.height) == (prepared.original_width,
                                                                    prepared.original_height)
    red, green, blue = out.getpixel(red_at)
    assert red > 200 and green < 60 and blue < 60
    assert min(out.getpixel(white_at)) > 200
    assert_no_metadata(prepared.data)
    assert f"by EXIF orientation {orientation}" in " ".join(prepared.notes)
    assert "removed metadata: EXIF (GPS location, camera make/model, date/time), comment" in prepared.notes
    assert load_image(path).size == size


def _png_with_metadata(image: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "SECRET-TEXT")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode())
    return encode(image, "PNG", pnginfo=info, exif=camera_exif())


@pytest.mark.parametrize(("name", "make"), [
    ("baseline.jpg", lambda im: encode(im, "JPEG", quality=85, exif=camera_exif(), comment=b"SECRET-C", xmp=XMP)),
    ("progressive.jpg", lambda im: encode(im, "JPEG", quality=85, progressive=True, exif=camera_exif(), xmp=XMP)),
    ("with_icc.jpg", lambda im: encode(im, "JPEG", exif=camera_exif(), icc_profile=ImageCms.ImageCmsProfile(
        ImageCms.createProfile("sRGB")).tobytes())),
    ("text.png", _png_with_metadata),
    ("lossy.webp", lambda im: encode(im, "WEBP", quality=80, exif=camera_exif(), xmp=XMP)),
    ("lossless.webp", lambda im: encode(im, "WEBP", lossless=True, exif=camera_exif(), xmp=XMP)),
    ("comment.gif", lambda im: encode(im.quantize(64), "GIF", comment=b"SECRET-GIF")),
])
def test_small_supported_file_keeps_its_pixels_and_loses_its_metadata(tmp_path, name, make):
    data = make(photo(160, 120))
    prepared = prepare_image(write(tmp_path, name, data), "high", MODEL)
    assert prepared.mime_type == sniff_mime(data)
    assert np.array_equal(pixels(prepared.data, "RGBA"), pixels(data, "RGBA"))   # not re-encoded
    assert len(prepared.data) < len(data)
    assert_no_metadata(prepared.data)
    assert any(note.startswith("removed metadata") and "pixels unchanged" in note for note in prepared.notes)


def test_clean_small_file_is_sent_byte_identical(tmp_path):
    for name, data in (("plain.png", encode(photo(100, 80), "PNG")),
                       ("plain.jpg", encode(photo(100, 80), "JPEG", quality=80))):
        prepared = prepare_image(write(tmp_path, name, data), "high", MODEL)
        assert prepared.data == data
        assert prepared.notes[-1].startswith("sent unchanged")


def test_pictures_after_the_jpeg_end_are_dropped(tmp_path):
    main, extra = photo(120, 90, seed=1), photo(120, 90, seed=2)
    mpo = encode(main, "MPO", save_all=True, append_images=[extra])
    assert decode(mpo).format == "MPO"
    prepared = prepare_image(write(tmp_path, "stereo.jpg", mpo), model=MODEL)
    assert prepared.data.count(b"\xff\xd8") == 1                  # one picture (SOI never occurs in scan data)
    assert np.array_equal(pixels(prepared.data), pixels(mpo))
    trailer = encode(main, "JPEG") + b"SECRET-TRAILER-" * 10
    assert b"SECRET" not in prepare_image(write(tmp_path, "trailer.jpg", trailer), model=MODEL).data


def _swapped_primaries_profile() -> bytes:
    """A valid RGB ICC profile whose red and green primaries are swapped (so it is not sRGB)."""
    icc = bytearray(ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes())
    offsets = {bytes(icc[132 + 12 * k:136 + 12 * k]): 132 + 12 * k for k in range(int.from_bytes(icc[128:132], "big"))}
    red, green = offsets[b"rXYZ"], offsets[b"gXYZ"]
    icc[red + 4:red + 12], icc[green + 4:green + 12] = icc[green + 4:green + 12], icc[red + 4:red + 12]
    return bytes(icc)


def test_non_srgb_icc_profile_is_converted_to_srgb(tmp_path):
    data = encode(Image.new("RGBA", (32, 32), (255, 0, 0, 200)), "PNG", icc_profile=_swapped_primaries_profile())
    prepared = prepare_image(write(tmp_path, "wide_gamut.png", data), model=MODEL)
    assert decode(prepared.data).getpixel((3, 3)) == (0, 255, 0, 200)   # "red" in that profile is sRGB green
    assert "icc_profile" not in decode(prepared.data).info
    assert any("converted colours from ICC profile" in note for note in prepared.notes)


# --- resizing and tokens -------------------------------------------------------------------------------------

@pytest.mark.parametrize(("size", "detail", "model"), [
    ((4032, 3024), "high", "gpt-4o"),
    ((4032, 3024), "low", "gpt-4o"),
    ((3000, 1000), "auto", "gpt-4.1-mini"),
    ((1000, 3000), "high", "gpt-4o-mini"),
    ((2100, 900), "high", "o3"),
    ((300, 200), "high", "gpt-4o"),              # small: never upscaled
    ((300, 200), "low", "gpt-4.1-nano"),
])
def test_resize_follows_costs_scaled_size_and_never_upscales(tmp_path, size, detail, model):
    data = encode(photo(*size), "JPEG", quality=90)
    prepared = prepare_image(write(tmp_path, "photo.jpg", data), detail, model)
    expected = tokens.scaled_size(*size, detail, model)
    assert (prepared.width, prepared.height) == expected == decode(prepared.data).size
    assert prepared.width <= size[0] and prepared.height <= size[1]
    assert prepared.tokens == tokens.image_tokens(*size, detail, model)
    assert len(prepared.data) <= len(data)
    if expected != size:
        assert f"resized {size[0]}×{size[1]} → {expected[0]}×{expected[1]}" in " ".join(prepared.notes)


def test_token_count_is_unchanged_for_every_known_model():
    source = encode(photo(2500, 1400), "JPEG", quality=88)
    for model in tokens.known_models():
        for detail in ("low", "high"):
            prepared = prepare_image(source, detail, model)
            assert tokens.image_tokens(prepared.width, prepared.height, detail, model) == \
                tokens.image_tokens(2500, 1400, detail, model), (model, detail)
            assert prepared.model == model and prepared.detail == detail


def test_model_none_means_the_course_default():
    from helpers.models import DEFAULT_MODEL

    prepared = prepare_image(photo(3000, 2000))
    assert prepared.model == DEFAULT_MODEL
    assert (prepared.width, prepared.height) == tokens.scaled_size(3000, 2000, "auto", DEFAULT_MODEL)


def test_unknown_model_is_sized_by_tile_rules_with_a_warning():
    with pytest.warns(UserWarning, match="llava-local"):
        prepared = prepare_image(photo(3000, 2000), "high", "llava-local")
    assert (prepared.width, prepared.height) == tokens.scaled_size(3000, 2000, "high", "gpt-4o")
    assert prepared.family == "tile" and prepared.tokens == tokens.image_tokens(3000, 2000, "high", "gpt-4o")


def test_flat_diagram_keeps_its_size_when_resizing_would_cost_more_bytes(tmp_path):
    diagram = Image.new("P", (2400, 1800))                        # a flat palette image compresses to ~nothing
    data = encode(diagram, "PNG")
    prepared = prepare_image(write(tmp_path, "flat.png", data), "high", MODEL)
    assert prepared.data == data and (prepared.width, prepared.height) == (2400, 1800)
    assert prepared.tokens == tokens.image_tokens(2400, 1800, "high", MODEL)
    assert any(note.startswith("kept 2400×1800") for note in prepared.notes)


def test_coarse_jpeg_is_not_inflated_by_re_encoding(tmp_path):
    data = encode(photo(800, 600), "JPEG", quality=60, exif=camera_exif(6))
    prepared = prepare_image(write(tmp_path, "q60.jpg", data), "high", MODEL)   # must rotate: re-encoded
    assert len(prepared.data) < len(data) * 1.05
    assert "re-encoded as JPEG (the source's own quantization tables, coarser than quality 90)" in prepared.notes


@given(width=st.integers(1, 2400), height=st.integers(1, 2400), detail=st.sampled_from(["low", "high", "auto"]),
       model=st.sampled_from(tokens.known_models()), fmt=st.sampled_from(["PNG", "JPEG"]))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_property_same_tokens_never_bigger_never_upscaled(width, height, detail, model, fmt):
    data = encode(smooth(width, height), fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    prepared = prepare_image(data, detail, model)
    assert prepared.width <= width and prepared.height <= height
    assert prepared.tokens == tokens.image_tokens(width, height, detail, model)
    assert len(prepared.data) <= len(data)
    if (prepared.width, prepared.height) == (width, height):
        assert np.array_equal(pixels(prepared.data), pixels(data))       # untouched pixels
    else:
        assert (prepared.width, prepared.height) == tokens.scaled_size(width, height, detail, model)
    assert decode_data_url(prepared.data_url) == (prepared.mime_type, prepared.data)


# --- data URLs and content parts -----------------------------------------------------------------------------

def test_data_url_round_trip_and_prepare_from_a_data_url():
    prepared = prepare_image(photo(50, 40), model=MODEL)
    assert decode_data_url(prepared.data_url) == ("image/png", prepared.data)
    again = prepare_image(prepared.data_url, model=MODEL)
    assert again.data == prepared.data and again.source_name == "data URL (image/png)"


def test_decode_data_url_reports_the_real_type():
    png = encode(photo(8, 8), "PNG")
    mislabelled = "data:image/jpeg;base64," + base64.b64encode(png).decode()
    assert decode_data_url(mislabelled) == ("image/png", png)
    wrapped = "data:image/png;base64," + "\n".join(base64.encodebytes(png).decode().split())
    assert decode_data_url(wrapped)[1] == png


@pytest.mark.parametrize(("url", "words"), [
    ("https://example.com/a.png", "is not a data URL"),
    ("data:image/png,plain-text", "not base64-encoded"),
    ("data:image/png;base64,@@@not base64@@@", "not contain valid base64"),
    ("data:image/png;base64,", "is empty"),
    ("data:image/png;base64," + base64.b64encode(b"hello, I am text").decode(), "holds text, not an image"),
    ("data:text/html;base64," + base64.b64encode(b"<!DOCTYPE html><html></html>").decode(), "HTML"),
])
def test_decode_data_url_rejects_bad_urls(url, words):
    with pytest.raises(UnsupportedImageError, match=words):
        decode_data_url(url)


def test_image_part_shapes(tmp_path):
    url = "https://example.com/photos/cat.jpg?size=large"
    assert image_part(url) == {"type": "image_url", "image_url": {"url": url, "detail": "auto"}}
    assert image_part("HTTP://EXAMPLE.COM/x.png", "low")["image_url"]["url"] == "HTTP://EXAMPLE.COM/x.png"
    path = write(tmp_path, "photo.jpg", encode(photo(3000, 2000), "JPEG", exif=camera_exif()))
    part = image_part(path, detail="low", model=MODEL)
    assert set(part) == {"type", "image_url"} and part["type"] == "image_url"
    assert set(part["image_url"]) == {"url", "detail"} and part["image_url"]["detail"] == "low"
    mime, data = decode_data_url(part["image_url"]["url"])
    assert mime == "image/jpeg" and decode(data).size == tokens.scaled_size(3000, 2000, "low", MODEL)
    assert_no_metadata(data)
    prepared = prepare_image(path, "high", MODEL)
    assert image_part(prepared, "high")["image_url"]["url"] == prepared.data_url
    with pytest.raises(ValueError, match="detail"):
        image_part(url, detail="medium")


def test_encode_image_is_plain_base64_of_the_file(tmp_path):
    data = encode(photo(40, 30), "JPEG", exif=camera_exif())
    path = write(tmp_path, "naive.jpg", data)
    assert encode_image(path) == base64.b64encode(data).decode("utf-8")
    assert encode_image(str(path)) == encode_image(path)


def test_pillow_image_source_is_not_modified():
    source = Image.open(io.BytesIO(encode(photo(300, 200), "JPEG", exif=camera_exif(6))))
    info_before = dict(source.info)
    prepared = prepare_image(source, model=MODEL)
    assert (prepared.width, prepared.height) == (200, 300)           # oriented
    assert source.size == (300, 200) and source.info == info_before
    assert prepared.source_name == "Pillow image (300×200 RGB)"
    assert prepared.original_bytes == 300 * 200 * 3
    assert_no_metadata(prepared.data)


def test_summary_and_repr_stay_short():
    prepared = prepare_image(photo(1200, 900), "low", MODEL)
    assert "data=" not in repr(prepared)
    summary = prepared.summary()
    assert summary.splitlines()[0].startswith("Pillow image (1200×900 RGB): 1200×900")
    assert "512×384 image/png" in summary and "85 tokens" in summary


def test_prepare_is_thread_safe():
    sources = [encode(photo(900 + 50 * i, 700, seed=i), "JPEG", exif=camera_exif(1 + i % 8)) for i in range(6)]
    expected = [prepare_image(s, "low", MODEL) for s in sources]
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda s: prepare_image(s, "low", MODEL), sources * 2))
    assert [r.data for r in results] == [e.data for e in expected] * 2


# --- downloads (a real local HTTP server) -------------------------------------------------------------------

class _Handler(QuietHandler):
    routes: dict[str, tuple[int, str, bytes]] = {}

    def do_GET(self):  # noqa: N802 - the http.server API
        status, content_type, body = self.routes.get(self.path, (404, "text/plain", b"not found"))
        self.send_bytes(status, body, content_type)


@pytest.fixture()
def server(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    photo_bytes = encode(photo(2500, 1200), "JPEG", exif=camera_exif())
    handler = type("Handler", (_Handler,), {"routes": {
        "/photo.jpg": (200, "image/jpeg", photo_bytes),
        "/forbidden.jpg": (403, "text/html", b"<html>Forbidden</html>"),
        "/page.jpg": (200, "text/html", b"<!DOCTYPE html><html><body>Please enable JavaScript</body></html>"),
    }})
    httpd = serve(handler)
    yield base_url(httpd)
    stop(httpd)


def test_download_prepares_the_image(server):
    prepared = prepare_image(f"{server}/photo.jpg", "high", MODEL)
    assert prepared.source_name == f"{server}/photo.jpg"
    assert (prepared.width, prepared.height) == tokens.scaled_size(2500, 1200, "high", MODEL)
    assert_no_metadata(prepared.data)
    # image_part never downloads: the provider fetches the URL itself.
    assert image_part(f"{server}/photo.jpg")["image_url"]["url"] == f"{server}/photo.jpg"


def test_download_errors_carry_advice(server):
    with pytest.raises(ImageNotFoundError, match="HTTP 404"):
        prepare_image(f"{server}/nothing.jpg", model=MODEL)
    with pytest.raises(NetworkError, match="refuse automated downloads") as caught:
        to_data_url(f"{server}/forbidden.jpg", model=MODEL)
    assert caught.value.status == 403
    with pytest.raises(UnsupportedImageError, match="web page.*refuse automated downloads"):
        prepare_image(f"{server}/page.jpg", model=MODEL)


def test_unreachable_host_is_a_network_error():
    import socket

    with socket.socket() as sock:                                  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(NetworkError, match="save the image, and pass the file path") as caught:
        prepare_image(f"http://127.0.0.1:{port}/x.jpg", model=MODEL, timeout=5)
    assert caught.value.status is None


def test_prepared_image_is_frozen():
    prepared = prepare_image(photo(10, 10), model=MODEL)
    assert isinstance(prepared, PreparedImage)
    with pytest.raises(AttributeError):
        prepared.width = 5  # type: ignore[misc]
    with warnings.catch_warnings():
        warnings.simplefilter("error")                             # a still image never warns
        prepare_image(photo(10, 10), model=MODEL)


def test_patch_models_prepare_strips_to_the_2048_px_maximum_dimension():
    # The guide (patch family, `high`: up to 1,536 patches or 2048 px, checked 2026-12-02): a 30000 x 10 strip is
    # no longer uploaded 30000 px wide, and 4000 x 1474 is sent at the size that costs exactly 1536 patches.
    strip = prepare_image(Image.new("RGB", (30000, 10), "white"), "high", "gpt-4.1-mini")
    assert (strip.width, strip.height) == (2048, 1)
    wide = prepare_image(Image.new("RGB", (4000, 1474), "white"), "high", "gpt-4.1-mini")
    assert (wide.width, wide.height) == (2048, 755)
    assert wide.tokens == tokens.image_tokens(4000, 1474, "high", "gpt-4.1-mini") == 2489  # ceil(1536 x 1.62)


def test_original_detail_prepares_to_the_documented_limits():
    # Guide (checked 2026-12-02): gpt-5.5 `original` = up to 10,000 patches or 6000 px; `auto` means `original`
    # there; models the guide does not list refuse `original` before anything is read.
    wide = prepare_image(Image.new("RGB", (8000, 1000), "white"), "original", "gpt-5.5")
    assert (wide.width, wide.height) == tokens.scaled_size(8000, 1000, "original", "gpt-5.5") == (6000, 750)
    assert wide.tokens == tokens.image_tokens(8000, 1000, "auto", "gpt-5.5")
    high = prepare_image(Image.new("RGB", (8000, 1000), "white"), "high", "gpt-5.5")
    assert max(high.width, high.height) == 2048
    with pytest.raises(CourseError, match="original"):
        prepare_image(Image.new("RGB", (100, 100), "white"), "original", "gpt-4o")
