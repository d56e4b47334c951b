"""helpers.tokens: OpenAI's documented numbers, snapshot resolution, the tile grid, prices, and the
properties that make pre-resizing safe (never upscale, idempotent, same token count)."""

from __future__ import annotations

import doctest
import math
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import tokens
from helpers.errors import CourseError, UnknownModelError
from helpers.models import DEFAULT_MODEL
from helpers.tokens import (
    DETAILS,
    constants_table,
    estimate_cost,
    image_tokens,
    known_models,
    model_cost,
    resolve_model,
    scaled_size,
    text_tokens,
    tile_grid,
)

TILE_MODELS = [m for m in known_models() if model_cost(m).family == "tile"]
PATCH_MODELS = [m for m in known_models() if model_cost(m).family == "patch"]
ALL_MODELS = known_models()

PROPERTY = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
sides = st.integers(min_value=1, max_value=12_000)
models = st.sampled_from(ALL_MODELS)
details = st.sampled_from([d for d in DETAILS if d != "original"])    # what every model takes
ORIGINAL_MODELS = [m for m in ALL_MODELS if "original" in model_cost(m).details]


# --- OpenAI's worked examples ---------------------------------------------------------------------

@pytest.mark.parametrize(("width", "height", "detail", "expected"), [
    (1024, 1024, "high", 765),    # 768 x 768 -> 4 tiles: 170*4 + 85
    (2048, 4096, "high", 1105),   # 1024 x 2048 -> 768 x 1536 -> 6 tiles
    (4096, 8192, "low", 85),      # low detail: the base, whatever the size
    (500, 1000, "high", 425),     # no resize; 1 x 2 tiles
])
def test_gpt4o_documented_examples(width, height, detail, expected):
    assert image_tokens(width, height, detail, "gpt-4o") == expected


def test_gpt4o_documented_intermediate_sizes():
    assert scaled_size(1024, 1024, "high", "gpt-4o") == (768, 768)
    assert scaled_size(2048, 4096, "high", "gpt-4o") == (768, 1536)
    assert scaled_size(500, 1000, "high", "gpt-4o") == (500, 1000)


@pytest.mark.parametrize(("model", "expected"), [
    ("gpt-4o-mini", 2833 + 4 * 5667),
    ("gpt-4.1", 85 + 4 * 170),
    ("o1", 75 + 4 * 150),
    ("o3", 75 + 4 * 150),
    ("gpt-5", 70 + 4 * 140),
])
def test_other_tile_models_use_their_own_constants(model, expected):
    assert image_tokens(1024, 1024, "high", model) == expected
    assert image_tokens(1024, 1024, "low", model) == model_cost(model).base_tokens


def test_documented_patch_examples_raw_patch_counts():
    # The guide's examples count patches before the multiplier: 1024 x 1024 -> 1024, 1800 x 2400 -> 1452.
    assert image_tokens(1024, 1024, model="any-patch-model", family="patch") == 1024
    assert image_tokens(1800, 2400, model="any-patch-model", family="patch") == 1452
    # The shrink of the documented example: r = 0.603 * 33/33.94 -> 1056 x 1408, i.e. 33 x 44 patches.
    assert scaled_size(1800, 2400, model="gpt-4.1-mini") == (1056, 1408)


@pytest.mark.parametrize(("model", "small", "large"), [
    ("gpt-4.1-mini", 1659, 2353),   # ceil(1024 * 1.62), ceil(1452 * 1.62 = 2352.24)
    ("gpt-4.1-nano", 2520, 3572),   # ceil(1024 * 2.46 = 2519.04), ceil(1452 * 2.46 = 3571.92)
    ("o4-mini", 1762, 2498),        # ceil(1024 * 1.72 = 1761.28), ceil(1452 * 1.72 = 2497.44)
    ("gpt-5.4-mini", 1229, 1743),   # measured 1.2: ceil(1228.8), ceil(1742.4)
    ("gpt-5-nano", 1536, 2178),     # measured 1.5
])
def test_patch_models_apply_their_multiplier_and_round_up(model, small, large):
    assert image_tokens(1024, 1024, "high", model) == small
    assert image_tokens(1800, 2400, "high", model) == large


