"""The model catalogue (helpers/models.json) against the installed openai SDK, and the rules it carries (issue 22).

The SDK's ``ChatModel`` list and its "Deprecated values" notes are OpenAI's machine-readable word on which
models exist and when they shut down. A catalogue that misses a model, or calls one live that the SDK says is
shut down (or the reverse), fails here with the list of names, the day the SDK is upgraded.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import warnings

import pytest

from helpers import model_costs, models, tokens
from helpers.errors import InvalidDetailError, UnknownModelError
from helpers.model_costs import EstimateWarning, estimate_cost, model_cost

CAT = models.catalogue()


# --- the catalogue against the installed SDK ------------------------------------------------------------

def test_the_installed_sdk_lists_nothing_the_catalogue_does_not_know_and_agrees_on_every_shutdown():
    check = models.check_against_sdk()
    assert not check.unknown and not check.mismatched, str(check)


def test_the_sdk_list_is_really_read():
    listed = models.sdk_models()
    assert len(listed) > 50 and "gpt-6-luna" in listed and listed["gpt-6-luna"] is None
    assert listed["gpt-4o"] == "2027-01-14" and listed["gpt-5-chat-latest"] == "2026-07-23"
    assert listed["gpt-5.1-mini"] == "unsupported"


def test_a_planted_unknown_name_fails_the_check_by_name():
    planted = {**models.sdk_models(), "gpt-7-nova": None, "gpt-7-nova-2027-05-01": None}
    check = models.check_against_sdk(planted)
    assert check.unknown == ["gpt-7-nova", "gpt-7-nova-2027-05-01"]
    assert "gpt-7-nova" in str(check) and "helpers/models.json" in str(check)


@pytest.mark.parametrize(("name", "announced", "said"), [
    ("gpt-6-luna", "2027-09-01", "gpt-6-luna: SDK 2027-09-01, catalogue no shutdown"),   # SDK retires a live one
    ("gpt-4o", None, "gpt-4o: SDK no shutdown, catalogue 2027-01-14"),                  # or un-retires one
    ("gpt-4o-2024-05-13", "2027-01-14", "gpt-4o-2024-05-13: SDK 2027-01-14, catalogue 2026-10-23"),
])
def test_a_status_the_sdk_disagrees_with_fails_the_check(name, announced, said):
    check = models.check_against_sdk({**models.sdk_models(), name: announced})
    assert check.mismatched == [said]


# --- the file itself --------------------------------------------------------------------------------

def test_every_fact_names_a_source_and_every_status_matches_its_date():
    sources = CAT["sources"]
    checked = dt.date.fromisoformat(CAT["checked"])
    for entry in CAT["models"]:
        assert entry["tokens_source"] in sources and entry["prices"]["source"] in sources, entry["name"]
        assert entry["prices"]["evidence"] in ("documented", "third-party", "estimate"), entry["name"]
        if entry.get("tokens_evidence") == "estimate" or entry["prices"]["evidence"] == "estimate":
            assert entry.get("note") or entry["prices"].get("note"), f"{entry['name']}: say why it is an estimate"
        lifecycles = [entry, *entry.get("snapshots", {}).values()]
        for facts in lifecycles:
            if facts.get("shutdown"):
                assert facts["lifecycle_source"] in sources and sources[facts["lifecycle_source"]].startswith("https://")
                want = "shutdown" if dt.date.fromisoformat(facts["shutdown"]) <= checked else "deprecated"
                assert facts["status"] == want, entry["name"]
            else:
                assert facts.get("status", "current") == "current", entry["name"]


def test_every_replacement_is_current_and_costed():
    for name, facts in models.lifecycle_entries().items():
        use_now = facts.get("use_now")
        if use_now and facts["provider"] == "azure":   # Azure's own calendar: its gpt-4o versions run to 2027-04-14
            assert model_costs.is_known_model(use_now)
        elif use_now:
            assert model_costs.is_known_model(use_now), (name, use_now)
            assert models.scheduled_shutdown(use_now) is None and models.retired_model(use_now) is None, (name, use_now)


def test_every_vision_model_in_the_sdk_is_priced_and_tokenised():
    known = models.lifecycle_entries()
    for name in models.sdk_models():
        facts = known.get(name) or known.get(re.sub(r"-\d{4}-\d{2}-\d{2}$", "", name))
        if facts and facts["vision"]:
            cost = model_cost(name)
            assert cost.input_per_million is not None and cost.output_per_million is not None, name
            assert tokens.image_tokens(1024, 1024, "high", name) > 0


def test_code_reads_the_file_once():
    assert models.catalogue() is models.catalogue()
    assert json.loads(models.CATALOGUE_FILE.read_text(encoding="utf-8")) == models.catalogue()


# --- 2026 facts ------------------------------------------------------------------------------------------

def test_december_2026_facts():
    assert (model_cost("gpt-5.6-terra").input_per_million, model_cost("gpt-5.6-terra").output_per_million) == (2.0, 12.0)
    assert (model_cost("gpt-5.6-luna").input_per_million, model_cost("gpt-5.6-luna").output_per_million) == (0.2, 1.2)
    assert (model_cost("gpt-6-luna").input_per_million, model_cost("gpt-6-luna").output_per_million) == (0.1, 0.5)
    assert models.scheduled_shutdown("gpt-5").replacement == "gpt-6.1-sol"
    assert models.scheduled_shutdown("o3").replacement == "gpt-6.1-sol"
    assert models.scheduled_shutdown("gpt-5-mini").replacement == "gpt-6.1-terra"
    assert models.scheduled_shutdown("gpt-5-nano").replacement == "gpt-6-luna"
    assert models.scheduled_shutdown("gpt-5.4-nano").retired_on == "2027-04-01"
    assert models.scheduled_shutdown("gpt-5.1").retired_on == "2027-04-01"
    assert models.retired_model("gpt-5-chat-latest", on="2026-07-23").replacement == "gpt-5.5"
    assert models.scheduled_shutdown(models.DEFAULT_MODEL) is None


# --- detail="original" on gpt-5.4 and future models ------------------------------------------------------

@pytest.mark.parametrize("model", ["gpt-6-astra", "gpt-6.2-sol", "gpt-6.1-terra", "gpt-6-luna"])
def test_gpt6_models_take_original_and_keep_the_input_size(model):
    assert tokens.check_detail("original", model) == "original"
    assert tokens.scaled_size(5000, 3000, "original", model) == (5000, 3000)
    assert tokens.image_tokens(5000, 3000, "original", model) == -(-157 * 94 * 12 // 10)   # ceil(14758 x 1.2)
    assert tokens.scaled_size(5000, 3000, "auto", model) == (5000, 3000)                   # auto = original
    assert tokens.scaled_size(5000, 3000, "high", model) == (2048, 1229)                   # 2048 px, 2,500 patches


def test_original_is_still_refused_before_gpt_5_4():
    with pytest.raises(InvalidDetailError, match="gpt-5.4 and future models"):
        tokens.image_tokens(1000, 1000, "original", "gpt-5.4-mini")


# --- unknown models: estimates, not errors ----------------------------------------------------------------

def test_an_unknown_openai_name_gets_the_nearest_family_with_a_visible_estimate_label():
    with pytest.warns(EstimateWarning, match="gpt-6.3-sol is not in the course's catalogue.*gpt-6.2-sol"):
        cost = model_cost("gpt-6.3-sol")
    assert cost.estimate_of == "gpt-6.2-sol" and cost.is_estimate and cost.name == "gpt-6.3-sol"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EstimateWarning)
        assert tokens.image_tokens(1024, 1024, "original", "gpt-6.3-sol") == tokens.image_tokens(
            1024, 1024, "original", "gpt-6.2-sol")
        price = estimate_cost("gpt-6.3-sol", 1_000, 100)
    assert price == estimate_cost("gpt-6.2-sol", 1_000, 100)
    assert price.estimate and "estimate" in price.label and "gpt-6.2-sol" in price.label
    assert not estimate_cost("gpt-6.2-sol", 1_000, 100).estimate


@pytest.mark.parametrize(("name", "nearest"), [("gpt-7-nova", "gpt-6.2-astra"), ("gpt-6.1-luna", "gpt-6-luna"),
                                               ("gpt-5.7-mini", "gpt-5.4-mini"), ("o5-mini", "o4-mini"),
                                               ("openai/gpt-6.3-terra-2027-02-01", "gpt-6.1-terra")])
def test_nearest_family(name, nearest):
    assert model_costs.nearest_known(name) == nearest


@pytest.mark.parametrize("nonsense", ["my-llava", "llava:13b", "gpt", "", "  "])
def test_nonsense_names_are_still_a_clear_error(nonsense):
    with pytest.raises(UnknownModelError, match="What to do"):
        model_cost(nonsense)


def test_an_unknown_name_is_not_passed_off_as_known():
    assert not model_costs.is_known_model("gpt-7-nova") and model_costs.resolve_model("gpt-7-nova") is None


# --- prices: cached input and the long-context tier ----------------------------------------------------

def test_long_context_boundary_is_exactly_272k():
    luna = model_cost("gpt-6-luna")
    at = estimate_cost("gpt-6-luna", 272_000, 1_000)
    above = estimate_cost("gpt-6-luna", 272_001, 1_000)
    assert not at.long_context and above.long_context
    assert at == pytest.approx((272_000 * 0.10 + 1_000 * 0.50) / 1e6)
    assert above == pytest.approx((272_001 * 0.10 * 2 + 1_000 * 0.50 * 1.5) / 1e6)   # the WHOLE request
    assert luna.long_context and not model_cost("gpt-4o").long_context
    assert not estimate_cost("gpt-4o", 300_000).long_context


def test_cached_input_is_billed_at_the_cached_rate_and_doubles_above_272k():
    assert estimate_cost("gpt-6-luna", 10_000, 0, 8_000) == pytest.approx((2_000 * 0.10 + 8_000 * 0.01) / 1e6)
    assert estimate_cost("gpt-6-luna", 300_000, 0, 200_000) == pytest.approx(
        (100_000 * 0.10 * 2 + 200_000 * 0.01 * 2) / 1e6)
    # No cached price recorded (gpt-4-turbo had no prompt caching): cached tokens cost what input costs.
    assert estimate_cost("gpt-4-turbo", 1_000, 0, 1_000) == estimate_cost("gpt-4-turbo", 1_000)


def test_cached_input_cannot_exceed_input():
    with pytest.raises(ValueError, match="cannot be larger"):
        estimate_cost("gpt-4o", 100, 0, 101)


def test_a_many_image_request_reaches_the_tier():
    # 120 photos of 4000x3000 at `original` on gpt-6-luna: ~2,300 tokens each... and more than 272K in total.
    per_image = tokens.image_tokens(4000, 3000, "original", "gpt-6-luna")
    assert per_image == -(-125 * 94 * 12 // 10)
    assert estimate_cost("gpt-6-luna", per_image * 20).long_context
