"""What each vision model charges for an image, and for a request: its token family, constants and prices.

The facts live in the catalogue file ``helpers/models.json`` (read once by :func:`helpers.models.catalogue`);
this module turns each row into a :class:`ModelCost`, with where its numbers come from ("documented" in OpenAI's
guide, "measured" from billing, or an "estimate") and the date they were checked. :func:`model_cost` finds a row
by any spelling of the model (dated snapshots, gateway prefixes, the configured Azure deployment name); a model
the catalogue does not know yet but that is named like OpenAI's (``gpt-7-nova``) gets the rules of the nearest
known family, labelled as an estimate (:class:`EstimateWarning`), so lessons keep running the day it ships.
:func:`estimate_cost` turns tokens into dollars (cached input and the long-context tier included);
:func:`constants_table` lists it all for notebook 06. The geometry is in :mod:`helpers.tokens`.

>>> model_cost("gpt-4o-2024-08-06").name, model_cost("gpt-4o").tile_tokens
('gpt-4o', 170)

Taught in notebooks/06_cost_math.ipynb.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from helpers import models
from helpers.errors import UnknownModelError

Family = Literal["tile", "patch"]
Evidence = Literal["documented", "measured", "estimate"]

_CAT = models.catalogue()
_SOURCES: dict[str, str] = _CAT["sources"]
CHECKED = models.CHECKED
#: OpenAI's "Images and vision" guide, section "Calculating costs" (tile and patch algorithms, constants).
VISION_GUIDE = _SOURCES["guide"]
#: The guide's "Model sizing behavior" table (per model: detail levels, patch budget, maximum dimension, `auto`).
SIZING_GUIDE = _SOURCES["sizing"].split(" ")[0]
#: OpenAI's pricing page (USD per 1M tokens, Standard tier). Its vision calculator is in the FAQ.
PRICING = _SOURCES["pricing"]

# Patch family geometry (VISION_GUIDE; the maximum dimension SIZING_GUIDE).
PATCH_SIZE = 32
PATCH_BUDGET = _CAT["families"]["patch"]["budget"]
PATCH_MAX_SIDE = _CAT["families"]["patch"]["max_side"]  # `high`: "up to 1,536 patches or a 2048-pixel maximum"
#: Every ``detail`` value the API's types take (the SDK's ``ImageURL.detail``); which ones a model accepts is
#: :attr:`ModelCost.details` ("original": "available on gpt-5.4 and future models", the guide).
DETAILS: tuple[str, ...] = ("low", "high", "original", "auto")
STANDARD_DETAILS: tuple[str, ...] = ("low", "high", "auto")
#: The long-context tier (GPT-5.4 and later): above ``threshold`` input tokens the WHOLE request costs
#: ``input_factor`` x input and cached input and ``output_factor`` x output.
LONG_CONTEXT: dict[str, Any] = _CAT["long_context"]


class EstimateWarning(UserWarning):
    """A model the catalogue does not know was costed with the rules of the nearest known family."""


@dataclass(frozen=True)
class ModelCost:
    """The image-token constants and prices of one model, with where each number comes from.

    Tile family: ``base_tokens`` + ``tile_tokens`` per 512-px tile. Patch family: ``ceil(patches x
    multiplier)`` with at most ``patch_budget`` patches. ``multiplier`` is the number this module USES;
    ``documented_multiplier`` is what OpenAI's guide says when that differs (or None if not documented).
    ``evidence`` says where the token numbers come from: "documented", "measured" or "estimate".
    Prices are USD per million tokens (Standard tier); ``cached_input_per_million`` None means no cached-input
    discount is recorded (cached tokens are then priced as input). ``long_context``: the model has the
    above-272K tier. ``estimate_of`` is set on a model the catalogue does not know: the known model whose
    rules and prices it borrows. Patch sizing: ``high`` fits ``patch_budget`` patches and ``max_side`` px;
    ``original`` (only where ``details`` lists it) fits ``original_budget`` and ``original_max_side`` (None =
    no limit); ``auto`` means ``auto_as``.

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
    cached_input_per_million: float | None = None
    long_context: bool = False
    price_evidence: str = "third-party"
    estimate_of: str | None = None

    @property
    def is_estimate(self) -> bool:
        """True when the token rules or the prices are an estimate (not documented or measured)."""
        return self.estimate_of is not None or self.evidence == "estimate" or self.price_evidence == "estimate"


def source_url(key: str, model: str = "") -> str:
    """The bare URL of catalogue source ``key`` (its text also says how it was read), for ``model``'s page."""
    return _SOURCES[key].split(" ")[0].rstrip(",").replace("<model>", model)


