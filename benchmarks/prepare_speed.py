"""Benchmark: how fast helpers.images.prepare_image prepares a 12 MP phone JPEG, against naive Pillow.

Same phone photo as ``prepare_photo.py`` (4032 x 3024 stored, EXIF orientation 6, GPS, quality 92). For each model
and detail level, both ways produce the size the model looks at (``helpers.tokens.scaled_size``):

* naive: ``Image.open`` -> ``ImageOps.exif_transpose`` (full decode) -> LANCZOS resize -> JPEG quality 90;
* course: ``prepare_image(path, detail, model)``, which decodes a JPEG at 1/2, 1/4 or 1/8 scale (Pillow's
  ``draft``) when the target is at most half the stored size, then resizes (LANCZOS) and re-encodes.

It asserts equal output dimensions and equal token counts, reports the best of several interleaved rounds, and the
quality of both outputs against a reference (full decode, LANCZOS resize, no JPEG encoding): PSNR (dB) and SSIM
(luminance, 7 x 7 windows). Target of issue 15: >= 2.5x faster at equal tokens and dimensions.

Run from the repository root:  python benchmarks/prepare_speed.py
"""

from __future__ import annotations

import io
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from scipy.ndimage import uniform_filter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
sys.path.insert(0, str(Path(__file__).resolve().parent))

from prepare_photo import HEIGHT, WIDTH, phone_photo  # noqa: E402

from helpers import tokens  # noqa: E402
from helpers.images import prepare_image  # noqa: E402
from helpers.models import DEFAULT_MODEL  # noqa: E402

ROUNDS = 7


def naive(path: Path, target: tuple[int, int]) -> bytes:
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
    image = image.resize(target, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


def reference(path: Path, target: tuple[int, int]) -> np.ndarray:
    with Image.open(path) as opened:
        image = ImageOps.exif_transpose(opened)
    return np.asarray(image.resize(target, Image.Resampling.LANCZOS).convert("L"), np.float64)


def luminance(data: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(data)) as image:
        return np.asarray(image.convert("L"), np.float64)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a - b) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM (Wang et al. 2004) over 7 x 7 uniform windows, on 0-255 luminance."""
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = uniform_filter(a, 7), uniform_filter(b, 7)
    var_a = uniform_filter(a * a, 7) - mu_a ** 2
    var_b = uniform_filter(b * b, 7) - mu_b ** 2
    cov = uniform_filter(a * b, 7) - mu_a * mu_b
    value = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a ** 2 + mu_b ** 2 + c1) * (var_a + var_b + c2))
    return float(value[3:-3, 3:-3].mean())


def timed(function, *args) -> float:
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "IMG_0001.jpg"
        phone_photo(path)
        shown = (HEIGHT, WIDTH)                     # orientation 6: displayed portrait
        print(f"photo: {WIDTH}×{HEIGHT} JPEG, EXIF orientation 6 (displayed {shown[0]}×{shown[1]}), "
              f"{path.stat().st_size:,} bytes; best of {ROUNDS} interleaved rounds")
        print()
        header = (f"{'model':<14}{'detail':<7}{'size':<11}{'tokens':>7}{'naive ms':>10}{'course ms':>11}{'speed-up':>10}"
                  f"{'PSNR naive':>12}{'PSNR course':>13}{'SSIM naive':>12}{'SSIM course':>13}")
        print(header)
        print("-" * len(header))
        for model in dict.fromkeys(("gpt-4o", DEFAULT_MODEL)):
            for detail in ("high", "low"):
                target = tokens.scaled_size(*shown, detail, model)
                prepared = prepare_image(path, detail, model)
                naive_data = naive(path, target)
                assert (prepared.width, prepared.height) == target == Image.open(io.BytesIO(naive_data)).size
                assert prepared.tokens == tokens.image_tokens(*target, detail, model) \
                    == tokens.image_tokens(*shown, detail, model)
                naive_s = course_s = float("inf")
                for _ in range(ROUNDS):                                  # interleaved: fair to both
                    naive_s = min(naive_s, timed(naive, path, target))
                    course_s = min(course_s, timed(prepare_image, path, detail, model))
                ref = reference(path, target)
                got_naive, got_course = luminance(naive_data), luminance(prepared.data)
                print(f"{model:<14}{detail:<7}{f'{target[0]}×{target[1]}':<11}{prepared.tokens:>7,}"
                      f"{naive_s * 1000:>10.0f}{course_s * 1000:>11.0f}{naive_s / course_s:>9.1f}x"
                      f"{psnr(ref, got_naive):>12.1f}{psnr(ref, got_course):>13.1f}"
                      f"{ssim(ref, got_naive):>12.4f}{ssim(ref, got_course):>13.4f}")
        print()
        print("Notes for gpt-4o, detail='high':")
        for note in prepare_image(path, "high", "gpt-4o").notes:
            print(f"  - {note}")


if __name__ == "__main__":
    main()
