"""Benchmark: what helpers.images.prepare_image saves on a 12-megapixel phone photo, at the same token count.

Makes a phone-like JPEG (4032 x 3024 stored, EXIF orientation 6 = shot in portrait, GPS position, camera make
and model, quality 92) from scikit-image's astronaut photo, upscaled with sensor-like noise so it compresses
like a real photo. Then compares the naive upload (``encode_image``: the file as it is, base64) with the
prepared one for detail "high" and "low", for gpt-4o and the course default model, and asserts that the
token counts of the naive and the prepared upload are equal.

Run from the repository root:  python benchmarks/prepare_photo.py
(scikit-image is needed for the sample photo only; it is not a dependency of helpers.)
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing

from helpers import tokens  # noqa: E402
from helpers.images import encode_image, prepare_image  # noqa: E402
from helpers.models import DEFAULT_MODEL  # noqa: E402

WIDTH, HEIGHT = 4032, 3024          # a 12 MP phone sensor, stored landscape
QUALITY = 92


def phone_photo(path: Path) -> None:
    """Write a 12 MP JPEG as a phone stores a portrait shot: pixels sideways, EXIF orientation 6."""
    photo = Path(__file__).resolve().parents[1] / "images" / "astronaut.jpg"  # NASA, public domain
    with Image.open(photo) as source:
        upright = source.convert("RGB").crop((64, 0, 448, 512))               # 384 x 512 portrait (3:4)
    upright = upright.resize((HEIGHT, WIDTH), Image.Resampling.LANCZOS)       # 3024 x 4032 as seen
    rng = np.random.default_rng(2024)
    grain = rng.normal(0.0, 6.0, (WIDTH, HEIGHT, 1)) + rng.normal(0.0, 3.0, (WIDTH, HEIGHT, 3))
    upright = Image.fromarray(np.clip(np.asarray(upright, np.float32) + grain, 0, 255).astype(np.uint8))
    stored = upright.transpose(Image.Transpose.ROTATE_90)                     # what orientation 6 undoes
    assert stored.size == (WIDTH, HEIGHT)

    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 6
    exif[ExifTags.Base.Make] = "Apple"
    exif[ExifTags.Base.Model] = "iPhone 13"
    exif[ExifTags.Base.DateTime] = "2024:07:14 10:21:33"
    gps = exif.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSLatitudeRef], gps[ExifTags.GPS.GPSLatitude] = "N", (48.0, 51.0, 29.6)
    gps[ExifTags.GPS.GPSLongitudeRef], gps[ExifTags.GPS.GPSLongitude] = "E", (2.0, 17.0, 40.2)
    stored.save(path, "JPEG", quality=QUALITY, exif=exif)


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "IMG_0001.jpg"
        phone_photo(path)
        file_bytes = path.stat().st_size
        naive_url_chars = len("data:image/jpeg;base64,") + len(encode_image(path))
        print(f"photo: {WIDTH}×{HEIGHT} JPEG quality {QUALITY}, EXIF orientation 6 + GPS + camera make/model")
        print(f"file: {file_bytes:,} bytes; naive data URL (encode_image): {naive_url_chars:,} characters")
        print()
        header = (f"{'model':<14}{'detail':<8}{'sent as':<12}{'upload bytes':>14}{'data URL chars':>16}"
                  f"{'smaller':>9}{'tokens naive':>14}{'tokens prepared':>17}")
        print(header)
        print("-" * len(header))
        for model in dict.fromkeys(("gpt-4o", DEFAULT_MODEL)):
            for detail in ("high", "low"):
                prepared = prepare_image(path, detail, model)
                naive_tokens = tokens.image_tokens(WIDTH, HEIGHT, detail, model)
                assert prepared.tokens == naive_tokens, (model, detail, prepared.tokens, naive_tokens)
                assert b"Exif" not in prepared.data and b"iPhone" not in prepared.data
                assert prepared.height > prepared.width                           # upright portrait
                url_chars = len(prepared.data_url)
                print(f"{model:<14}{detail:<8}{f'{prepared.width}×{prepared.height}':<12}{len(prepared.data):>14,}"
                      f"{url_chars:>16,}{naive_url_chars / url_chars:>8.1f}x{naive_tokens:>14,}"
                      f"{prepared.tokens:>17,}")
        print()
        print("Notes for gpt-4o, detail='high':")
        for note in prepare_image(path, "high", "gpt-4o").notes:
            print(f"  - {note}")


if __name__ == "__main__":
    main()
