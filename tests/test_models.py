"""helpers.models: the course default is current and costed; retired names (dated, Azure spellings)
are recognised, each with a current replacement, a date and a source."""

from __future__ import annotations

import datetime as dt
import doctest
import re

import pytest

from helpers import models
from helpers.errors import RetiredModelError
from helpers.models import (
    CHECKED,
    DEFAULT_MODEL,
    RETIRED_MODELS,
    SCHEDULED_SHUTDOWNS,
    RetiredModel,
    retired_model,
    retirement_table,
    scheduled_shutdown,
)
from helpers.tokens import model_cost, resolve_model

ALL_RECORDS = list(RETIRED_MODELS.values()) + list(SCHEDULED_SHUTDOWNS.values())


# --- the default ----------------------------------------------------------------------------------

def test_default_model_is_current_on_the_check_date_and_today():
    assert retired_model(DEFAULT_MODEL, on=CHECKED) is None
    assert retired_model(DEFAULT_MODEL) is None
    assert scheduled_shutdown(DEFAULT_MODEL) is None


def test_default_model_is_in_the_costs_table_with_prices_and_non_estimated_accounting():
    assert resolve_model(DEFAULT_MODEL) == DEFAULT_MODEL
    cost = model_cost(DEFAULT_MODEL)
    assert cost.input_per_million is not None and cost.output_per_million is not None
    assert cost.evidence != "estimate"          # the reason it was chosen over gpt-6-luna
    assert cost.input_per_million <= 1.0        # "inexpensive": under $1 per million input tokens


# --- retired names --------------------------------------------------------------------------------

@pytest.mark.parametrize(("name", "retired_on"), [
    ("gpt-4-vision-preview", "2024-12-06"),
    ("gpt-4-1106-vision-preview", "2024-12-06"),
    ("gpt-4-turbo", "2026-10-23"),
    ("gpt-4-turbo-2024-04-09", "2026-10-23"),
    ("gpt-4-1106-preview", "2026-10-23"),
    ("gpt-4-0125-preview", "2026-03-26"),
    ("gpt-4-turbo-preview", "2026-03-26"),
    ("gpt-4.5-preview", "2025-07-14"),
    ("gpt-4.5-preview-2025-02-27", "2025-07-14"),
    ("o1", "2026-10-23"),
    ("o1-2024-12-17", "2026-10-23"),
    ("o4-mini", "2026-10-23"),
    ("o4-mini-2025-04-16", "2026-10-23"),
    ("gpt-4.1-nano", "2026-10-23"),
    ("gpt-4.1-nano-2025-04-14", "2026-10-23"),
    ("gpt-4o-2024-05-13", "2026-10-23"),
    ("vision-preview", "2025-05-15"),               # Azure: model gpt-4, version vision-preview
    ("gpt-4 vision-preview", "2025-05-15"),
    ("GPT-4  Vision-Preview", "2025-05-15"),
    ("gpt-4:vision-preview", "2025-05-15"),
    ("openai/o1", "2026-10-23"),
    ("  GPT-4-VISION-PREVIEW ", "2024-12-06"),
])
def test_retired_names_are_found_with_a_replacement(name, retired_on):
    record = retired_model(name, on=CHECKED)
    assert record is not None, name
    assert record.retired_on == retired_on
    assert record.replacement and record.replacement != record.name
    assert retired_model(name) is not None            # still retired today


def test_azure_spellings_get_the_azure_record():
    assert retired_model("vision-preview").provider == "azure"
    assert retired_model("gpt-4 vision-preview").provider == "azure"
    assert retired_model("gpt-4-vision-preview").provider == "openai"
    assert "enhancements" in retired_model("vision-preview").note


def test_current_names_and_other_snapshots_are_not_retired():
    for name in ("gpt-4o", "gpt-4o-2024-08-06", "gpt-4o-mini", "gpt-4.1-mini-2025-04-14", "gpt-5",
                 "gpt-5-mini", "gpt-6-luna", "gpt-5.4-nano", "my-azure-deployment", ""):
        assert retired_model(name, on=CHECKED) is None, name
    assert retired_model(None) is None  # type: ignore[arg-type]