def test_patch_multiplier_rounding_ignores_float_noise():
    # 1000 patches x 1.2 is 1200.0000000000002 in floating point; the bill is 1200, not 1201.
    assert image_tokens(40 * 32, 25 * 32, model="gpt-6-luna") == 1200


def test_patch_models_ignore_detail():
    for model in PATCH_MODELS:
        assert image_tokens(3000, 2000, "low", model) == image_tokens(3000, 2000, "high", model)


def test_auto_is_treated_as_high():
    for model in [m for m in ALL_MODELS if model_cost(m).auto_as == "high"]:
        assert image_tokens(1234, 987, "auto", model) == image_tokens(1234, 987, "high", model)
        assert scaled_size(1234, 987, "auto", model) == scaled_size(1234, 987, "high", model)


def test_low_detail_tile_image_fits_in_512_box():
    assert scaled_size(4096, 8192, "low", "gpt-4o") == (256, 512)
    assert scaled_size(300, 200, "low", "gpt-4o") == (300, 200)


def test_extreme_strips_never_get_a_zero_side():
    assert scaled_size(30000, 10, "high", "gpt-4o") == (2048, 1)
    assert image_tokens(30000, 10, "high", "gpt-4o") == 85 + 4 * 170
    assert scaled_size(10, 30000, "low", "gpt-4o") == (1, 512)
    # Patch family: the 2048-px maximum dimension applies first (938 x 1 patches would fit the budget).
    assert scaled_size(30000, 10, model="gpt-4.1-mini") == (2048, 1)
    # Where the documented shrink would round a side to zero patches, the strip keeps 1 px and the budget.
    w, h = scaled_size(200_000, 30, model="gpt-4.1-mini")
    assert h >= 1 and w <= 200_000
    assert math.ceil(w / 32) * math.ceil(h / 32) <= 1536


# OpenAI's "Images and vision" guide (VISION_GUIDE), patch family, statements as quoted in issue 15, checked
# 2026-12-02: `high` allows "up to 1,536 patches or a maximum dimension of 2048 px", and the image "is resized
# to fit the lesser of the two".
@pytest.mark.parametrize("width, height, model, patches", [
    (4000, 1474, "gpt-4.1-mini", 1536),   # guide: fits to 1536 patches (2048 x 755: 64 x 24)
    (100, 5000, "gpt-4.1-mini", 128),     # guide: 128 patches (41 x 2048: 2 x 64)
])
def test_patch_family_guide_examples_with_the_2048_px_maximum(width, height, model, patches):
    grid = tile_grid(width, height, "high", model)
    assert len(grid.tiles) == patches
    assert max(grid.size) <= 2048
    assert image_tokens(width, height, "high", model) == math.ceil(round(patches * model_cost(model).multiplier, 6))


def test_patch_family_longest_side_never_exceeds_2048():
    for model in [m for m in PATCH_MODELS if model_cost(m).patch_budget == 1536]:
        assert scaled_size(30000, 10, model=model) == (2048, 1)     # a strip is no longer sent 30000 px wide
        assert scaled_size(4000, 1024, model=model) == (2048, 524)  # the widget's example: not 2375 x 608
        assert scaled_size(1800, 2400, model=model) == (1056, 1408)  # the guide's budget example is unchanged


# The guide's "Model sizing behavior" table (stored markdown copy of images-vision, checked 2026-12-02).
def test_gpt54_and_gpt55_high_is_2500_patches_or_2048_px():
    for model in ("gpt-5.4", "gpt-5.5"):
        assert model_cost(model).patch_budget == 2500
        assert scaled_size(1600, 1600, "high", model) == (1600, 1600)          # 50 x 50 = 2500: fits exactly
        w, h = scaled_size(4000, 3000, "high", model)
        assert max(w, h) <= 2048 and math.ceil(w / 32) * math.ceil(h / 32) <= 2500
        assert scaled_size(30000, 10, "high", model) == (2048, 1)


