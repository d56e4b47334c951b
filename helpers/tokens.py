"""How many tokens an image costs, what a request costs in dollars, and the tiles a model sees.

OpenAI bills an image as input tokens, in one of two documented ways ("families"):

* **tile** (gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.5, gpt-4-turbo, o1, o3, gpt-5): with ``detail="high"``
  the image is scaled to fit inside 2048 x 2048, then scaled so its *shortest* side is 768 px (only ever
  down), then cut into 512 x 512 tiles. Tokens = ``base + tile x tiles``. ``detail="low"`` costs ``base``
  whatever the size (the model sees a version that fits in 512 x 512).
* **patch** (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano, gpt-5.4-mini and newer): the
  image is cut into 32 x 32 patches; if more than 1536 are needed it is scaled down with OpenAI's
  documented shrink factor. Tokens = ``ceil(patches x multiplier)``; ``detail`` makes no difference.

Every constant carries its source and the date it was checked; :func:`constants_table` shows them, and
each row says whether its numbers are documented by OpenAI, measured from billing, or an estimate.

Two things that surprise people, both true of OpenAI's documented algorithms: a *bigger* image can cost
*fewer* tokens (gpt-4o: 700 x 1600 costs 1445 tokens, 800 x 1600 costs 1105, because the second is scaled
to 768 x 1536); and resizing an image to :func:`scaled_size` before sending it never changes its cost.

>>> image_tokens(1024, 1024, "high", "gpt-4o")
765
>>> scaled_size(2048, 4096, "high", "gpt-4o")
(768, 1536)

Taught in notebooks/04_detail_levels.ipynb and notebooks/06_cost_math.ipynb.
"""

from __future__ import annotations

import math
import re
import unicodedata
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Literal

from helpers import models
from helpers.errors import InvalidDetailError, UnknownModelError

Family = Literal["tile", "patch"]
Detail = Literal["low", "high", "auto"]

DETAILS: tuple[str, ...] = ("low", "high", "auto")

# --- where the numbers come from -----------------------------------------------------------------------
CHECKED = "2026-11-21"
#: OpenAI's "Images and vision" guide, section "Calculating costs" (tile and patch algorithms, constants).
VISION_GUIDE = "https://developers.openai.com/api/docs/guides/images-vision#calculating-costs"
#: OpenAI's pricing page (USD per 1M tokens, standard tier). Its vision calculator is in the FAQ.
PRICING = "https://developers.openai.com/api/docs/pricing"
#: Community billing measurements (image tokens backed out of `usage`, Chat Completions and Responses).
MEASURED_GPT5_MINI = ("https://community.openai.com/t/gpt-5-mini-image-input-token-calculation-discrepancy-"
                      "with-official-faq-formula/1344040")
MEASURED_GPT54_MINI = ("https://community.openai.com/t/introducing-gpt-5-4-mini-and-nano-our-most-capable-"
                       "small-models-yet/1377015")
#: A third-party token calculator's profile for GPT-5.6/GPT-6 (32-px patches x 1.2); no OpenAI page found.
ESTIMATE_GPT6 = "https://docs.rs/vision-squeezer/0.6.2/vision_squeezer/enum.VisionModel.html"

# Tile family geometry (VISION_GUIDE, checked 2026-11-21).
TILE_FIT = 2048          # fit within 2048 x 2048 first
TILE_SHORT_SIDE = 768    # then the shortest side is brought down to 768 (never up)
TILE_SIZE = 512          # then count 512 x 512 tiles
LOW_DETAIL_BOX = 512     # detail="low": the model sees a version that fits in 512 x 512

# Patch family geometry (VISION_GUIDE, checked 2026-11-21).
PATCH_SIZE = 32
PATCH_BUDGET = 1536

Evidence = Literal["documented", "measured", "estimate"]


