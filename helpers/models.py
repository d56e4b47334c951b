"""The course's default model and the model catalogue: every model's lifecycle (shutdown, replacement, status).

The catalogue is ONE data file, ``helpers/models.json``, read once (:func:`catalogue`): per model its token
family, multiplier, prices, shutdown date, replacement and status, each with its source and the date it was
checked. This module reads the lifecycle; :mod:`helpers.model_costs` reads the token and price facts.
``tests/test_catalogue.py`` checks the file against the installed ``openai`` SDK (:func:`check_against_sdk`),
so a model OpenAI ships or retires cannot go unnoticed. ``DEFAULT_MODEL`` is the ONLY place in the course that
names the default model (``helpers.config`` falls back to it when ``VISION_MODEL`` is not set).

Why ``gpt-5.4-mini`` (checked 2026-12-07; the research, with every source, is in ``docs/FACTS.md``)
--------------------------------------------------------------------------------------
The criteria, in order: current (no announced shutdown), inexpensive, accepts images on Chat Completions,
and has image-token accounting we can implement.

* ``gpt-5.4-mini`` ($0.75 / $4.50) is current (no shutdown in the SDK's deprecation notes or on OpenAI's
  deprecations page), takes images on Chat Completions, and is in the patch table of OpenAI's "Images and
  vision" guide (32-px patches, 1536-patch budget): the best-documented current model. Caveat: the guide's
  multiplier (1.62) and community billing measurements (1.2) disagree; the course uses the measured 1.2.
* ``gpt-6-luna`` ($0.10 / $0.50, OpenAI's model page) is cheaper and current, and OpenAI names it as the
  replacement for gpt-4o, gpt-4o-mini, gpt-4.1, gpt-4.1-mini and gpt-5-nano. But the guide documents no image
  accounting for any GPT-6 model, so its image tokens are an *estimate*: not the default.
* Not chosen: gpt-4.1-mini and gpt-4o-mini (shut down 2027-01-14), gpt-5-mini and gpt-5-nano (2026-12-11),
  gpt-5.4-nano (deprecated, 2027-04-01). ``gpt-5.4-mini`` is a reasoning model: on Chat Completions it takes
  ``max_completion_tokens`` (not ``max_tokens``), and its reasoning tokens count against that limit.

Retired and scheduled shutdowns
-------------------------------
``RETIRED_MODELS`` holds names shut down on or before the catalogue's ``checked`` date; ``SCHEDULED_SHUTDOWNS``
those with an announced later date. :func:`retired_model` compares with today's date, so ``gpt-5`` becomes
"retired" by itself on 2026-12-11. ``replacement`` is always a model that is still current: where the
provider's named replacement has since been retired or scheduled too, it is the end of the provider's chain and
``note`` says so.

>>> retired_model("gpt-4-vision-preview").replacement
'gpt-6-luna'
>>> retired_model("gpt-4o-2024-08-06", on="2026-11-21") is None
True

Taught in notebooks/00_setup.ipynb (the default and retired names).
"""

from __future__ import annotations

import ast
import datetime as _dt
import functools
import json
import os
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from openai.types.shared import chat_model

from helpers.errors import ConfigurationError

#: The course's default model. See the module docstring for why; change it here and nowhere else.
DEFAULT_MODEL = "gpt-5.4-mini"

CATALOGUE_FILE = Path(__file__).with_name("models.json")


@functools.cache
def catalogue() -> dict[str, Any]:
    """The catalogue file, parsed once (``helpers/models.json``)."""
    return json.loads(CATALOGUE_FILE.read_text(encoding="utf-8"))


#: The date the catalogue's facts were checked.
CHECKED: str = catalogue()["checked"]

OPENAI_DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
#: Said of a fact known only from third-party copies (a source whose text contains it is announced as such).
REPORTED = "reported, unconfirmed"
AZURE_RETIREMENTS = catalogue()["sources"]["azure_retirements"]


@dataclass(frozen=True)
class RetiredModel:
    """A model name its provider shut down (or will), what to use instead, when, and where that is stated.

    ``source`` is a URL followed by ", checked YYYY-MM-DD"; ``note`` explains a replacement chain;
    ``provider`` is "openai" or "azure"; ``named`` is the replacement the provider itself names (None where it
    was not read), ``replacement`` the current model the course suggests (the end of the provider's chain).
    """

    name: str
    replacement: str
    retired_on: str
    source: str
    note: str = ""
    provider: str = "openai"
    named: str | None = field(default=None, compare=False)


def source_text(key: str, checked: str | None = None) -> str:
    """The catalogue source ``key`` as "<where>, checked <date>"."""
    return f"{catalogue()['sources'][key]}, checked {checked or CHECKED}"


