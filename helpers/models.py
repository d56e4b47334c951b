"""The course's default model, and the model names that have been shut down (with what to use instead).

``DEFAULT_MODEL`` is the ONLY place in the course that names the default model; everything else reads it
from here (``helpers.config`` falls back to it when ``VISION_MODEL`` is not set).

Why ``gpt-5.4-mini`` (checked 2026-11-21; the research, with every source, is in ``docs/FACTS.md``)
--------------------------------------------------------------------------------------
The criteria, in order: current (no announced shutdown), inexpensive, accepts images on Chat Completions,
and has image-token accounting we can implement.

* ``gpt-6-luna`` (reported, unconfirmed: released 2026-09-22, $0.10 in / $0.50 out per 1M tokens, and named
  by OpenAI as the replacement for gpt-4o, gpt-4o-mini, gpt-4.1 and gpt-4.1-mini) would be the cheapest
  current vision model. Every claim about it comes from third-party copies; we found no OpenAI page for it, nor
  one that documents how it counts image tokens (third parties: 32-px patches x 1.2). So it is in the cost
  table as an *estimate*, it is not the default, and no suggested replacement below depends on it.
* ``gpt-5.4-mini`` (released 2026-03-17, $0.75 / $4.50) is current (no shutdown announced on OpenAI's
  deprecations page), takes images on Chat Completions, and is listed in the patch-family table of
  OpenAI's "Images and vision" guide (32-px patches, 1536-patch budget). That makes it the best-documented
  current model. Caveat: the guide's multiplier (1.62) and community billing measurements (1.2) disagree;
  the cost table uses the measured 1.2 and says so.
* Not chosen: gpt-4.1-mini and gpt-4o-mini (documented, but reported, unconfirmed, to shut down on
  2027-01-14), gpt-5-mini and
  gpt-5-nano (shut down on 2026-12-11), gpt-4.1-nano and o4-mini (shut down on 2026-10-23).

``gpt-5.4-mini`` is a reasoning model: on Chat Completions it takes ``max_completion_tokens`` (not
``max_tokens``), and its reasoning tokens count against that limit.

Retired and scheduled shutdowns
-------------------------------
``RETIRED_MODELS`` holds names that were shut down on or before 2026-11-21 (the date this was checked);
``SCHEDULED_SHUTDOWNS`` holds names with an announced shutdown date after it. :func:`retired_model` looks in
both and compares with today's date, so ``gpt-5`` becomes "retired" by itself on 2026-12-11.
``replacement`` is always a model that is still current: where the provider's named replacement has since
been retired or scheduled too, we follow the provider's chain to its end and ``note`` says so.

>>> retired_model("gpt-4-vision-preview").replacement
'gpt-5.4-mini'
>>> retired_model("gpt-4o-2024-08-06", on="2026-11-21") is None
True

Taught in notebooks/00_setup.ipynb (the default and retired names).
"""

from __future__ import annotations

import datetime as _dt
import os
import re
from dataclasses import dataclass

from helpers.errors import ConfigurationError

#: The course's default model. See the module docstring for why; change it here and nowhere else.
DEFAULT_MODEL = "gpt-5.4-mini"

#: The date the facts in this module were checked.
CHECKED = "2026-11-21"

OPENAI_DEPRECATIONS = "https://developers.openai.com/api/docs/deprecations"
#: Said of every fact known only from third-party copies (the gpt-6 models, the 2027-01-14 shutdowns).
REPORTED = "reported, unconfirmed"
#: Replacement suggested instead of gpt-6-luna, whose existence rests on third-party copies alone: the course
#: default, documented in OpenAI's own vision guide and current.
_CONFIRMED_SMALL = "gpt-5.4-mini"
AZURE_RETIREMENTS = "https://learn.microsoft.com/azure/ai-foundry/openai/concepts/model-retirements"


@dataclass(frozen=True)
class RetiredModel:
    """A model name its provider shut down (or will), what to use instead, when, and where that is stated.

    ``source`` is a URL followed by ", checked YYYY-MM-DD"; ``note`` explains a replacement chain or a date that
    only a third party confirms; ``provider`` is "openai" or "azure".
    """

    name: str
    replacement: str
    retired_on: str
    source: str
    note: str = ""
    provider: str = "openai"