def _row(entry: dict[str, Any]) -> ModelCost:
    family = entry["family"]
    prices = entry["prices"]
    evidence = entry.get("tokens_evidence", "documented")
    original = entry.get("original")
    price_note = prices.get("note", "")
    return ModelCost(
        name=entry["name"], family=family, base_tokens=entry.get("base", 0), tile_tokens=entry.get("tile", 0),
        multiplier=entry.get("multiplier", 1.0), input_per_million=prices["input"],
        output_per_million=prices["output"], source=source_url(entry["tokens_source"]), checked=CHECKED,
        patch_budget=entry.get("budget", PATCH_BUDGET),
        documented_multiplier=(entry.get("multiplier") if evidence == "documented" and family == "patch"
                               else entry.get("documented_multiplier")),
        evidence=evidence, note=" ".join(x for x in (entry.get("note", ""), price_note) if x),
        prices_source=source_url(prices["source"], entry["name"]), aliases=tuple(entry.get("aliases", ())),
        details=DETAILS if original is not None else STANDARD_DETAILS, auto_as=entry.get("auto_as", "high"),
        original_budget=original[0] if original else None, original_max_side=original[1] if original else None,
        cached_input_per_million=prices.get("cached"), long_context=bool(entry.get("long_context")),
        price_evidence=prices["evidence"])


_MODELS: tuple[ModelCost, ...] = tuple(_row(entry) for entry in _CAT["models"])

#: Defaults used with ``family=`` for a model the table does not know (documented in :func:`model_cost`).
FAMILY_DEFAULTS: dict[str, ModelCost] = {
    "tile": ModelCost("(unknown tile model)", "tile", _CAT["families"]["tile"]["base"],
                      _CAT["families"]["tile"]["tile"], 1.0, None, None, VISION_GUIDE, CHECKED,
                      note=_CAT["families"]["tile"]["note"]),
    "patch": ModelCost("(unknown patch model)", "patch", 0, 0, 1.0, None, None, VISION_GUIDE, CHECKED,
                       note=_CAT["families"]["patch"]["note"]),
}

_BY_NAME: dict[str, ModelCost] = {}
for _row_ in _MODELS:
    for _name in (_row_.name, *_row_.aliases, *next(e for e in _CAT["models"] if e["name"] == _row_.name)
                  .get("snapshots", {})):
        _BY_NAME[_name] = _row_

# A dated snapshot of a known model: "-2024-08-06" or "-0613". Nothing else, so "gpt-4o-mini" never
# resolves to "gpt-4o" and "o1-preview" (text only) does not pass for "o1".
_SNAPSHOT_SUFFIX = re.compile(r"(?:-(?:\d{4}-\d{2}-\d{2}|\d{4}))+")
# An OpenAI-style name: gpt-<major>[.<minor>][o][-variant] or o<N>[-variant], e.g. gpt-7-nova, gpt-6.3-sol, o5-mini.
_OPENAI_NAME = re.compile(r"^(?:gpt-(\d+)(?:\.(\d+))?(o?)|o(\d+))(?:-([a-z][a-z0-9.-]*?))?$")


def known_models() -> list[str]:
    """The model names the cost tables know (canonical names, not aliases).

    >>> "gpt-4o" in known_models()
    True
    """
    return [row.name for row in _MODELS]