def test_scheduled_shutdowns_take_effect_on_their_date():
    assert retired_model("gpt-5", on="2026-12-10") is None
    # Replacements as OpenAI's deprecations page names them now (gpt-5.6-* at the 2026-06-11 notice).
    assert retired_model("gpt-5", on="2026-12-11").replacement == "gpt-6.1-sol"
    assert retired_model("gpt-5-mini-2025-08-07", on=dt.date(2026, 12, 11)).replacement == "gpt-6.1-terra"
    assert retired_model("gpt-4o-2024-11-20", on="2027-01-13") is None
    assert retired_model("gpt-4o-2024-11-20", on="2027-01-14").replacement == "gpt-6-luna"
    assert scheduled_shutdown("gpt-4.1-mini").retired_on == "2027-01-14"
    assert scheduled_shutdown("gpt-4-vision-preview") is None      # already retired, not scheduled


@pytest.mark.parametrize("record", ALL_RECORDS, ids=lambda r: f"{r.provider}:{r.name}")
def test_every_record_is_dated_sourced_and_points_to_a_current_costed_model(record: RetiredModel):
    day = dt.date.fromisoformat(record.retired_on)
    if record.name in RETIRED_MODELS:
        assert day <= dt.date.fromisoformat(CHECKED)
    else:
        assert day > dt.date.fromisoformat(CHECKED)
    assert re.match(r"https://", record.source) and re.search(r", checked \d{4}-\d{2}-\d{2}", record.source)
    assert record.provider in ("openai", "azure")
    # The replacement is one the course can cost, and it is not retired itself.
    assert resolve_model(record.replacement) is not None, record.replacement
    assert retired_model(record.replacement, on=CHECKED) is None, record.replacement


def test_the_2027_shutdowns_are_confirmed_and_gpt6_is_named_as_openai_names_it():
    # Issue 22: the installed SDK's deprecation notes list the 2027-01-14 shutdowns and the GPT-6 models, so
    # they are no longer "reported, unconfirmed" (they were, from third-party copies, until 2026-12-07).
    for record in ALL_RECORDS:
        if record.retired_on == "2027-01-14" and record.provider == "openai":
            assert models.REPORTED not in record.source and record.replacement == "gpt-6-luna", record
    from helpers.client import shutdown_notice
    assert "gpt-4o is scheduled to shut down on 2027-01-14: plan to switch to gpt-6-luna" in shutdown_notice("gpt-4o")


def test_azure_vision_preview_retired_on_2025_05_15():
    # Azure's model-retirements page (re-checked 2026-12-02): moved from 2025-05-01 in April 2025.
    assert retired_model("gpt-4 vision-preview").retired_on == "2025-05-15"


def test_keys_are_the_lower_case_names():
    for key, record in RETIRED_MODELS.items():
        assert key == record.name == key.lower().strip()


def test_a_record_builds_the_course_error_with_what_to_do():
    record = retired_model("gpt-4-vision-preview")
    err = RetiredModelError(record.name, replacement=record.replacement, retired_on=record.retired_on,
                            source=record.source)
    assert "2024-12-06" in str(err) and "VISION_MODEL=gpt-6-luna" in str(err)
    assert isinstance(err, ValueError)


def test_retirement_table_is_sorted_by_date_with_statuses():
    rows = retirement_table()
    assert [r["retired_on"] for r in rows] == sorted(r["retired_on"] for r in rows)
    assert {r["status"] for r in rows} == {"retired", "scheduled"}
    assert all(r["status"] == "retired" for r in retirement_table(include_scheduled=False))
    assert len(rows) == len(RETIRED_MODELS) + len(SCHEDULED_SHUTDOWNS)


def test_docstring_examples_run():
    assert doctest.testmod(models).failed == 0