def _src(url: str, extra: str = "") -> str:
    return f"{url}, checked {CHECKED}" + (f"; {extra}" if extra else "")


def _records(names: tuple[str, ...], replacement: str, retired_on: str, source: str, note: str = "",
             provider: str = "openai") -> dict[str, RetiredModel]:
    return {n: RetiredModel(n, replacement, retired_on, source, note, provider) for n in names}


_GPT6 = (f"Third-party copies of OpenAI's 2026-10-14 notice name gpt-6-luna ({REPORTED}); we suggest "
         f"{_CONFIRMED_SMALL}, which OpenAI's own pages document.")
_VIA_GPT4O = (f"OpenAI named gpt-4o as the replacement; gpt-4o itself is {REPORTED} to shut down on 2027-01-14. "
              + _GPT6)

#: Names shut down on or before 2026-11-21. Keys are lower-case model names (Azure: "<model> <version>").
RETIRED_MODELS: dict[str, RetiredModel] = {
    # The models of the 2023-2024 seed notebooks (OpenAI deprecation notice of 2024-06-06).
    **_records(("gpt-4-vision-preview", "gpt-4-1106-vision-preview"), _CONFIRMED_SMALL, "2024-12-06",
               _src(OPENAI_DEPRECATIONS, "2024-06-06 notice"), _VIA_GPT4O),
    **_records(("gpt-4-32k", "gpt-4-32k-0613", "gpt-4-32k-0314"), _CONFIRMED_SMALL, "2025-06-06",
               _src(OPENAI_DEPRECATIONS, "2024-06-06 notice"), _VIA_GPT4O),
    **_records(("gpt-4.5-preview", "gpt-4.5-preview-2025-02-27"), _CONFIRMED_SMALL, "2025-07-14",
               _src(OPENAI_DEPRECATIONS, "2025-04-14 notice"),
               f"OpenAI named gpt-4.1; gpt-4.1 itself is {REPORTED} to shut down on 2027-01-14. " + _GPT6),
    **_records(("o1-preview", "o1-preview-2024-09-12"), "gpt-5.6-sol", "2025-07-28",
               _src(OPENAI_DEPRECATIONS, "2025-04-28 notice"),
               "OpenAI named o3; o3 itself shuts down on 2026-12-11 with gpt-5.6-sol as its replacement. "
               "Text-only model."),
    **_records(("o1-mini", "o1-mini-2024-09-12"), "gpt-5.6-terra", "2025-10-27",
               _src(OPENAI_DEPRECATIONS, "2025-04-28 notice"),
               "OpenAI named o4-mini; o4-mini itself was shut down on 2026-10-23 (replacement gpt-5.6-terra). "
               "Text-only model."),
    **_records(("gpt-4-0314", "gpt-4-0125-preview", "gpt-4-turbo-preview"), "gpt-5.6-sol", "2026-03-26",
               _src(OPENAI_DEPRECATIONS, "date from a third-party copy of the page, not seen on OpenAI's own"),
               "Text-only models. gpt-4-turbo-preview pointed to gpt-4-0125-preview. Replacement: the one "
               "OpenAI names for the rest of the GPT-4 family."),
    # OpenAI's 2026-04-22 "legacy GPT model snapshots" notice, shutdowns on 2026-10-23.
    **_records(("gpt-4-turbo", "gpt-4-turbo-2024-04-09", "gpt-4-1106-preview", "gpt-4", "gpt-4-0613"),
               "gpt-5.6-sol", "2026-10-23", _src(OPENAI_DEPRECATIONS, "2026-04-22 notice")),
    **_records(("gpt-4o-2024-05-13",), "gpt-5.6-sol", "2026-10-23", _src(OPENAI_DEPRECATIONS, "2026-04-22 notice")),
    **_records(("o1", "o1-2024-12-17", "o3-mini", "o3-mini-2025-01-31"), "gpt-5.6-sol", "2026-10-23",
               _src(OPENAI_DEPRECATIONS, "2026-04-22 notice")),
    **_records(("o4-mini", "o4-mini-2025-04-16"), "gpt-5.6-terra", "2026-10-23",
               _src(OPENAI_DEPRECATIONS, "2026-04-22 notice")),
    **_records(("gpt-4.1-nano", "gpt-4.1-nano-2025-04-14"), "gpt-5.6-luna", "2026-10-23",
               _src(OPENAI_DEPRECATIONS, "2026-04-22 notice; replacement from third-party copies")),
    **_records(("gpt-3.5-turbo", "gpt-3.5-turbo-0125"), "gpt-5.6-terra", "2026-10-23",
               _src(OPENAI_DEPRECATIONS, "2026-04-22 notice"),
               "Text-only. The April 2026 copy of the notice named gpt-4.1-mini (itself reported, unconfirmed, to "
               "shut down on 2027-01-14); the October 2026 copies name gpt-5.6-terra."),
    # Azure OpenAI: GPT-4 Turbo with Vision, the model behind the retired "vision enhancements".
    **_records(("vision-preview", "gpt-4 vision-preview"), "gpt-4o", "2025-05-15",
               _src(AZURE_RETIREMENTS, "re-checked 2026-12-02"), "Azure deployments of gpt-4 version "
               "vision-preview were upgraded to gpt-4o 2024-11-20 and the version retired on 2025-05-15 (moved from "
               "2025-05-01 in April 2025, itself moved from 2025-04-02; the 1106-Preview and 0125-Preview versions "
               "stayed on 2025-05-01). "
               "Its Azure vision enhancements (OCR, object grounding, video prompts) existed only for this "
               "version and went with it. Azure retires its gpt-4o versions 2024-08-06/2024-11-20 on "
               "2027-04-14 (third-party summary).", provider="azure"),
}