def resolve_model(model: str) -> str | None:
    """The table name a model (or a dated snapshot of it) resolves to, or None. Never an estimate.

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
    """True if the cost tables know ``name`` (dated snapshots and gateway prefixes included; not estimates).

    >>> is_known_model("openai/gpt-4o-2024-08-06"), is_known_model("my-vision")
    (True, False)
    """
    return resolve_model(name) is not None


def _version(name: str) -> tuple[tuple[str, float], str] | None:
    """``(("gpt"|"o", version), variant)`` of an OpenAI-style name, else None."""
    match = _OPENAI_NAME.fullmatch(_SNAPSHOT_SUFFIX.sub("", name))
    if match is None:
        return None
    major, minor, o_flag, o_series, variant = match.groups()
    if o_series is not None:
        return ("o", float(o_series)), variant or ""
    return ("gpt" + o_flag, float(f"{major}.{minor or 0}")), variant or ""


def nearest_known(model: str) -> str | None:
    """The catalogued model whose rules an unknown OpenAI-style name borrows, or None for other names.

    Same series and variant first (``gpt-6.3-sol`` -> ``gpt-6.2-sol``), then the closest version at or below
    it (``gpt-7-nova`` -> the newest GPT-6), then the closest above; current models before retired ones.

    >>> nearest_known("gpt-6.3-sol"), nearest_known("o5-mini"), nearest_known("llava:13b")
    ('gpt-6.2-sol', 'o4-mini', None)
    """
    wanted = _version(models.hyphenated(model))
    if wanted is None:
        return None
    (series, version), variant = wanted

    def distance(row: ModelCost) -> tuple:
        (row_series, row_version), row_variant = _version(row.name) or (("", 0.0), "")
        below = row_version <= version
        retired = models.retired_model(row.name, on=CHECKED) is not None
        return (row_series != series, row_variant != variant, not below, abs(version - row_version), retired,
                row.name)

    candidates = [row for row in _MODELS if _version(row.name) is not None]
    return min(candidates, key=distance).name


def model_cost(model: str | None = None, family: str | None = None) -> ModelCost:
    """The image-token constants and prices of ``model`` (dated snapshots resolve to their model).

    ``model=None`` means the configured model (``VISION_MODEL``, else ``helpers.models.DEFAULT_MODEL``). A
    catalogued model ignores ``family``. A model the catalogue does not know:

    * named like OpenAI's models (``gpt-7-nova``, ``gpt-6.3-sol``, ``o5-mini``): the nearest known family's
      rules and prices (:func:`nearest_known`), with ``estimate_of`` set and an :class:`EstimateWarning`;
    * otherwise, with ``family="tile"`` or ``"patch"``: that family's defaults, with no prices (tile: gpt-4o's
      85 + 170 per tile; patch: the raw patch count, multiplier 1.0, 1536-patch budget);
    * otherwise :class:`~helpers.errors.UnknownModelError` listing the known ones.

    The configured Azure deployment name counts as the model behind it (:func:`helpers.models.use_model`).

    >>> model_cost("gpt-4.1-mini-2025-04-14").name
    'gpt-4.1-mini'
    >>> model_cost("my-local-llava", family="tile").base_tokens
    85
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore", EstimateWarning)
    ...     model_cost("gpt-7-nova").estimate_of, model_cost("gpt-7-nova").is_estimate
    ('gpt-6.2-astra', True)

    Taught in notebooks/06_cost_math.ipynb.
    """
    if model is None:
        model = models.configured_model()
    if not isinstance(model, str) or not model.strip():
        raise UnknownModelError(f"model must be a model name such as {models.DEFAULT_MODEL!r}, got {model!r}.",
                                fix="pass the model's name, or model=None for the configured model.")
    resolved = resolve_model(model) or resolve_model(models.model_behind(model))
    if resolved is not None:
        return _BY_NAME[resolved]
    nearest = nearest_known(models.model_behind(model))
    if nearest is not None:
        name = models.hyphenated(models.model_behind(model))
        warnings.warn(f"{name} is not in the course's catalogue (helpers/models.json, checked {CHECKED}): its "
                      f"token counts and prices are ESTIMATES with the rules of {nearest}, the nearest known "
                      "model.", EstimateWarning, stacklevel=3)
        base = _BY_NAME[nearest]
        return replace(base, name=name, aliases=(), estimate_of=nearest,
                       note=f"Estimate: not in the catalogue; rules and prices of {nearest}. {base.note}")
    if family is not None:
        if family not in FAMILY_DEFAULTS:
            raise UnknownModelError(f"family={family!r} is not a token-accounting family.",
                                    fix="pass family='tile' or family='patch'.")
        return FAMILY_DEFAULTS[family]
    raise UnknownModelError(
        f"The token-cost tables do not know the model {model!r}. Known: {', '.join(known_models())}.",
        fix="pass one of those names (dated snapshots such as gpt-4o-2024-08-06 work too), or "
            "family='tile' or family='patch' to use that family's defaults.")


# --- money ----------------------------------------------------------------------------------------------

class Cost(float):
    """A price in USD (a float), that also says how it was reached: ``model``, ``long_context`` (the request
    crossed the 272K tier), ``estimate`` (the price is an estimate) and ``label`` (why, "" when it is not)."""

    model: str
    long_context: bool
    estimate: bool
    label: str

    def __new__(cls, value: float, model: str, long_context: bool, estimate: bool, label: str) -> Cost:
        self = super().__new__(cls, value)
        self.model, self.long_context, self.estimate, self.label = model, long_context, estimate, label
        return self


def is_long_context(cost: ModelCost, input_tokens: int) -> bool:
    """True when a request of ``input_tokens`` (cached included) is billed at the long-context tier.

    >>> is_long_context(model_cost("gpt-6-luna"), 272_000), is_long_context(model_cost("gpt-6-luna"), 272_001)
    (False, True)
    """
    return cost.long_context and input_tokens > LONG_CONTEXT["threshold"]


def price_tokens(cost: ModelCost, input_tokens: int, output_tokens: int = 0, cached_input_tokens: int = 0, *,
                 long_context: bool = False) -> float:
    """USD for token counts at ``cost``'s prices, at the long-context tier if ``long_context`` (and the model has
    it). Counts may be sums over many requests (the tier is decided per request: :func:`estimate_cost`)."""
    if cost.input_per_million is None or cost.output_per_million is None:
        raise UnknownModelError(f"No price is recorded for {cost.name!r}.",
                                fix=f"use one of: {', '.join(known_models())}.")
    cached_price = cost.cached_input_per_million
    cached_price = cost.input_per_million if cached_price is None else cached_price
    k_in, k_cached, k_out = ((LONG_CONTEXT["input_factor"], LONG_CONTEXT["cached_factor"],
                              LONG_CONTEXT["output_factor"]) if long_context and cost.long_context else (1, 1, 1))
    return ((input_tokens - cached_input_tokens) * cost.input_per_million * k_in
            + cached_input_tokens * cached_price * k_cached + output_tokens * cost.output_per_million * k_out) / 1e6


def estimate_cost(model: str | None, input_tokens: int, output_tokens: int = 0, cached_input_tokens: int = 0) -> Cost:
    """USD for ONE request, at Standard-tier list prices per million tokens.

    ``input_tokens`` is the whole prompt as ``usage.prompt_tokens`` reports it, ``cached_input_tokens`` the part
    of it served from the prompt cache (``usage.prompt_tokens_details.cached_tokens``), billed at the cached
    price (at the input price where none is recorded). A request above 272,000 input tokens on a model with the
    long-context tier (GPT-5.4 and later) costs 2x input and cached input and 1.5x output for the WHOLE request;
    so price requests one by one, not a day's sum. The result is a float that also carries ``long_context``,
    ``estimate`` and ``label`` (:class:`Cost`). Batch/Flex (50%) and Priority are not modelled.

    >>> estimate_cost("gpt-4o", 1_000_000, 1_000_000)
    12.5
    >>> round(estimate_cost("gpt-6-luna", 300_000, 1_000), 6), estimate_cost("gpt-6-luna", 300_000).long_context
    (0.06075, True)

    Taught in notebooks/06_cost_math.ipynb.
    """
    for label, value in (("input_tokens", input_tokens), ("output_tokens", output_tokens),
                         ("cached_input_tokens", cached_input_tokens)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{label} must be a whole number >= 0, got {value!r}.")
    if cached_input_tokens > input_tokens:
        raise ValueError(f"cached_input_tokens ({cached_input_tokens}) is part of input_tokens ({input_tokens}), "
                         "so it cannot be larger: pass usage.prompt_tokens and its cached_tokens.")
    cost = model_cost(model)
    long = is_long_context(cost, input_tokens)
    dollars = price_tokens(cost, input_tokens, output_tokens, cached_input_tokens, long_context=long)
    label = ""
    if cost.estimate_of is not None:
        label = f"estimate: {cost.name} is not in the catalogue; priced as {cost.estimate_of}"
    elif cost.price_evidence == "estimate":
        label = f"estimate: {cost.name}'s price is not documented ({cost.note})"
    return Cost(dollars, cost.name, long, bool(label), label)


def constants_table() -> list[dict]:
    """One row per model for the cost notebook: constants, prices, evidence, lifecycle, sources, date checked.

    ``multiplier`` is the value used; ``documented_multiplier`` is OpenAI's published value (None where it
    was not found); ``evidence`` is "documented", "measured" or "estimate" (the token rules), ``price_evidence``
    the same for prices ("third-party" where read via copies). ``retired_on`` and ``shutdown_scheduled`` come
    from :mod:`helpers.models` (as of the date the catalogue was checked).

    >>> constants_table()[0]["model"]
    'gpt-4o'

    Taught in notebooks/06_cost_math.ipynb.
    """
    rows = []
    for row in _MODELS:
        retired = models.retired_model(row.name, on=CHECKED)
        scheduled = None if retired else models.scheduled_shutdown(row.name)
        patch = row.family == "patch"
        rows.append({
            "model": row.name, "family": row.family,
            "base": None if patch else row.base_tokens, "tile": None if patch else row.tile_tokens,
            "multiplier": row.multiplier if patch else None,
            "documented_multiplier": row.documented_multiplier if patch else None,
            "patch_budget": row.patch_budget if patch else None, "max_side": row.max_side if patch else None,
            "details": row.details, "auto_as": row.auto_as, "original_budget": row.original_budget,
            "original_max_side": row.original_max_side, "evidence": row.evidence,
            "input_per_million": row.input_per_million, "cached_input_per_million": row.cached_input_per_million,
            "output_per_million": row.output_per_million, "long_context": row.long_context,
            "price_evidence": row.price_evidence, "default": row.name == models.DEFAULT_MODEL,
            "retired_on": retired.retired_on if retired else None,
            "shutdown_scheduled": scheduled.retired_on if scheduled else None,
            "note": row.note, "source": row.source, "prices_source": row.prices_source, "checked": row.checked,
        })
    return rows