@dataclass(frozen=True)
class ModelCost:
    """The image-token constants and prices of one model, with where each number comes from.

    Tile family: ``base_tokens`` + ``tile_tokens`` per 512-px tile. Patch family: ``ceil(patches x
    multiplier)`` with at most ``patch_budget`` patches. ``multiplier`` is the number this module USES;
    ``documented_multiplier`` is what OpenAI's guide says when that differs (or None if not documented).
    ``evidence`` says where the used numbers come from: "documented" (OpenAI's guide), "measured" (billing
    measurements that contradict or go beyond the guide), or "estimate" (no OpenAI documentation found).
    Prices are USD per million tokens (standard tier); a retired model keeps its last list price.

    >>> model_cost("gpt-4o").tile_tokens
    170
    """

    name: str
    family: Family
    base_tokens: int
    tile_tokens: int
    multiplier: float
    input_per_million: float | None
    output_per_million: float | None
    source: str
    checked: str
    patch_budget: int = PATCH_BUDGET
    documented_multiplier: float | None = None
    evidence: Evidence = "documented"
    note: str = ""
    prices_source: str = PRICING
    aliases: tuple[str, ...] = field(default=())


def _tile(name: str, base: int, tile: int, inp: float | None, out: float | None, *, note: str = "",
          aliases: tuple[str, ...] = (), prices_source: str = PRICING) -> ModelCost:
    return ModelCost(name, "tile", base, tile, 1.0, inp, out, VISION_GUIDE, CHECKED, note=note,
                     prices_source=prices_source, aliases=aliases)


def _patch(name: str, multiplier: float, inp: float | None, out: float | None, *,
           documented: float | None = None, evidence: Evidence = "documented", source: str = VISION_GUIDE,
           note: str = "", aliases: tuple[str, ...] = (), prices_source: str = PRICING) -> ModelCost:
    if evidence == "documented":
        documented = multiplier
    return ModelCost(name, "patch", 0, 0, multiplier, inp, out, source, CHECKED, PATCH_BUDGET, documented,
                     evidence, note, prices_source, aliases)


_RETIRED = "Shut down (see helpers.models); kept so old notebooks and the seeds can be costed."
_THIRD_PARTY_PRICE = "third-party listings quoting OpenAI's pricing table"

