"""What each vision model charges for an image: its token family and constants, and its prices.

One row per model (:class:`ModelCost`), each with where its numbers come from ("documented" in OpenAI's guide,
"measured" from billing, or an "estimate") and the date they were checked; :func:`model_cost` finds a row by
any spelling of the model (dated snapshots, gateway prefixes, the configured Azure deployment name);
:func:`estimate_cost` turns tokens into dollars; :func:`constants_table` lists it all for notebook 06.
The geometry that uses these constants (scaling, tiles, patches) is in :mod:`helpers.tokens`.

>>> model_cost("gpt-4o-2024-08-06").name, model_cost("gpt-4o").tile_tokens
('gpt-4o', 170)

Taught in notebooks/06_cost_math.ipynb.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal

from helpers import models
from helpers.errors import UnknownModelError

Family = Literal["tile", "patch"]

# --- where the numbers come from -----------------------------------------------------------------------
CHECKED = "2026-11-21"
#: OpenAI's "Images and vision" guide, section "Calculating costs" (tile and patch algorithms, constants).
VISION_GUIDE = "https://developers.openai.com/api/docs/guides/images-vision#calculating-costs"
#: The guide's "Model sizing behavior" table (per model: detail levels, patch budget, maximum dimension, what
#: ``auto`` means), read in the stored markdown copy of the guide (images-vision.md), checked 2026-12-02.
SIZING_GUIDE = "https://developers.openai.com/api/docs/guides/images-vision#model-sizing-behavior"
SIZING_CHECKED = "2026-12-02"
#: OpenAI's pricing page (USD per 1M tokens, standard tier). Its vision calculator is in the FAQ.
PRICING = "https://developers.openai.com/api/docs/pricing"
#: Community billing measurements (image tokens backed out of `usage`, Chat Completions and Responses).
MEASURED_GPT5_MINI = ("https://community.openai.com/t/gpt-5-mini-image-input-token-calculation-discrepancy-"
                      "with-official-faq-formula/1344040")
MEASURED_GPT54_MINI = ("https://community.openai.com/t/introducing-gpt-5-4-mini-and-nano-our-most-capable-"
                       "small-models-yet/1377015")
#: A third-party token calculator's profile for GPT-5.6/GPT-6 (32-px patches x 1.2); no OpenAI page found.
ESTIMATE_GPT6 = "https://docs.rs/vision-squeezer/0.6.2/vision_squeezer/enum.VisionModel.html"

# Patch family geometry (VISION_GUIDE, checked 2026-11-21; the maximum dimension SIZING_GUIDE, checked 2026-12-02).
PATCH_SIZE = 32
PATCH_BUDGET = 1536
PATCH_MAX_SIDE = 2048    # `high`: "up to 1,536 patches or a 2048-pixel maximum dimension", fit to the lesser
#: Every ``detail`` value the API's types take (the SDK's ``ImageURL.detail``); which ones a model accepts is
#: :attr:`ModelCost.details`.
DETAILS: tuple[str, ...] = ("low", "high", "original", "auto")
STANDARD_DETAILS: tuple[str, ...] = ("low", "high", "auto")

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
    Patch sizing: ``high`` fits ``patch_budget`` patches and ``max_side`` px (the lesser); ``original`` (only
    where ``details`` lists it) fits ``original_budget`` and ``original_max_side`` (None = no limit); ``auto``
    means ``auto_as`` (documented for gpt-5.4/5.5/5.6; elsewhere "high" is the course's assumption).

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
    max_side: int = PATCH_MAX_SIDE
    details: tuple[str, ...] = STANDARD_DETAILS
    auto_as: str = "high"
    original_budget: int | None = None
    original_max_side: int | None = None


def _tile(name: str, base: int, tile: int, inp: float | None, out: float | None, *, note: str = "",
          aliases: tuple[str, ...] = (), prices_source: str = PRICING) -> ModelCost:
    return ModelCost(name, "tile", base, tile, 1.0, inp, out, VISION_GUIDE, CHECKED, note=note,
                     prices_source=prices_source, aliases=aliases)


def _patch(name: str, multiplier: float, inp: float | None, out: float | None, *,
           documented: float | None = None, evidence: Evidence = "documented", source: str = VISION_GUIDE,
           note: str = "", aliases: tuple[str, ...] = (), prices_source: str = PRICING, budget: int = PATCH_BUDGET,
           original: tuple[int | None, int | None] | None = None, auto_as: str = "high",
           checked: str = CHECKED) -> ModelCost:
    if evidence == "documented":
        documented = multiplier
    details = DETAILS if original is not None else STANDARD_DETAILS
    original_budget, original_max_side = original if original is not None else (None, None)
    return ModelCost(name, "patch", 0, 0, multiplier, inp, out, source, checked, budget, documented,
                     evidence, note, prices_source, aliases, PATCH_MAX_SIDE, details, auto_as, original_budget,
                     original_max_side)


# gpt-5.4 and gpt-5.5 (SIZING_GUIDE): `high` = 2,500 patches or 2048 px; `original` = 10,000 patches or 6000 px.
_ORIGINAL_54 = (10_000, 6000)
# GPT-5.6 family (SIZING_GUIDE): `original` "preserves the input dimensions" (no patch or pixel limit).
_ORIGINAL_56 = (None, None)
_GPT56 = dict(
    original=_ORIGINAL_56, auto_as="original", checked=SIZING_CHECKED,
    prices_source="https://benchr.org/pricing/gpt-5-6 (reported, unconfirmed: third-party reports of OpenAI's "
                  "2026-06-26 preview announcement, Sol 5/30, Terra 2.50/15, Luna 1/6; not found on OpenAI's "
                  "pricing page)",
    note="Sizing documented (guide, GPT-5.6 family): original and auto keep the input dimensions (no patch "
         "budget); high is an estimate (1536 patches or 2048 px). Multiplier x1.2: third-party estimate.")
_NO_MULTIPLIER = ("The guide's multiplier table does not list this model: 1 token per patch is the course's "
                  "assumption (OpenAI's Codex client counts `original` images the same way, openai/codex PR "
                  "#19865, 2026-04-27).")


_RETIRED = "Shut down (see helpers.models); kept so old notebooks and the seeds can be costed."
_THIRD_PARTY_PRICE = "third-party listings quoting OpenAI's pricing table"

# Prices: USD per 1M input / output tokens, standard tier, checked 2026-11-21.
_MODELS: tuple[ModelCost, ...] = (
    _tile("gpt-4o", 85, 170, 2.50, 10.00, note="The model of OpenAI's worked examples. Reported, unconfirmed, to shut down 2027-01-14 (third-party copies only)."),
    _tile("gpt-4o-mini", 2833, 5667, 0.15, 0.60,
          note="~33x gpt-4o's image tokens at ~1/17 of the price: an image costs about twice as much as on "
               "gpt-4o. Reported, unconfirmed, to shut down 2027-01-14 (third-party copies only)."),
    _tile("gpt-4.1", 85, 170, 2.00, 8.00, note="Reported, unconfirmed, to shut down 2027-01-14 (third-party copies only)."),
    _tile("gpt-4.5", 85, 170, 75.00, 150.00, aliases=("gpt-4.5-preview",), note=_RETIRED),
    _tile("gpt-4-turbo", 85, 170, 10.00, 30.00, aliases=("gpt-4-vision-preview", "gpt-4-1106-vision-preview"),
          note="Same constants and price as the retired gpt-4-vision-preview of the 2023 seeds. " + _RETIRED),
    _tile("o1", 75, 150, 15.00, 60.00, note=_RETIRED),
    _tile("o3", 75, 150, 2.00, 8.00, note="Price after OpenAI's June 2025 cut. Shuts down 2026-12-11."),
    _tile("gpt-5", 70, 140, 1.25, 10.00, aliases=("gpt-5-chat-latest",), note="Shuts down 2026-12-11."),
    _patch("gpt-4.1-mini", 1.62, 0.40, 1.60,
           note="Guide and billing agree (1800x2400: 2352.24 by formula, ~2362 billed with the prompt). "
                "Reported, unconfirmed, to shut down 2027-01-14 (third-party copies only)."),
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
    _patch("gpt-5.4-nano", 1.2, 0.20, 1.25, documented=2.46, evidence="measured", source=MEASURED_GPT54_MINI,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="The guide lists x2.46 for this model (checked 2026-12-02); billing measurements give x1.2, which "
                "we use. Budget: the documented 1536 patches or 2048 px."),
    _patch("gpt-5.4", 1.0, 2.50, 15.00, evidence="estimate", source=SIZING_GUIDE, budget=2500,
           original=_ORIGINAL_54, auto_as="high", checked=SIZING_CHECKED,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="Sizing documented: high = 2,500 patches or 2048 px; original = 10,000 patches or 6000 px; "
                "auto = high. " + _NO_MULTIPLIER),
    _patch("gpt-5.5", 1.0, 5.00, 30.00, evidence="estimate", source=SIZING_GUIDE, budget=2500,
           original=_ORIGINAL_54, auto_as="original", checked=SIZING_CHECKED,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE})",
           note="Sizing documented: high = 2,500 patches or 2048 px; original = 10,000 patches or 6000 px; "
                "auto = original. " + _NO_MULTIPLIER),
    _patch("gpt-5.6-sol", 1.2, 5.00, 30.00, evidence="estimate", source=ESTIMATE_GPT6, **_GPT56),
    _patch("gpt-5.6-terra", 1.2, 2.50, 15.00, evidence="estimate", source=ESTIMATE_GPT6, **_GPT56),
    _patch("gpt-5.6-luna", 1.2, 1.00, 6.00, evidence="estimate", source=ESTIMATE_GPT6, **_GPT56),
    _patch("gpt-6-sol", 1.2, 2.00, 10.00, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"{PRICING} ({_THIRD_PARTY_PRICE}; reported, unconfirmed)",
           note="Reported, unconfirmed (third-party copies only). No OpenAI documentation of its image tokens found: estimate (32-px patches x1.2, 1536 budget)."),
    _patch("gpt-6-luna", 1.2, 0.10, 0.50, evidence="estimate", source=ESTIMATE_GPT6,
           prices_source=f"https://vercel.com/ai-gateway/models/gpt-6-luna ({_THIRD_PARTY_PRICE}; reported, unconfirmed)",
           note="Reported, unconfirmed (third-party copies only): the cheapest current vision model (released "
                "2026-09-22) and OpenAI's replacement for gpt-4o and gpt-4.1(-mini). No OpenAI documentation of its image tokens found: estimate (32-px patches "
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
            "max_side": row.max_side if row.family == "patch" else None,
            "details": row.details,
            "auto_as": row.auto_as,
            "original_budget": row.original_budget,
            "original_max_side": row.original_max_side,
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