#: Announced shutdowns after 2026-11-21: still callable today, retired by :func:`retired_model` once due.
SCHEDULED_SHUTDOWNS: dict[str, RetiredModel] = {
    **_records(("gpt-5", "gpt-5-2025-08-07", "o3", "o3-2025-04-16"), "gpt-5.6-sol", "2026-12-11",
               _src(OPENAI_DEPRECATIONS, "2026-06-11 notice")),
    **_records(("gpt-5-mini", "gpt-5-mini-2025-08-07"), "gpt-5.6-terra", "2026-12-11",
               _src(OPENAI_DEPRECATIONS, "2026-06-11 notice")),
    **_records(("gpt-5-nano", "gpt-5-nano-2025-08-07"), "gpt-5.6-luna", "2026-12-11",
               _src(OPENAI_DEPRECATIONS, "2026-06-11 notice")),
    **_records(("gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-2024-11-20", "gpt-4o-mini", "gpt-4o-mini-2024-07-18",
                "gpt-4.1", "gpt-4.1-2025-04-14", "gpt-4.1-mini", "gpt-4.1-mini-2025-04-14"),
               _CONFIRMED_SMALL, "2027-01-14",
               _src(OPENAI_DEPRECATIONS, f"2026-10-14 notice, {REPORTED}: known from third-party copies only"),
               _GPT6),
}


def today() -> _dt.date:
    """The date retirement checks compare with: today, unless ``VISION_CATALOG_DATE`` (YYYY-MM-DD) pins it.

    The test session pins it to :data:`CHECKED` (see ``conftest.py``), so the stored notebook outputs and the
    tests mean the same thing next year as on the day the facts were checked; a learner's session uses the
    real date, so a model is refused from the day it is shut down.
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
    if on is None:
        return today()
    if isinstance(on, _dt.date):
        return on
    return _dt.date.fromisoformat(on)


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
    out: list[str] = []
    for s in spellings:
        s = " ".join(s.split())
        if s not in out:
            out.append(s)
    return out


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
    (``openai/o1``) and Azure's spellings (``vision-preview``, ``gpt-4 vision-preview``). A snapshot that
    is not itself listed is not retired just because another snapshot of the same model is
    (``gpt-4o-2024-05-13`` is retired; ``gpt-4o-2024-08-06`` is not, yet).

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
    '2024-12-06'

    Taught in notebooks/00_setup.ipynb.
    """
    records = [(r, "retired") for r in RETIRED_MODELS.values()]
    if include_scheduled:
        records += [(r, "scheduled") for r in SCHEDULED_SHUTDOWNS.values()]
    records.sort(key=lambda item: (item[0].retired_on, item[0].provider, item[0].name))
    return [{"name": r.name, "replacement": r.replacement, "retired_on": r.retired_on, "provider": r.provider,
             "status": status, "note": r.note, "source": r.source} for r, status in records]


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