# Prices: USD per 1M input / output tokens, standard tier, checked 2026-11-21.
_MODELS: tuple[ModelCost, ...] = (
    _tile("gpt-4o", 85, 170, 2.50, 10.00, note="The model of OpenAI's worked examples. Shuts down 2027-01-14."),
    _tile("gpt-4o-mini", 2833, 5667, 0.15, 0.60,
          note="~33x gpt-4o's image tokens at ~1/17 of the price: an image costs about twice as much as on "
               "gpt-4o. Shuts down 2027-01-14."),
    _tile("gpt-4.1", 85, 170, 2.00, 8.00, note="Shuts down 2027-01-14."),
    _tile("gpt-4.5", 85, 170, 75.00, 150.00, aliases=("gpt-4.5-preview",), note=_RETIRED),
    _tile("gpt-4-turbo", 85, 170, 10.00, 30.00, aliases=("gpt-4-vision-preview", "gpt-4-1106-vision-preview"),
          note="Same constants and price as the retired gpt-4-vision-preview of the 2023 seeds. " + _RETIRED),
    _tile("o1", 75, 150, 15.00, 60.00, note=_RETIRED),
    _tile("o3", 75, 150, 2.00, 8.00, note="Price after OpenAI's June 2025 cut. Shuts down 2026-12-11."),
    _tile("gpt-5", 70, 140, 1.25, 10.00, aliases=("gpt-5-chat-latest",), note="Shuts down 2026-12-11."),
    _patch("gpt-4.1-mini", 1.62, 0.40, 1.60,
           note="Guide and billing agree (1800x2400: 2352.24 by formula, ~2362 billed with the prompt). "
                "Shuts down 2027-01-14."),
    _patch("gpt-4.1-nano", 2.46, 0.10, 0.40, note=_RETIRED),
    _patch("o4-mini", 1.72, 1.10, 4.40, note=_RETIRED),
    _patch("gpt-5-mini", 1.2, 0.25, 2.00, documented=1.62, evidence="measured", source=MEASURED_GPT5_MINI,
           note="Uses 1.2, not the guide's 1.62: OpenAI's own vision calculator on the pricing page uses 1.2 "
                "and billed usage matches it. Shuts down 2026-12-11."),
    _patch("gpt-5-nano", 1.5, 0.05, 0.40, documented=2.46, evidence="measured", source=MEASURED_GPT5_MINI,
           note="Uses 1.5, not the guide's 2.46: OpenAI's pricing-page calculator and billed usage agree on "
                "1.5. Shuts down 2026-12-11."),
    _patch("gpt-5.4-mini", 1.2, 0.75, 4.50, documented=1.62, evidence="measured", source=MEASURED_GPT54_MINI,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="The course default. Listed in the guide's patch table (1536-patch budget, x1.62); billing "
                "measurements give x1.2, which we use. Measurements of the budget disagree (1536 on Chat "
                "Completions, up to 2500 reported on Responses); we keep the documented 1536."),
    _patch("gpt-5.4-nano", 1.2, 0.20, 1.25, evidence="measured", source=MEASURED_GPT54_MINI,
           prices_source=f"https://openrouter.ai/openai/gpt-5.4-nano ({_THIRD_PARTY_PRICE})",
           note="Multiplier from billing measurements (x1.2); the guide's value for this model was not "
                "confirmed. Budget: the documented 1536."),
    _patch("gpt-5.6-sol", 1.2, 4.00, 20.00, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE}; launch price reported as 2.50/15.00)",
           note="No OpenAI documentation of its image tokens found: estimate (32-px patches x1.2, 1536 budget)."),
    _patch("gpt-5.6-terra", 1.2, 2.00, 12.00, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="No OpenAI documentation of its image tokens found: estimate (32-px patches x1.2, 1536 budget)."),
    _patch("gpt-5.6-luna", 1.2, 0.20, 1.20, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="No OpenAI documentation of its image tokens found: estimate (32-px patches x1.2, 1536 budget)."),
    _patch("gpt-6-sol", 1.2, 2.00, 10.00, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="No OpenAI documentation of its image tokens found: estimate (32-px patches x1.2, 1536 budget)."),
    _patch("gpt-6-luna", 1.2, 0.10, 0.50, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"https://vercel.com/ai-gateway/models/gpt-6-luna ({_THIRD_PARTY_PRICE})",
           note="Cheapest current vision model (released 2026-09-22) and OpenAI's replacement for gpt-4o and "
                "gpt-4.1(-mini). No OpenAI documentation of its image tokens found: estimate (32-px patches "
                "x1.2, 1536 budget)."),
)

#: Defaults used with ``family=`` for a model the table does not know (documented in :func:`model_cost`).
FAMILY_DEFAULTS: dict[str, ModelCost] = {
    "tile": ModelCost("(unknown tile model)", "tile", 85, 170, 1.0, None, None, VISION_GUIDE, CHECKED,
                      note="gpt-4o's documented constants: the most widely used tile-family numbers."),
    "patch": ModelCost("(unknown patch model)", "patch", 0, 0, 1.0, None, None, VISION_GUIDE, CHECKED,
                       note="The raw patch count (multiplier 1.0) with the documented 1536-patch budget; "
                            "known models multiply it by 1.2 to 2.46."),
}

_BY_NAME: dict[str, ModelCost] = {}
for _row in _MODELS:
    _BY_NAME[_row.name] = _row
    for _alias in _row.aliases:
        _BY_NAME[_alias] = _row

# A dated snapshot of a known model: "-2024-08-06" or "-0613". Nothing else, so "gpt-4o-mini" never
# resolves to "gpt-4o" and "o1-preview" (text only) does not pass for "o1".
_SNAPSHOT_SUFFIX = re.compile(r"(?:-(?:\d{4}-\d{2}-\d{2}|\d{4}))+")


def known_models() -> list[str]:
    """The model names the cost tables know (canonical names, not aliases).

    >>> "gpt-4o" in known_models()
    True
    """
    return [row.name for row in _MODELS]