def test_gpt54_and_gpt55_original_is_10000_patches_or_6000_px():
    for model in ("gpt-5.4", "gpt-5.5"):
        assert scaled_size(3200, 3200, "original", model) == (3200, 3200)      # 100 x 100 = 10,000: fits
        assert len(tile_grid(3200, 3200, "original", model).tiles) == 10_000
        assert scaled_size(30000, 10, "original", model) == (6000, 2)           # the 6000-px maximum dimension
        w, h = scaled_size(8000, 3000, "original", model)
        assert max(w, h) <= 6000 and math.ceil(w / 32) * math.ceil(h / 32) <= 10_000
        assert image_tokens(8000, 3000, "original", model) > image_tokens(8000, 3000, "high", model)


def test_auto_is_high_on_gpt54_and_original_on_gpt55_and_gpt56():
    assert scaled_size(5000, 4000, "auto", "gpt-5.4") == scaled_size(5000, 4000, "high", "gpt-5.4")
    assert scaled_size(5000, 4000, "auto", "gpt-5.5") == scaled_size(5000, 4000, "original", "gpt-5.5")
    # GPT-5.6: `original` (and so `auto`) "preserves the input dimensions".
    assert scaled_size(5000, 4000, "auto", "gpt-5.6-luna") == (5000, 4000)
    assert scaled_size(5000, 4000, "original", "gpt-5.6-sol") == (5000, 4000)


def test_original_only_where_the_guide_documents_it():
    takes = sorted(m for m in ALL_MODELS if "original" in model_cost(m).details)
    # "Available on gpt-5.4 and future models" (the guide, checked 2026-12-07): GPT-6 included.
    assert takes == sorted(["gpt-5.4", "gpt-5.5", "gpt-5.6-sol", "gpt-5.6-terra", "gpt-5.6-luna", "gpt-6-astra",
                            "gpt-6.2-astra", "gpt-6-sol", "gpt-6.1-sol", "gpt-6.2-sol", "gpt-6.1-terra", "gpt-6-luna"])
    for model in ("gpt-4o", "gpt-4.1-mini", "gpt-5.4-mini", "gpt-5.2", "o3"):
        with pytest.raises(CourseError, match="does not take detail='original'"):
            image_tokens(1000, 1000, "original", model)
        with pytest.raises(CourseError):
            tokens.check_detail("original", model)
    with pytest.raises(CourseError):
        scaled_size(1000, 1000, "original", "my-llava", family="patch")
    assert tokens.check_detail("original") == "original"      # a value the API's types take


@PROPERTY
@given(width=sides, height=sides, model=st.sampled_from(ORIGINAL_MODELS))
def test_original_is_idempotent_never_upscales_and_costs_at_least_high(width, height, model):
    w, h = scaled_size(width, height, "original", model)
    assert 1 <= w <= width and 1 <= h <= height
    assert scaled_size(w, h, "original", model) == (w, h)
    assert image_tokens(w, h, "original", model) == image_tokens(width, height, "original", model)
    assert image_tokens(width, height, "original", model) >= image_tokens(width, height, "high", model)


def test_detail_values_are_the_sdks():
    from typing import get_args, get_type_hints

    from openai.types.chat.chat_completion_content_part_image_param import ImageURL
    assert set(tokens.DETAILS) == set(get_args(get_type_hints(ImageURL)["detail"]))


def test_bigger_image_can_cost_fewer_tokens_as_documented():
    # Both documented algorithms can make a larger image cheaper; the course teaches this, so pin it.
    assert image_tokens(700, 1600, "high", "gpt-4o") == 1445     # 2 x 4 tiles, no resize
    assert image_tokens(800, 1600, "high", "gpt-4o") == 1105     # scaled to 768 x 1536: 2 x 3 tiles
    assert image_tokens(1470, 1029, model="gpt-4.1-mini") > image_tokens(1500, 1050, model="gpt-4.1-mini")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="detail"):
        image_tokens(100, 100, "medium")
    with pytest.raises(ValueError, match="width"):
        scaled_size(0, 100)
    with pytest.raises(ValueError, match="height"):
        image_tokens(100, -5)
    with pytest.raises(ValueError):
        image_tokens(100.5, 100)  # type: ignore[arg-type]