def _record(name: str, facts: dict[str, Any], provider: str = "openai") -> RetiredModel | None:
    return None if not facts.get("shutdown") or not facts.get("use_now") else RetiredModel(name, facts["use_now"], facts["shutdown"],
                        source_text(facts["lifecycle_source"], facts.get("checked")), facts.get("note", ""),
                        provider, facts.get("replacement"))


def lifecycle_entries() -> dict[str, dict[str, Any]]:
    """Every name the catalogue knows, lower case -> its lifecycle facts (shutdown, replacement, use_now,
    status, lifecycle_source, note, vision, provider). Snapshot overrides and text-only names included."""
    out: dict[str, dict[str, Any]] = {}
    for row in catalogue()["models"]:
        base = {k: row.get(k) for k in ("shutdown", "replacement", "use_now", "status", "lifecycle_source")}
        base.update(vision=True, provider="openai", note=row.get("note", "") if row.get("shutdown") else "")
        for name in (row["name"], *row.get("aliases", ())):
            out[name] = dict(base)
        for name, override in row.get("snapshots", {}).items():
            out[name] = {**base, "note": "", **override}
    for group in catalogue()["text_only"]["groups"]:
        for name in group["names"]:
            out[name] = {**group, "vision": False, "provider": "openai"}
    for group in catalogue()["azure"]:
        for name in group["names"]:
            out[name] = {**group, "vision": True, "provider": "azure"}
    return out


def _split() -> tuple[dict[str, RetiredModel], dict[str, RetiredModel]]:
    retired: dict[str, RetiredModel] = {}
    scheduled: dict[str, RetiredModel] = {}
    for name, facts in lifecycle_entries().items():
        record = _record(name, facts, facts["provider"])
        if record is not None:
            (retired if record.retired_on <= CHECKED else scheduled)[name] = record
    return retired, scheduled


#: Names shut down on or before :data:`CHECKED` (keys: lower-case names; Azure: "<model> <version>"), and
#: announced shutdowns after it (still callable; :func:`retired_model` retires them once due).
RETIRED_MODELS, SCHEDULED_SHUTDOWNS = _split()


def today() -> _dt.date:
    """The date retirement checks compare with: today, unless ``VISION_CATALOG_DATE`` (YYYY-MM-DD) pins it.

    The test session pins it (see ``conftest.py``) to the date the notebooks' stored outputs were made, so they
    mean the same thing next year; a learner's session uses the real date, so a model is refused from the day
    it is shut down.
    """
    pinned = os.environ.get("VISION_CATALOG_DATE", "").strip()
    if pinned:
        try:
            return _dt.date.fromisoformat(pinned)
        except ValueError:
            raise ConfigurationError(f"VISION_CATALOG_DATE={pinned!r} is not a date.",
                                     fix="use the form YYYY-MM-DD, or unset it to use today's date.") from None
    return _dt.date.today()


def _parse_day(on: _dt.date | str | None) -> _dt.date:
    return today() if on is None else on if isinstance(on, _dt.date) else _dt.date.fromisoformat(on)


# "gpt-4o-2024-05-13", "gpt-4-0613": a dated snapshot of a base name.
_DATE_SUFFIX = re.compile(r"-(?:\d{4}-\d{2}-\d{2}|\d{4})$")


def normalise(name: str) -> str:
    """The one spelling of a model name the course compares: lower case, single spaces, no gateway prefix.

    ``"OpenAI/GPT-4o"`` (gateways, Azure AI Foundry) -> ``"gpt-4o"``; Azure's ``"gpt-4 vision-preview"`` keeps
    its space (:func:`hyphenated` gives ``"gpt-4-vision-preview"``). Every module that compares names uses this.

    >>> normalise(" OpenAI/GPT-4o "), hyphenated("gpt-4  vision-preview")
    ('gpt-4o', 'gpt-4-vision-preview')
    """
    raw = " ".join(str(name).strip().lower().split())
    return raw.rsplit("/", 1)[1] if "/" in raw else raw


def hyphenated(name: str) -> str:
    """:func:`normalise`, with spaces turned into hyphens (the cost tables' spelling)."""
    return normalise(name).replace(" ", "-")


def _candidates(name: str) -> list[str]:
    raw = normalise(name)
    spellings = [raw, raw.replace(" ", "-"), raw.replace(":", " "), raw.replace("(", " ").replace(")", "")]
    return list(dict.fromkeys(" ".join(s.split()) for s in spellings))