def resolve_model(model: str) -> str | None:
    """The table name a model (or a dated snapshot of it) resolves to, or None.

    Longest known prefix followed only by a date suffix, so ``gpt-4o-mini-2024-07-18`` resolves to
    ``gpt-4o-mini`` (never to ``gpt-4o``) and ``gpt-4.1-mini-2025-04-14`` to ``gpt-4.1-mini``.

    >>> resolve_model("gpt-4o-2024-08-06")
    'gpt-4o'
    """
    if not isinstance(model, str):
        return None
    name = models.hyphenated(model)
    if name in _BY_NAME:
        return _BY_NAME[name].name
    for known in sorted(_BY_NAME, key=len, reverse=True):
        if name.startswith(known) and _SNAPSHOT_SUFFIX.fullmatch(name[len(known):]):
            return _BY_NAME[known].name
    return None


def is_known_model(name: str) -> bool:
    """True if the cost tables know ``name`` (dated snapshots and gateway prefixes included).

    >>> is_known_model("openai/gpt-4o-2024-08-06"), is_known_model("my-vision")
    (True, False)
    """
    return resolve_model(name) is not None


def model_cost(model: str | None = None, family: str | None = None) -> ModelCost:
    """The image-token constants and prices of ``model`` (dated snapshots resolve to their model).

    ``model=None`` means the configured model (``VISION_MODEL``, else ``helpers.models.DEFAULT_MODEL``). A model the table does not
    know raises :class:`~helpers.errors.UnknownModelError` listing the known ones, unless ``family`` is
    given: then that family's defaults are used, with no prices. Tile defaults: gpt-4o's 85 + 170 per
    tile. Patch defaults: the raw patch count (multiplier 1.0) with the documented 1536-patch budget.
    A known model ignores ``family``. The configured Azure deployment name counts as the model behind it
    (``VISION_MODEL``, recorded by ``setup()`` in :func:`helpers.models.use_model`), so ``image_tokens(w, h, model=model)`` works with the ``model`` that ``setup()`` returns.

    >>> model_cost("gpt-4.1-mini-2025-04-14").name
    'gpt-4.1-mini'
    >>> model_cost("my-local-llava", family="tile").base_tokens
    85

    Taught in notebooks/06_cost_math.ipynb.
    """
    if model is None:
        model = models.configured_model()
    resolved = resolve_model(model) or resolve_model(models.model_behind(model))
    if resolved is not None:
        return _BY_NAME[resolved]
    if family is not None:
        if family not in FAMILY_DEFAULTS:
            raise UnknownModelError(f"family={family!r} is not a token-accounting family.",
                                    fix="pass family='tile' or family='patch'.")
        return FAMILY_DEFAULTS[family]
    raise UnknownModelError(
        f"The token-cost tables do not know the model {model!r}. Known: {', '.join(known_models())}.",
        fix="pass one of those names (dated snapshots such as gpt-4o-2024-08-06 work too), or "
            "family='tile' or family='patch' to use that family's defaults.")


# --- geometry -----------------------------------------------------------------------------------------

def _check_size(width: int, height: int) -> tuple[int, int]:
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive whole number of pixels, got {value!r}.")
    return width, height


def check_detail(detail: object) -> str:
    """``detail`` itself if it is a level the API takes, else :class:`~helpers.errors.InvalidDetailError`.

    The one check of detail levels in the course (requests, image preparation, token maths).

    >>> check_detail("low")
    'low'
    """
    if not isinstance(detail, str) or detail not in DETAILS:
        raise InvalidDetailError(f"detail must be one of {', '.join(DETAILS)}; got {detail!r}.",
                                 code="invalid_detail",
                                 fix="use detail='low' (one small version), 'high' (full resolution) or 'auto'.")
    return detail


def _check_detail(detail: object) -> str:
    """The level that decides the size: ``auto`` counts as ``high``."""
    level = check_detail(detail)
    return "high" if level == "auto" else level


def _scale_exact(width: int, height: int, scale: Fraction) -> tuple[int, int]:
    """Scale by an exact fraction <= 1, rounding half up, never below 1 px."""
    def one(side: int) -> int:
        return max(1, math.floor(side * scale + Fraction(1, 2)))
    return one(width), one(height)


def _fit_box(width: int, height: int, box: int) -> tuple[int, int]:
    longest = max(width, height)
    if longest <= box:
        return width, height
    return _scale_exact(width, height, Fraction(box, longest))