# --- model names --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "expected"), [
    ("gpt-4o-2024-08-06", "gpt-4o"),
    ("gpt-4o-2024-11-20", "gpt-4o"),
    ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
    ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
    ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
    ("gpt-4.1-2025-04-14", "gpt-4.1"),
    ("gpt-4-turbo-2024-04-09", "gpt-4-turbo"),
    ("o4-mini-2025-04-16", "o4-mini"),
    ("gpt-5-mini-2025-08-07", "gpt-5-mini"),
    ("gpt-5.4-mini-2026-03-17", "gpt-5.4-mini"),
    ("gpt-4.5-preview", "gpt-4.5"),
    ("gpt-4-vision-preview", "gpt-4-turbo"),
    ("gpt-4 vision-preview", "gpt-4-turbo"),
    ("openai/gpt-4o", "gpt-4o"),
    ("  GPT-4o-Mini ", "gpt-4o-mini"),
])
def test_snapshots_and_spellings_resolve(name, expected):
    assert resolve_model(name) == expected
    assert model_cost(name).name == expected


def test_longest_prefix_never_falls_back_to_a_shorter_model():
    assert model_cost("gpt-4o-mini").base_tokens == 2833          # not gpt-4o's 85
    assert model_cost("gpt-4.1-mini").family == "patch"            # not gpt-4.1's tiles
    assert resolve_model("gpt-4o-audio-preview") is None           # a suffix that is not a date
    assert resolve_model("o1-preview") is None                     # a different (text-only) model


def test_unknown_model_error_lists_the_known_models():
    with pytest.raises(UnknownModelError) as info:
        model_cost("llava-13b")
    message = str(info.value)
    assert "llava-13b" in message
    for name in ("gpt-4o", "gpt-4.1-mini", DEFAULT_MODEL):
        assert name in message
    assert "family=" in message                       # says what to do
    assert isinstance(info.value, ValueError) and isinstance(info.value, CourseError)
    with pytest.raises(UnknownModelError):
        image_tokens(100, 100, model="llava-13b")


def test_family_fallback_uses_documented_defaults():
    assert image_tokens(1024, 1024, "high", "llava-13b", family="tile") == 765
    assert image_tokens(1024, 1024, "low", "llava-13b", family="tile") == 85
    assert image_tokens(1024, 1024, "high", "llava-13b", family="patch") == 1024
    assert model_cost("llava-13b", family="patch").input_per_million is None
    # A known model keeps its own numbers whatever family says.
    assert model_cost("gpt-4o", family="patch").family == "tile"
    with pytest.raises(UnknownModelError, match="family"):
        model_cost("llava-13b", family="pixels")


def test_model_none_means_the_course_default():
    assert model_cost(None).name == DEFAULT_MODEL
    assert image_tokens(640, 480, model=None) == image_tokens(640, 480, model=DEFAULT_MODEL)


# --- tile grid ----------------------------------------------------------------------------------

def _covers_exactly(grid) -> bool:
    w, h = grid.size
    area = sum((x1 - x0) * (y1 - y0) for x0, y0, x1, y1 in grid.tiles)
    inside = all(0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h for x0, y0, x1, y1 in grid.tiles)
    return inside and area == w * h and len(set(grid.tiles)) == len(grid.tiles)


def test_tile_grid_of_the_documented_examples():
    grid = tile_grid(2048, 4096, "high", "gpt-4o")
    assert grid.size == (768, 1536) and (grid.columns, grid.rows) == (2, 3)
    assert grid.tiles[0] == (0, 0, 512, 512) and grid.tiles[-1] == (512, 1024, 768, 1536)
    assert grid.tokens == 1105 and _covers_exactly(grid)
    low = tile_grid(4096, 8192, "low", "gpt-4o")
    assert low.tiles == () and low.tokens == 85


@PROPERTY
@given(width=st.integers(1, 6000), height=st.integers(1, 6000), model=st.sampled_from(TILE_MODELS),
       detail=details)