def _lookup(name: str, table: dict[str, RetiredModel]) -> RetiredModel | None:
    for candidate in _candidates(name):
        if candidate in table:
            return table[candidate]
    for candidate in _candidates(name):               # undated record covers its dated snapshots
        base = _DATE_SUFFIX.sub("", candidate)
        if base != candidate and base in table:
            return table[base]
    return None


def retired_model(name: str, on: _dt.date | str | None = None) -> RetiredModel | None:
    """The shutdown record for ``name`` if it is shut down on the date ``on`` (default: today), else None.

    Finds exact names, dated snapshots of a retired name (``o1-2024-12-17`` via ``o1``), gateway prefixes
    (``openai/o1``) and Azure's spellings (``vision-preview``, ``gpt-4 vision-preview``). A snapshot with its
    own date in the catalogue keeps it (``gpt-4o-2024-05-13`` was shut down on 2026-10-23, ``gpt-4o`` is not).

    >>> retired_model("gpt-4 vision-preview").provider
    'azure'
    >>> retired_model("gpt-5", on="2026-12-10") is None, retired_model("gpt-5", on="2026-12-11").retired_on
    (True, '2026-12-11')

    Taught in notebooks/00_setup.ipynb.
    """
    if not isinstance(name, str) or not name.strip():
        return None
    record = _lookup(name, RETIRED_MODELS)
    if record is not None:
        return record
    scheduled = _lookup(name, SCHEDULED_SHUTDOWNS)
    if scheduled is not None and _parse_day(on) >= _dt.date.fromisoformat(scheduled.retired_on):
        return scheduled
    return None


def scheduled_shutdown(name: str) -> RetiredModel | None:
    """The announced future shutdown of ``name`` (whatever today's date is), or None if none is announced.

    >>> scheduled_shutdown("gpt-4o").retired_on
    '2027-01-14'

    Taught in notebooks/00_setup.ipynb.
    """
    if not isinstance(name, str) or not name.strip():
        return None
    return _lookup(name, SCHEDULED_SHUTDOWNS)


def retirement_table(include_scheduled: bool = True) -> list[dict]:
    """Rows (name, replacement, retired_on, provider, status, note, source) for a notebook table, by date.

    >>> retirement_table()[0]["retired_on"]
    '2024-09-13'

    Taught in notebooks/00_setup.ipynb.
    """
    records = [(r, "retired") for r in RETIRED_MODELS.values()]
    if include_scheduled:
        records += [(r, "scheduled") for r in SCHEDULED_SHUTDOWNS.values()]
    records.sort(key=lambda item: (item[0].retired_on, item[0].provider, item[0].name))
    return [{"name": r.name, "replacement": r.replacement, "retired_on": r.retired_on, "provider": r.provider,
             "status": status, "note": r.note, "source": r.source} for r, status in records]


# --- the installed SDK's model list ------------------------------------------------------------------

_ANNOUNCED = re.compile(r"^- ((?:\"[^\"]+\",?\s*)+):\s*(Announced shutdown date:\s*(\d{4}-\d{2}-\d{2})|.*)", re.M)


def sdk_models() -> dict[str, str | None]:
    """The installed ``openai`` SDK's chat model names -> the shutdown date its deprecation notes announce
    (None: no date; "unsupported" for names it keeps only for compatibility).

    Read from ``openai.types.shared.chat_model``: the ``ChatModel`` literal and the "Deprecated values" text
    the SDK's generator writes under it (parsed with :mod:`ast`, nothing is executed).
    """
    names = typing.get_args(chat_model.ChatModel)
    tree = ast.parse(Path(chat_model.__file__).read_text(encoding="utf-8"))
    notes = " ".join(node.value.value for node in tree.body
                     if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
                     and isinstance(node.value.value, str))
    notes = re.sub(r"\n\s+", " ", notes).replace(" - \"", "\n- \"")
    dates: dict[str, str | None] = {}
    for listed, said, day in _ANNOUNCED.findall(notes):
        for name in re.findall(r"\"([^\"]+)\"", listed):
            dates[name] = day or ("unsupported" if "Not a supported model" in said else None)
    return {name: dates.get(name) for name in names}


@dataclass(frozen=True)
class SdkCheck:
    """What :func:`check_against_sdk` found: names the catalogue lacks, and dates that disagree."""

    unknown: list[str]
    mismatched: list[str]

    def __str__(self) -> str:
        lines = []
        if self.unknown:
            lines.append("Not in helpers/models.json (add each, with its token family, prices, shutdown and "
                         "sources, or list it under text_only): " + ", ".join(self.unknown))
        if self.mismatched:
            lines.append("Shutdown dates that disagree with the SDK's deprecation notes:\n  "
                         + "\n  ".join(self.mismatched))
        return "\n".join(lines) or "The catalogue agrees with the SDK."