def _tile_high(width: int, height: int) -> tuple[int, int]:
    # Exact arithmetic: fit within TILE_FIT, then shortest side down to TILE_SHORT_SIDE, one rounding.
    scale = Fraction(1)
    if max(width, height) > TILE_FIT:
        scale = Fraction(TILE_FIT, max(width, height))
    shortest = min(width, height) * scale
    if shortest > TILE_SHORT_SIDE:
        scale *= TILE_SHORT_SIDE / shortest
    return (width, height) if scale == 1 else _scale_exact(width, height, scale)


def _patches(width: int, height: int) -> int:
    return math.ceil(width / PATCH_SIZE) * math.ceil(height / PATCH_SIZE)


def _patch_fit(width: int, height: int, budget: int) -> tuple[int, int]:
    if _patches(width, height) <= budget:
        return width, height
    # OpenAI's documented shrink: r = sqrt(32^2 * budget / (w*h)), then shrunk further so that
    # floor(w*r/32) and floor(h*r/32) whole patches fit.
    r = math.sqrt(PATCH_SIZE * PATCH_SIZE * budget / (width * height))
    fw, fh = width * r / PATCH_SIZE, height * r / PATCH_SIZE
    # r can be >= 1 when the raw count is over budget only because of partly covered edge patches
    # (1332x1179: 42x37 = 1554 patches, r = 1.02); the documented second step still applies, capped at 1.
    if math.floor(fw) >= 1 and math.floor(fh) >= 1:
        r = min(1.0, r * min(math.floor(fw) / fw, math.floor(fh) / fh))
        size = (max(1, math.floor(width * r + 1e-6)), max(1, math.floor(height * r + 1e-6)))
        if _patches(*size) <= budget:
            return size
    # Very thin strips, where the documented formula would give a zero side: keep the aspect ratio,
    # keep each side >= 1 px, and take the largest size that fits the budget (binary search on the long side).
    long_side, short_side = max(width, height), min(width, height)

    def size_for(length: int) -> tuple[int, int]:
        other = max(1, short_side * length // long_side)
        return (length, other) if width >= height else (other, length)

    lo, hi = 1, long_side
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if _patches(*size_for(mid)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    return size_for(lo)


def scaled_size(width: int, height: int, detail: str = "high", model: str | None = "gpt-4o",
                family: str | None = None) -> tuple[int, int]:
    """The integer size the model actually looks at: never larger than the input, each side >= 1.

    Resizing an image to this size before sending it changes neither what the model sees nor the token
    count (and saves upload bytes). Idempotent: ``scaled_size(*scaled_size(w, h)) == scaled_size(w, h)``.
    ``detail="auto"`` is treated as ``"high"`` (an assumption: OpenAI picks per image and does not say how).
    The default ``model="gpt-4o"`` is the model of OpenAI's worked examples, not the course default.

    >>> scaled_size(1024, 1024)
    (768, 768)
    >>> scaled_size(4096, 8192, "low")
    (256, 512)

    Taught in notebooks/04_detail_levels.ipynb.
    """
    width, height = _check_size(width, height)
    level = _check_detail(detail)
    cost = model_cost(model, family)
    if cost.family == "tile":
        if level == "low":
            return _fit_box(width, height, LOW_DETAIL_BOX)
        return _tile_high(width, height)
    return _patch_fit(width, height, cost.patch_budget)


def image_tokens(width: int, height: int, detail: str = "high", model: str | None = "gpt-4o",
                 family: str | None = None) -> int:
    """Input tokens one image costs, computed from :func:`scaled_size` (so pre-resizing changes nothing).

    Tile family: ``low`` = base; ``high`` = base + tile x 512-px tiles. Patch family: ``ceil(patches x
    multiplier)``, whatever ``detail`` says (community measurements show detail has no effect on patch
    models; OpenAI documents no low-detail rule for them). ``"auto"`` is treated as ``"high"``: an
    assumption, since OpenAI chooses per image without saying how, and "high" is the upper bound.

    >>> image_tokens(2048, 4096)
    1105
    >>> image_tokens(4096, 8192, "low")
    85
    >>> image_tokens(1024, 1024, model="gpt-4.1-mini")
    1659

    Taught in notebooks/04_detail_levels.ipynb.
    """
    level = _check_detail(detail)
    cost = model_cost(model, family)
    w, h = scaled_size(width, height, detail, model, family)
    if cost.family == "tile":
        if level == "low":
            return cost.base_tokens
        tiles = math.ceil(w / TILE_SIZE) * math.ceil(h / TILE_SIZE)
        return cost.base_tokens + cost.tile_tokens * tiles
    return _patch_tokens(_patches(w, h), cost.multiplier)


def _patch_tokens(patches: int, multiplier: float) -> int:
    # Round up, but not past float noise: 1024 x 1.62 is 1658.88 -> 1659, while 1000 x 1.2 must stay 1200.
    return math.ceil(round(patches * multiplier, 6))


@dataclass(frozen=True)
class TileGrid:
    """What the model looks at: the scaled size and the tiles (or patches) cut from it, for plotting.

    ``tiles`` are ``(x0, y0, x1, y1)`` rectangles in scaled-image pixels, clipped to the image, row by row.
    ``tokens`` equals :func:`image_tokens` for the same arguments.
    """

    model: str
    family: Family
    detail: str
    original_size: tuple[int, int]
    size: tuple[int, int]
    tile_size: int
    tiles: tuple[tuple[int, int, int, int], ...]
    base_tokens: int
    tile_tokens: int
    multiplier: float
    tokens: int

    @property
    def columns(self) -> int:
        """Tiles across (0 for a low-detail tile-family image, which is not tiled)."""
        return len({t[0] for t in self.tiles})

    @property
    def rows(self) -> int:
        """Tiles down."""
        return len({t[1] for t in self.tiles})


def tile_grid(width: int, height: int, detail: str = "high", model: str | None = "gpt-4o",
              family: str | None = None) -> TileGrid:
    """The scaled size and the 512-px tiles (tile family) or 32-px patches (patch family) it is cut into.

    A low-detail tile-family image has no tiles (it costs the base alone).

    >>> grid = tile_grid(1024, 1024)
    >>> grid.size, len(grid.tiles), grid.tokens
    ((768, 768), 4, 765)

    Taught in notebooks/04_detail_levels.ipynb (helpers.display draws it).
    """
    level = _check_detail(detail)
    cost = model_cost(model, family)
    w, h = scaled_size(width, height, detail, model, family)
    step = TILE_SIZE if cost.family == "tile" else PATCH_SIZE
    tiles: tuple[tuple[int, int, int, int], ...] = ()
    if not (cost.family == "tile" and level == "low"):
        tiles = tuple((x, y, min(x + step, w), min(y + step, h))
                      for y in range(0, h, step) for x in range(0, w, step))
    return TileGrid(model=cost.name, family=cost.family, detail=detail, original_size=(width, height),
                    size=(w, h), tile_size=step, tiles=tiles, base_tokens=cost.base_tokens,
                    tile_tokens=cost.tile_tokens, multiplier=cost.multiplier,
                    tokens=image_tokens(width, height, detail, model, family))


# --- money and text ---------------------------------------------------------------------------------

def estimate_cost(model: str | None, input_tokens: int, output_tokens: int = 0) -> float:
    """USD for a request: ``input x input_price + output x output_price``, prices per million tokens.

    Standard-tier list prices (no cached-input or batch discounts); the table says when they were checked.

    >>> estimate_cost("gpt-4o", 1_000_000, 1_000_000)
    12.5

    Taught in notebooks/06_cost_math.ipynb.
    """
    for label, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{label} must be a whole number >= 0, got {value!r}.")
    cost = model_cost(model)
    if cost.input_per_million is None or cost.output_per_million is None:
        raise UnknownModelError(f"No price is recorded for {cost.name!r}.",
                                fix=f"use one of: {', '.join(known_models())}.")
    return (input_tokens * cost.input_per_million + output_tokens * cost.output_per_million) / 1_000_000


_CJK_RANGES = (
    (0x1100, 0x11FF), (0x2E80, 0x2FDF), (0x3000, 0x30FF), (0x3100, 0x31FF), (0x3200, 0x33FF),
    (0x3400, 0x4DBF), (0x4E00, 0x9FFF), (0xA960, 0xA97F), (0xAC00, 0xD7FF), (0xF900, 0xFAFF),
    (0xFE30, 0xFE4F), (0xFF00, 0xFFEF), (0x20000, 0x2FA1F),
)
_CJK = re.compile("[" + "".join(f"{chr(lo)}-{chr(hi)}" for lo, hi in _CJK_RANGES) + "]")
_WORD = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_+", re.UNICODE)
# The same pieces, with letters cut in fives and digits in threes: one match per token of the estimate.
_TOKEN = re.compile(r"[^\W\d_]{1,5}|\d{1,3}|[^\w\s]|_+", re.UNICODE)


def _odd_alnum(char: str) -> bool:
    """A word character that is neither a letter nor a decimal digit (``²``, ``½``, ``Ⅻ``): the estimate counts a
    run that starts with one by that first character's kind, which the fast path below cannot see."""
    return char.isalnum() and not char.isalpha() and not char.isdecimal()


def text_tokens(text: str) -> int:
    """An offline ESTIMATE of the tokens in ``text`` (not the real tokenizer; expect +-20% on prose).

    Real counts need the model's BPE tokenizer (tiktoken), which downloads its vocabulary files at run
    time: not possible offline. The estimate: each CJK character (Chinese, Japanese kana, Korean) is one
    token; a run of letters is one token per started 5 characters (a 4-letter word is one token, a long word
    several); digits one token per 3; every punctuation mark one token. English prose comes out near the
    usual "about 4 characters per token". Linear time, in the regular-expression engine (8 MB of prose in
    under 2 s).

    >>> text_tokens("What's in this image?")
    7
    >>> text_tokens("这张图片里有什么?")
    9

    Taught in notebooks/06_cost_math.ipynb.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    text = unicodedata.normalize("NFC", text)
    text, cjk = _CJK.subn(" ", text)
    if text.isascii() or not any(_odd_alnum(c) for c in set(text) if not c.isascii()):
        return cjk + len(_TOKEN.findall(text))
    tokens = cjk
    for piece in _WORD.findall(text):
        if piece[0].isdigit():
            tokens += math.ceil(len(piece) / 3)
        elif piece[0].isalpha():
            tokens += math.ceil(len(piece) / 5)
        else:
            tokens += 1
    return tokens


def constants_table() -> list[dict]:
    """One row per model for the cost notebook: constants, prices, evidence, note, sources, date checked.

    ``multiplier`` is the value used; ``documented_multiplier`` is OpenAI's published value (None where it
    was not found); ``evidence`` is "documented", "measured" or "estimate". ``retired_on`` and
    ``shutdown_scheduled`` come from :mod:`helpers.models` (as of the date the tables were checked).

    >>> constants_table()[0]["model"]
    'gpt-4o'

    Taught in notebooks/06_cost_math.ipynb.
    """
    rows = []
    for row in _MODELS:
        retired = next((r for r in (models.retired_model(n, on=CHECKED) for n in (row.name, *row.aliases)) if r),
                       None)
        rows.append({
            "model": row.name,
            "family": row.family,
            "base": row.base_tokens if row.family == "tile" else None,
            "tile": row.tile_tokens if row.family == "tile" else None,
            "multiplier": row.multiplier if row.family == "patch" else None,
            "documented_multiplier": row.documented_multiplier if row.family == "patch" else None,
            "patch_budget": row.patch_budget if row.family == "patch" else None,
            "evidence": row.evidence,
            "input_per_million": row.input_per_million,
            "output_per_million": row.output_per_million,
            "default": row.name == models.DEFAULT_MODEL,
            "retired_on": retired.retired_on if retired else None,
            "shutdown_scheduled": None if retired or not models.scheduled_shutdown(row.name)
            else models.scheduled_shutdown(row.name).retired_on,
            "note": row.note,
            "source": row.source,
            "prices_source": row.prices_source,
            "checked": row.checked,
        })
    return rows