def test_tile_grid_matches_image_tokens_for_tile_models(width, height, model, detail):
    grid = tile_grid(width, height, detail, model)
    assert grid.size == scaled_size(width, height, detail, model)
    assert len(grid.tiles) * grid.tile_tokens + grid.base_tokens == image_tokens(width, height, detail, model)
    assert grid.tokens == image_tokens(width, height, detail, model)
    if grid.tiles:
        assert _covers_exactly(grid) and grid.columns * grid.rows == len(grid.tiles)


@PROPERTY
@given(width=st.integers(1, 4000), height=st.integers(1, 4000), model=st.sampled_from(PATCH_MODELS))
def test_tile_grid_matches_image_tokens_for_patch_models(width, height, model):
    grid = tile_grid(width, height, "high", model)
    assert grid.tile_size == 32 and _covers_exactly(grid)
    assert math.ceil(round(len(grid.tiles) * grid.multiplier, 6)) == image_tokens(width, height, "high", model)
    assert len(grid.tiles) <= model_cost(model).patch_budget


# --- properties that make pre-resizing safe -----------------------------------------------------

@PROPERTY
@given(width=sides, height=sides, model=models, detail=details)
def test_scaled_size_never_upscales_and_never_has_a_zero_side(width, height, model, detail):
    w, h = scaled_size(width, height, detail, model)
    assert 1 <= w <= width and 1 <= h <= height


@PROPERTY
@given(width=st.integers(1, 300_000), height=st.integers(1, 40), model=models, detail=details)
def test_strips_keep_at_least_one_pixel(width, height, model, detail):
    w, h = scaled_size(width, height, detail, model)
    assert 1 <= w <= width and 1 <= h <= height
    assert scaled_size(w, h, detail, model) == (w, h)


@PROPERTY
@given(width=sides, height=sides, model=models, detail=details)
def test_scaled_size_is_idempotent_and_resizing_keeps_the_token_count(width, height, model, detail):
    once = scaled_size(width, height, detail, model)
    assert scaled_size(*once, detail, model) == once
    assert image_tokens(*once, detail, model) == image_tokens(width, height, detail, model)


@PROPERTY
@given(width=sides, height=sides, model=models)
def test_low_never_costs_more_than_high(width, height, model):
    assert image_tokens(width, height, "low", model) <= image_tokens(width, height, "high", model)


@PROPERTY
@given(w1=sides, h1=sides, dw=st.integers(0, 3000), dh=st.integers(0, 3000), model=models)
def test_tokens_never_decrease_when_both_sides_grow_without_downscaling(w1, h1, dw, dh, model):
    # Monotonic while the model keeps the larger image as it is. (With downscaling, a larger image can
    # cost less: see test_bigger_image_can_cost_fewer_tokens_as_documented.)
    w2, h2 = w1 + dw, h1 + dh
    if scaled_size(w2, h2, "high", model) == (w2, h2):
        assert image_tokens(w1, h1, "high", model) <= image_tokens(w2, h2, "high", model)


@PROPERTY
@given(width=st.integers(1, 3000), height=st.integers(1, 3000), factor=st.integers(2, 8),
       model=st.sampled_from(TILE_MODELS))
def test_tile_tokens_never_decrease_when_the_same_picture_is_enlarged(width, height, factor, model):
    assert image_tokens(width, height, "high", model) <= image_tokens(width * factor, height * factor,
                                                                       "high", model)


@PROPERTY
@given(width=sides, height=sides, model=models)
def test_tokens_are_bounded_by_the_documented_caps(width, height, model):
    cost = model_cost(model)
    tokens = image_tokens(width, height, "high", model)
    if cost.family == "tile":          # at most 2048 x 768 after scaling: 4 x 2 tiles
        assert cost.base_tokens + cost.tile_tokens <= tokens <= cost.base_tokens + 8 * cost.tile_tokens
    else:
        assert 1 <= tokens <= math.ceil(cost.patch_budget * cost.multiplier)


# --- prices -------------------------------------------------------------------------------------