def check_against_sdk(listed: dict[str, str | None] | None = None) -> SdkCheck:
    """Compare the catalogue with the SDK's model list (default: :func:`sdk_models` of the installed SDK).

    Fails on every name the SDK lists that the catalogue does not know (a new model: it may take images), and
    on every name whose shutdown differs: announced by the SDK but live in the catalogue, or vice versa.
    """
    listed = sdk_models() if listed is None else listed
    known = lifecycle_entries()
    unknown, mismatched = [], []
    for name, announced in sorted(listed.items()):
        facts = known.get(name)
        if facts is None:
            base = _DATE_SUFFIX.sub("", name)
            facts = known.get(base) if base != name else None
        if facts is None:
            unknown.append(name)
            continue
        ours = facts.get("shutdown")
        theirs = None if announced == "unsupported" else announced
        if ours != theirs:
            mismatched.append(f"{name}: SDK {theirs or 'no shutdown'}, catalogue {ours or 'no shutdown'}")
    return SdkCheck(unknown, mismatched)


#: Model families that reason before answering. On Chat Completions they reject ``max_tokens`` ("Use
#: 'max_completion_tokens' instead"), and their hidden reasoning tokens count against
#: ``max_completion_tokens``. Sources: OpenAI's reasoning guide and the Chat Completions reference
#: (https://developers.openai.com/api/docs/guides/reasoning), checked 2026-11-21; see docs/FACTS.md section 7.
_REASONING = re.compile(r"^(?:o\d(?:-|$)|gpt-5(?!-chat)|gpt-6)")


def is_reasoning_model(name: str) -> bool:
    """True for reasoning models (o-series, gpt-5 and later, gpt-6), which take ``max_completion_tokens`` only.

    >>> is_reasoning_model("gpt-5.4-mini"), is_reasoning_model("o4-mini-2025-04-16"), is_reasoning_model("gpt-4.1")
    (True, True, False)
    >>> is_reasoning_model("gpt-5-chat-latest")
    False
    """
    return bool(_REASONING.match(normalise(name)))


def token_limit_field(model: str, provider: str = "openai") -> str:
    """The request field that caps the answer's length: it follows the *model*, not the provider.

    Reasoning models (o-series, gpt-5 and later) reject ``max_tokens`` on every provider, OpenAI, Azure or a
    proxy in front of them, and take ``max_completion_tokens``, which also counts their hidden reasoning
    tokens (OpenAI's reasoning guide and Chat Completions reference, https://developers.openai.com/api/docs/
    guides/reasoning, checked 2026-11-21). Other models: OpenAI and Azure take ``max_completion_tokens``
    (``max_tokens`` is deprecated there); a compatible engine (Ollama, vLLM, LM Studio) running its own model
    gets the long-supported ``max_tokens``.

    >>> token_limit_field("gpt-5.4-mini", "compatible"), token_limit_field("llava", "compatible")
    ('max_completion_tokens', 'max_tokens')
    >>> token_limit_field("gpt-4o", "azure")
    'max_completion_tokens'
    """
    if is_reasoning_model(model) or provider != "compatible":
        return "max_completion_tokens"
    return "max_tokens"


# --- the model in use ---------------------------------------------------------------------------------
# helpers.client.setup() resolves the settings once and tells this layer which model is in use and, on Azure,
# which deployment name stands for it. Lower layers (tokens, images, video) read it from here instead of
# reading the environment again, so ``image_tokens(w, h, model=model)`` works with the deployment name that
# setup() returns, and ``model=None`` means the configured model.

_IN_USE: dict[str, str] = {"model": DEFAULT_MODEL}
_DEPLOYMENTS: dict[str, str] = {}


def use_model(model: str, deployment: str | None = None) -> None:
    """Record the configured model (and the Azure deployment that runs it). Called by ``setup()``.

    >>> use_model("gpt-4o", deployment="my-vision"); model_behind("my-vision"), configured_model()
    ('gpt-4o', 'gpt-4o')
    >>> use_model(DEFAULT_MODEL)
    """
    _IN_USE["model"] = model
    _DEPLOYMENTS.clear()
    if deployment:
        _DEPLOYMENTS[deployment] = model


def configured_model() -> str:
    """The model ``setup()`` configured (``VISION_MODEL``, else :data:`DEFAULT_MODEL`)."""
    return _IN_USE["model"]


def model_behind(name: str) -> str:
    """The model behind ``name``: the configured Azure deployment's model, else ``name`` itself.

    >>> model_behind("gpt-4o")
    'gpt-4o'
    """
    return _DEPLOYMENTS.get(name, name) if isinstance(name, str) else name

