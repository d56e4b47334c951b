"""How many tokens an image costs, what a request costs in dollars, and the tiles a model sees.

OpenAI bills an image as input tokens, in one of two documented ways ("families"):

* **tile** (gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.5, gpt-4-turbo, o1, o3, gpt-5): with ``detail="high"``
  the image is scaled to fit inside 2048 x 2048, then scaled so its *shortest* side is 768 px (only ever
  down), then cut into 512 x 512 tiles. Tokens = ``base + tile x tiles``. ``detail="low"`` costs ``base``
  whatever the size (the model sees a version that fits in 512 x 512).
* **patch** (gpt-4.1-mini, gpt-4.1-nano, o4-mini, gpt-5-mini, gpt-5-nano, gpt-5.4-mini and newer): the
  image is cut into 32 x 32 patches. ``high`` allows up to 1536 patches *or* a maximum dimension of
  2048 px, and the image is resized to fit the lesser of the two: first scaled so its longest side is at
  most 2048 px, then, if more than 1536 patches are still needed, scaled down with OpenAI's documented
  shrink factor. Tokens = ``ceil(patches x multiplier)``; ``low`` makes no difference. gpt-5.4 and later
  models allow 2,500 patches at ``high`` and take ``detail="original"`` ("available on gpt-5.4 and future
  models", the guide): 10,000 patches or 6000 px on gpt-5.4/5.5; the GPT-5.6 family's ``original`` keeps the
  input size, and so (an estimate) does GPT-6's. ``auto`` is ``high`` on gpt-5.4 and ``original`` on gpt-5.5
  and GPT-5.6 (the guide), ``original`` on GPT-6 (estimate) and ``high`` elsewhere (the course's assumption).

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

import functools
import math
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal

from helpers import models
from helpers.errors import InvalidDetailError
from helpers.model_costs import (
    CHECKED,
    DETAILS,
    FAMILY_DEFAULTS,
    LONG_CONTEXT,
    PATCH_BUDGET,
    PATCH_MAX_SIDE,
    PATCH_SIZE,
    PRICING,
    VISION_GUIDE,
    Cost,
    EstimateWarning,
    Family,
    ModelCost,
    constants_table,
    estimate_cost,
    is_known_model,
    is_long_context,
    known_models,
    model_cost,
    nearest_known,
    price_tokens,
    resolve_model,
)

__all__ = ["CHECKED", "DETAILS", "FAMILY_DEFAULTS", "LONG_CONTEXT", "PATCH_BUDGET", "PATCH_MAX_SIDE", "PATCH_SIZE",
           "PER_MESSAGE_TOKENS", "PER_NAME_TOKENS", "PRICING", "REPLY_PRIMING_TOKENS", "VISION_GUIDE", "Cost",
           "EstimateWarning", "ModelCost", "TileGrid", "check_detail", "constants_table", "estimate_cost", "image_tokens",
           "is_known_model", "is_long_context", "known_models", "model_cost", "nearest_known", "price_tokens",
           "resolve_model", "scaled_size", "text_tokens", "tile_grid"]

Detail = Literal["low", "high", "original", "auto"]

# Tile family geometry (VISION_GUIDE, checked 2026-11-21).
TILE_FIT = 2048          # fit within 2048 x 2048 first
TILE_SHORT_SIDE = 768    # then the shortest side is brought down to 768 (never up)
TILE_SIZE = 512          # then count 512 x 512 tiles
LOW_DETAIL_BOX = 512     # detail="low": the model sees a version that fits in 512 x 512

# --- geometry -----------------------------------------------------------------------------------------

def _check_size(width: int, height: int) -> tuple[int, int]:
    for label, value in (("width", width), ("height", height)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{label} must be a positive whole number of pixels, got {value!r}.")
    return width, height


def check_detail(detail: object, model: str | None = None, family: str | None = None) -> str:
    """``detail`` itself if it is a level the API takes, else :class:`~helpers.errors.InvalidDetailError`.

    The one check of detail levels in the course (requests, image preparation, token maths). Without ``model``
    any value the API's types list is accepted; with it, only the levels that model takes (``"original"``:
    "available on gpt-5.4 and future models", the guide, checked 2026-12-07: gpt-5.4, gpt-5.5, GPT-5.6, GPT-6).

    >>> check_detail("low")
    'low'
    >>> check_detail("original", "gpt-5.5")
    'original'
    """
    if not isinstance(detail, str) or detail not in DETAILS:
        raise InvalidDetailError(f"detail must be one of {', '.join(DETAILS)}; got {detail!r}.",
                                 code="invalid_detail",
                                 fix="use detail='low' (one small version), 'high' (full resolution), 'auto', or "
                                     "'original' on the models that take it (gpt-5.4 and later, GPT-6 "
                                     "included).")
    if model is not None or family is not None:
        _check_model_takes(detail, model_cost(model, family))
    return detail


def _check_model_takes(detail: str, cost: ModelCost) -> None:
    if detail not in cost.details:
        takes = [m for m in known_models() if detail in model_cost(m).details]
        raise InvalidDetailError(
            f"{cost.name} does not take detail={detail!r} (OpenAI's guide: 'available on gpt-5.4 and "
            f"future models': {', '.join(takes)}); it takes {', '.join(cost.details)}.", code="invalid_detail",
            fix="use detail='high' (or 'auto') with this model, or choose a model that takes 'original'.")


def _level(detail: object, cost: ModelCost) -> str:
    """The level that decides the size: ``auto`` is the model's documented default (else ``high``)."""
    level = check_detail(detail)
    _check_model_takes(level, cost)
    return cost.auto_as if level == "auto" else level


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
    ``detail="auto"`` is the model's documented default (``"original"`` on gpt-5.5 and GPT-5.6, ``"high"`` on
    gpt-5.4, the guide; ``"original"`` on GPT-6, an estimate); elsewhere it is treated as ``"high"`` (the guide
    only says "automatic detail selection" for them). ``detail="original"`` (gpt-5.4/5.5: up to 10,000 patches
    or 6000 px; GPT-5.6 and GPT-6: no resize) is refused on models older than gpt-5.4.
    The default ``model="gpt-4o"`` is the model of OpenAI's worked examples, not the course default.

    >>> scaled_size(1024, 1024)
    (768, 768)
    >>> scaled_size(4096, 8192, "low")
    (256, 512)
    >>> scaled_size(4000, 1474, model="gpt-4.1-mini")  # patch family: longest side <= 2048, then the budget
    (2048, 755)

    Taught in notebooks/04_detail_levels.ipynb.
    """
    width, height = _check_size(width, height)
    cost = model_cost(model, family)
    level = _level(detail, cost)
    if cost.family == "tile":
        if level == "low":
            return _fit_box(width, height, LOW_DETAIL_BOX)
        return _tile_high(width, height)
    budget, side = ((cost.original_budget, cost.original_max_side) if level == "original"
                    else (cost.patch_budget, cost.max_side))
    if side is not None:
        width, height = _fit_box(width, height, side)
    return (width, height) if budget is None else _patch_fit(width, height, budget)


def image_tokens(width: int, height: int, detail: str = "high", model: str | None = "gpt-4o",
                 family: str | None = None) -> int:
    """Input tokens one image costs, computed from :func:`scaled_size` (so pre-resizing changes nothing).

    Tile family: ``low`` = base; ``high`` = base + tile x 512-px tiles. Patch family: ``ceil(patches x
    multiplier)``; ``low`` counts like ``high`` (community measurements show it has no effect on patch models;
    OpenAI documents no low-detail rule for them), while ``original`` (gpt-5.4 and later) has its own, larger
    limits. ``"auto"`` follows the model's documented default (see :func:`scaled_size`), else ``"high"``,
    the upper bound on models without ``original``. A model the catalogue does not know but named like
    OpenAI's is counted with the nearest known model's rules, with an :class:`EstimateWarning`.

    >>> image_tokens(2048, 4096)
    1105
    >>> image_tokens(4096, 8192, "low")
    85
    >>> image_tokens(1024, 1024, model="gpt-4.1-mini")
    1659
    >>> image_tokens(4000, 3000, "original", model="gpt-5.5"), image_tokens(4000, 3000, "high", model="gpt-5.5")
    (11868, 2942)

    Taught in notebooks/04_detail_levels.ipynb.
    """
    cost = model_cost(model, family)
    level = _level(detail, cost)
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
    cost = model_cost(model, family)
    level = _level(detail, cost)
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


# --- text ---------------------------------------------------------------------------------------

#: Models on the older cl100k_base vocabulary; every other model (gpt-4o and later) uses o200k_base.
_CL100K = re.compile(r"^(?:gpt-4(?:-\d{4}|-32k|-turbo|-vision|-1106|-0125)?(?:-|$)|gpt-3\.5)")
# bpe-openai encodes at most 1,000,000 characters (and 200,000 tokens) per call: longer text is cut into
# pieces at whitespace, where BPE never joins across anyway (a word takes its leading space with it).
_PIECE = 100_000


def encoding_name(model: str | None = None) -> str:
    """The tokenizer vocabulary of ``model``: ``cl100k_base`` for gpt-4/gpt-4-turbo/gpt-3.5, else ``o200k_base``.

    >>> encoding_name("gpt-4o"), encoding_name("gpt-4-turbo"), encoding_name(None)
    ('o200k_base', 'cl100k_base', 'o200k_base')
    """
    if model is None:
        return "o200k_base"
    return "cl100k_base" if _CL100K.match(models.hyphenated(model)) else "o200k_base"


@functools.cache
def _encoding(name: str) -> Any:
    import bpe_openai  # the vocabularies ship inside the wheel: nothing is downloaded

    return bpe_openai.get_encoding(name)


def _pieces(text: str) -> list[str]:
    out, start = [], 0
    while len(text) - start > _PIECE:
        cut = text.rfind(" ", start + _PIECE // 2, start + _PIECE)
        cut = cut if cut > start else start + _PIECE
        out.append(text[start:cut])
        start = cut
    out.append(text[start:])
    return out


#: The chat format's overheads: tokens every message adds besides its content, a ``name`` adds, and the
#: assistant reply is primed with (OpenAI cookbook, "How to count tokens with tiktoken", the figures for gpt-4o and
#: later; the API does not document them per model). The offline backend bills with these; lesson 06 adds them up.
PER_MESSAGE_TOKENS = 3
PER_NAME_TOKENS = 1
REPLY_PRIMING_TOKENS = 3


def text_tokens(text: str, model: str | None = None) -> int:
    """The number of tokens in ``text``, with the model's own BPE vocabulary (exact, offline).

    ``o200k_base`` (gpt-4o and later, the default) or ``cl100k_base`` (gpt-4, gpt-4-turbo, gpt-3.5), from the
    ``bpe-openai`` wheel, which carries both vocabularies and gives the same ids as OpenAI's tiktoken
    (checked 2026-12-02 on published examples; ``tests/test_tokens.py``). Text is counted as plain text:
    special-token spellings such as ``<|endoftext|>`` count as the characters they are. A chat request adds a
    few tokens per message around the text (``helpers.offline.responses``).

    >>> text_tokens("What's in this image?")
    5
    >>> text_tokens("这张图片里有什么?")
    6

    Taught in notebooks/06_cost_math.ipynb.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}.")
    encoding = _encoding(encoding_name(model))
    return sum(len(encoding.encode_ordinary(piece)) for piece in _pieces(text) if piece)