def test_estimate_cost_arithmetic():
    assert estimate_cost("gpt-4o", 1_000_000, 1_000_000) == pytest.approx(12.5)
    assert estimate_cost("gpt-4o", 765) == pytest.approx(765 * 2.50 / 1_000_000)
    assert estimate_cost("gpt-4o-2024-08-06", 1000, 500) == pytest.approx((1000 * 2.5 + 500 * 10) / 1e6)
    assert estimate_cost("gpt-4.1-mini", 0, 0) == 0.0
    default = model_cost(DEFAULT_MODEL)
    assert estimate_cost(None, 2000, 100) == pytest.approx(
        (2000 * default.input_per_million + 100 * default.output_per_million) / 1e6)


def test_gpt4o_mini_images_cost_more_than_gpt4o_images():
    # The surprise the notes describe: ~33x the tokens at ~1/17 of the price.
    mini = estimate_cost("gpt-4o-mini", image_tokens(1024, 1024, model="gpt-4o-mini"))
    full = estimate_cost("gpt-4o", image_tokens(1024, 1024, model="gpt-4o"))
    assert 1.5 < mini / full < 2.5


def test_estimate_cost_refuses_bad_counts_and_unknown_models():
    with pytest.raises(ValueError):
        estimate_cost("gpt-4o", -1)
    with pytest.raises(ValueError):
        estimate_cost("gpt-4o", 10, 2.5)  # type: ignore[arg-type]
    with pytest.raises(UnknownModelError):
        estimate_cost("llava-13b", 10)


# --- text tokens --------------------------------------------------------------------------------

ENGLISH = ("Image inputs are metered and charged in tokens, just as text inputs are. The token cost of a "
           "given image is determined by two factors: its size, and the detail option on each image_url "
           "block. All images with detail low cost a fixed number of tokens each, whatever their size.")


def test_text_tokens_english_is_about_four_characters_per_token():
    ratio = len(ENGLISH) / text_tokens(ENGLISH)
    assert 3.5 <= ratio <= 5.0


def test_text_tokens_cjk_takes_fewer_tokens_than_characters_on_o200k():
    chinese = "图像输入和文本输入一样按令牌计量和收费。"
    assert text_tokens(chinese) < len(chinese)                      # o200k has many multi-character CJK tokens
    assert text_tokens(chinese, "gpt-4") > text_tokens(chinese)    # cl100k has far fewer


def test_text_tokens_are_the_published_tiktoken_counts():
    """Issue 10: exact, offline. Ids published from OpenAI's tiktoken (checked 2026-12-02): o200k_base
    "I can do this all day" -> [40, 665, 621, 495, 722, 2163] (github.com/shibaprasadjena12/gen-ai-training,
    tokenization.py); cl100k_base "tiktoken is great!" -> [83, 1609, 5963, 374, 2294, 0] (OpenAI Cookbook, "How
    to count tokens with tiktoken"); "hello world" -> [24912, 2375] (o200k) and [15339, 1917] (cl100k)."""
    from helpers.tokens import _encoding

    assert _encoding("o200k_base").encode_ordinary("I can do this all day") == [40, 665, 621, 495, 722, 2163]
    assert _encoding("cl100k_base").encode_ordinary("tiktoken is great!") == [83, 1609, 5963, 374, 2294, 0]
    assert text_tokens("hello world", "gpt-4o") == text_tokens("hello world", "gpt-4-turbo") == 2
    assert text_tokens("tiktoken is great!", "gpt-4") == 6


def test_text_tokens_basics():
    assert text_tokens("") == 0
    assert text_tokens("cat") == 1
    assert text_tokens(" cat" * 50) == 50
    assert text_tokens(ENGLISH + " " + ENGLISH) == 2 * text_tokens(ENGLISH)
    with pytest.raises(TypeError):
        text_tokens(b"bytes")  # type: ignore[arg-type]


def test_text_tokens_of_long_text_are_counted_in_pieces_without_loss():
    """bpe-openai encodes at most 1,000,000 characters a call; 3 MB of prose is cut at spaces and adds up."""
    sentence = " The quick brown fox jumps over the lazy dog."        # a word takes its leading space along
    assert text_tokens(sentence * 70_000) == 70_000 * text_tokens(sentence) == 700_000


# --- the table the cost notebook shows ----------------------------------------------------------

REQUIRED = ["gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4.5", "gpt-4-turbo", "o1",
            "o3", "o4-mini", "gpt-5", "gpt-5-mini", "gpt-5-nano", "gpt-6-luna"]


def test_constants_table_covers_the_models_learners_meet():
    names = [row["model"] for row in constants_table()]
    for name in REQUIRED + [DEFAULT_MODEL]:
        assert name in names
    assert [row["model"] for row in constants_table() if row["default"]] == [DEFAULT_MODEL]


def test_every_constant_has_a_source_a_date_and_a_reason_when_not_documented():
    for row in constants_table():
        assert re.match(r"https?://", row["source"]), row
        assert re.match(r"https?://", row["prices_source"]), row
        assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", row["checked"]), row
        assert row["evidence"] in ("documented", "measured", "estimate")
        assert row["input_per_million"] > 0 and row["output_per_million"] > 0
        if row["evidence"] != "documented":
            assert row["note"], row
        if row["family"] == "patch":
            assert row["multiplier"] > 0 and row["patch_budget"] in (1536, 2500) and row["max_side"] == 2048
        else:
            assert row["base"] > 0 and row["tile"] > 0


def test_table_says_which_multiplier_it_uses_where_docs_and_billing_disagree():
    row = next(r for r in constants_table() if r["model"] == "gpt-5-mini")
    assert (row["multiplier"], row["documented_multiplier"], row["evidence"]) == (1.2, 1.62, "measured")
    assert "1.62" in row["note"] and "1.2" in row["note"]


def test_docstring_examples_run():
    assert doctest.testmod(tokens).failed == 0


def test_patch_shrink_applies_when_only_edge_patches_push_over_the_budget():
    # 1332x1179 needs 42x37 = 1554 raw patches, so it must shrink, although r = sqrt(32^2*1536/(w*h)) > 1.
    # The guide's second step (fit whole patches) gives 1301x1152 = 41x36 = 1476 patches.
    assert scaled_size(1332, 1179, "high", model="gpt-4.1-mini") == (1301, 1152)
    assert image_tokens(1332, 1179, "high", model="gpt-4.1-mini") == math.ceil(1476 * 1.62)


def test_the_configured_azure_deployment_is_costed_as_the_model_behind_it(monkeypatch):
    # setup() returns the deployment name on Azure; cost maths with that name must use VISION_MODEL.
    from helpers import client

    for name, value in {"VISION_PROVIDER": "azure", "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com",
                        "AZURE_OPENAI_API_KEY": "0123456789abcdef" * 2, "AZURE_OPENAI_API_VERSION": "2024-10-21",
                        "AZURE_OPENAI_DEPLOYMENT": "team-vision", "VISION_MODEL": "gpt-4o"}.items():
        monkeypatch.setenv(name, value)
    _, model = client.setup(verbose=False)                 # the real path: setup() resolves the settings once
    assert model == "team-vision"
    assert model_cost(model).name == "gpt-4o"
    assert image_tokens(1024, 1024, "high", model="team-vision") == 765
    with pytest.raises(UnknownModelError):
        model_cost("another-deployment")
    client.clear_clients()
    with pytest.raises(UnknownModelError):                 # forgotten with the settings
        model_cost("team-vision")


def test_gpt54_uses_the_measured_multiplier_and_gpt55_borrows_it():
    # Community billing measurements [c] give x1.2 for gpt-5.4 (the guide lists none; the course assumed 1.0).
    assert (model_cost("gpt-5.4").multiplier, model_cost("gpt-5.4").evidence) == (1.2, "measured")
    assert (model_cost("gpt-5.5").multiplier, model_cost("gpt-5.5").evidence) == (1.2, "estimate")
    assert image_tokens(1024, 1024, "high", "gpt-5.4") == 1229                     # 1024 patches x 1.2


def test_auto_on_gpt6_follows_the_newest_documented_family():
    for model in ("gpt-6-luna", "gpt-6.2-astra"):
        assert model_cost(model).auto_as == "original" and model_cost(model).evidence == "estimate"
        assert image_tokens(3000, 3000, "auto", model) == image_tokens(3000, 3000, "original", model)
