"""helpers.config: provider inference, .env handling, configuration errors that name the variable, masking."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import pytest

from helpers import models
from helpers.config import (
    ENV_VARS,
    PROVIDERS,
    Settings,
    describe,
    find_dotenv_file,
    infer_provider,
    load_settings,
    mask_secret,
    read_environment,
    redact,
)
from helpers.errors import ConfigurationError, RetiredModelError
from helpers.models import DEFAULT_MODEL

REPO = Path(__file__).resolve().parent.parent
# Built at run time so no key-shaped literal sits in the repository (tests/test_secrets.py scans for them).
OPENAI_KEY = "sk-" + "proj-" + "Q7x2" * 10 + "wxyz"
AZURE_KEY = "0123456789abcdef" * 2
OFF = {"VISION_DOTENV": "off"}

AZURE_OK = {
    **OFF,
    "AZURE_OPENAI_ENDPOINT": "https://my-resource.openai.azure.com/",
    "AZURE_OPENAI_API_KEY": AZURE_KEY,
    "AZURE_OPENAI_API_VERSION": "2024-10-21",
    "AZURE_OPENAI_DEPLOYMENT": "gpt-4o",
}


def test_default_is_offline_with_the_catalog_default_model():
    s = load_settings(OFF)
    assert s.provider == "offline"
    assert s.model == models.DEFAULT_MODEL
    assert s.api_key == "offline"
    assert s.timeout == 60.0 and s.max_retries == 2 and s.offline_port == 0
    assert s.inferred


@pytest.mark.parametrize(
    ("configured", "expected"),
    [
        ({}, "offline"),
        ({"OPENAI_API_KEY": OPENAI_KEY}, "openai"),
        ({"OPENAI_BASE_URL": "http://localhost:11434/v1"}, "compatible"),
        ({"OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_API_KEY": OPENAI_KEY}, "compatible"),
        ({k: v for k, v in AZURE_OK.items() if k != "VISION_DOTENV"}, "azure"),
        ({**{k: v for k, v in AZURE_OK.items() if k != "VISION_DOTENV"}, "OPENAI_API_KEY": OPENAI_KEY}, "azure"),
        ({"COURSE_IMAGES_BASE_URL": "https://example.org/images/"}, "offline"),
        ({"OPENAI_API_KEY": ""}, "offline"),  # empty means unset
    ],
)
def test_provider_inference_table(configured, expected):
    assert infer_provider({k: v for k, v in configured.items() if v}) == expected
    settings = load_settings({**OFF, **configured})
    assert settings.provider == expected
    assert settings.inferred


def test_explicit_provider_wins_over_inference():
    s = load_settings({**OFF, "VISION_PROVIDER": "offline", "OPENAI_API_KEY": OPENAI_KEY})
    assert s.provider == "offline" and not s.inferred
    s = load_settings({**OFF, "VISION_PROVIDER": "OpenAI", "OPENAI_API_KEY": OPENAI_KEY,
                       "OPENAI_BASE_URL": "http://localhost:1234/v1"})
    # provider openai always means api.openai.com, even with a stray OPENAI_BASE_URL
    assert s.provider == "openai" and s.base_url == "https://api.openai.com/v1"


def test_unknown_provider_names_the_variable_and_the_choices():
    with pytest.raises(ConfigurationError) as err:
        load_settings({**OFF, "VISION_PROVIDER": "foo"})
    text = str(err.value)
    assert "VISION_PROVIDER" in text and "'foo'" in text
    for name in PROVIDERS:
        assert name in text


def test_process_environment_wins_over_dotenv_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nVISION_MODEL=gpt-4o\nVISION_TIMEOUT=5\n", encoding="utf-8")
    from_file = load_settings({}, dotenv_path=env_file)
    assert (from_file.provider, from_file.model, from_file.timeout) == ("openai", "gpt-4o", 5.0)

    both = load_settings({"VISION_MODEL": "gpt-4.1", "VISION_PROVIDER": "offline"}, dotenv_path=env_file)
    assert both.model == "gpt-4.1"          # process env wins
    assert both.provider == "offline"
    assert both.timeout == 5.0              # the file still supplies what the env does not


def test_reading_dotenv_never_touches_os_environ(tmp_path, monkeypatch):
    env_file = tmp_path / ".env"
    env_file.write_text("VISION_MODEL=gpt-4o\nSOME_OTHER_SETTING=1\n", encoding="utf-8")
    monkeypatch.delenv("VISION_DOTENV", raising=False)
    before = dict(os.environ)
    assert load_settings(dotenv_path=env_file).model == "gpt-4o"
    assert dict(os.environ) == before


def test_vision_dotenv_off_ignores_the_file(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f"OPENAI_API_KEY={OPENAI_KEY}\nVISION_MODEL=gpt-4o\n", encoding="utf-8")
    for off in ("off", "OFF", "0", "false"):
        s = load_settings({"VISION_DOTENV": off}, dotenv_path=env_file)
        assert s.provider == "offline" and s.model == models.DEFAULT_MODEL


def test_test_session_disables_dotenv():
    # conftest.py sets it for the whole session (and for notebook kernels).
    assert os.environ.get("VISION_DOTENV") == "off"
    assert read_environment().get("VISION_PROVIDER") == "offline"


def test_dotenv_is_found_from_the_cwd_upwards(tmp_path, monkeypatch):
    (tmp_path / ".env").write_text("VISION_MODEL=gpt-4o\n", encoding="utf-8")
    nested = tmp_path / "notebooks" / "deeper"
    nested.mkdir(parents=True)
    monkeypatch.chdir(nested)
    assert find_dotenv_file() == tmp_path / ".env"
    assert load_settings({}).model == "gpt-4o"


def test_quoted_values_and_comments_in_dotenv(tmp_path):
    env_file = tmp_path / ".env"
    env_file.write_text(f'# my settings\nOPENAI_API_KEY="{OPENAI_KEY}"  # the key\nVISION_MODEL=\n',
                        encoding="utf-8")
    s = load_settings({}, dotenv_path=env_file)
    assert s.api_key == OPENAI_KEY and s.model == models.DEFAULT_MODEL


# --- partial or wrong configuration ------------------------------------------------------------

@pytest.mark.parametrize("missing", ["AZURE_OPENAI_API_KEY", "AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_DEPLOYMENT"])
def test_partial_azure_configuration_names_the_missing_variable(missing):
    config = {k: v for k, v in AZURE_OK.items() if k != missing}
    with pytest.raises(ConfigurationError) as err:
        load_settings(config)
    assert missing in err.value.problem
    assert err.value.fix and missing in err.value.fix and ".env" in err.value.fix


def test_explicit_azure_without_endpoint_names_it():
    config = {**{k: v for k, v in AZURE_OK.items() if k != "AZURE_OPENAI_ENDPOINT"}, "VISION_PROVIDER": "azure"}
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT"):
        load_settings(config)


@pytest.mark.parametrize(
    ("endpoint", "expected"),
    [
        ("http://my-resource.openai.azure.com", "https://"),
        ("my-resource.openai.azure.com", "not an http"),
        ("https://my-resource.openai.azure.com/openai/deployments/gpt-4o", "includes a path"),
    ],
)
def test_bad_azure_endpoint_is_explained(endpoint, expected):
    with pytest.raises(ConfigurationError) as err:
        load_settings({**AZURE_OK, "AZURE_OPENAI_ENDPOINT": endpoint})
    assert "AZURE_OPENAI_ENDPOINT" in str(err.value) and expected in str(err.value)
    assert "https://YOUR-RESOURCE.openai.azure.com" in str(err.value)


def test_local_http_azure_endpoint_is_allowed_for_the_offline_emulation():
    s = load_settings({**AZURE_OK, "AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:8765"})
    assert s.azure_endpoint == "http://127.0.0.1:8765"


@pytest.mark.parametrize("value", ["localhost:11434/v1", "ftp://example.org", "ollama"])
def test_base_url_that_is_not_a_url(value):
    with pytest.raises(ConfigurationError) as err:
        load_settings({**OFF, "OPENAI_BASE_URL": value})
    assert "OPENAI_BASE_URL" in str(err.value) and "http://localhost:11434/v1" in str(err.value)


def test_openai_provider_without_key():
    with pytest.raises(ConfigurationError) as err:
        load_settings({**OFF, "VISION_PROVIDER": "openai"})
    assert "OPENAI_API_KEY" in err.value.problem


def test_compatible_key_is_optional():
    s = load_settings({**OFF, "OPENAI_BASE_URL": "http://localhost:11434/v1/"})
    assert s.provider == "compatible" and s.api_key is None and s.base_url == "http://localhost:11434/v1"


@pytest.mark.parametrize(
    ("name", "value"),
    [("VISION_TIMEOUT", "soon"), ("VISION_TIMEOUT", "-1"), ("VISION_TIMEOUT", "nan"),
     ("VISION_MAX_RETRIES", "2.5"), ("VISION_MAX_RETRIES", "-1"),
     ("VISION_OFFLINE_PORT", "70000"), ("VISION_OFFLINE_PORT", "http")],
)
def test_bad_numbers_name_the_variable(name, value):
    with pytest.raises(ConfigurationError) as err:
        load_settings({**OFF, name: value})
    assert name in err.value.problem and repr(value) in err.value.problem


def test_numbers_are_read():
    s = load_settings({**OFF, "VISION_TIMEOUT": "2.5", "VISION_MAX_RETRIES": "0", "VISION_OFFLINE_PORT": "8123"})
    assert (s.timeout, s.max_retries, s.offline_port) == (2.5, 0, 8123)


def test_images_base_url_is_validated_and_gets_a_trailing_slash():
    s = load_settings({**OFF, "COURSE_IMAGES_BASE_URL": "https://example.org/course/images"})
    assert s.images_base_url == "https://example.org/course/images/"
    with pytest.raises(ConfigurationError, match="COURSE_IMAGES_BASE_URL"):
        load_settings({**OFF, "COURSE_IMAGES_BASE_URL": "images/"})


def test_placeholders_copied_from_the_example_are_rejected():
    with pytest.raises(ConfigurationError, match="AZURE_OPENAI_ENDPOINT still holds an example placeholder"):
        load_settings({**AZURE_OK, "AZURE_OPENAI_ENDPOINT": "https://YOUR-RESOURCE.openai.azure.com"})
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY still holds an example placeholder"):
        load_settings({**OFF, "OPENAI_API_KEY": "sk-..."})


def test_key_with_spaces_is_refused_without_showing_it():
    bad = OPENAI_KEY[:20] + " " + OPENAI_KEY[20:]
    with pytest.raises(ConfigurationError) as err:
        load_settings({**OFF, "OPENAI_API_KEY": bad})
    assert "OPENAI_API_KEY" in str(err.value)
    assert OPENAI_KEY[3:20] not in str(err.value) and OPENAI_KEY[20:] not in str(err.value)


def test_key_that_does_not_look_like_an_openai_key_only_warns_masked():
    odd = "k" * 20 + "tail"
    with pytest.warns(UserWarning, match="does not start with 'sk-'") as caught:
        s = load_settings({**OFF, "OPENAI_API_KEY": odd})
    assert s.provider == "openai"
    assert all(odd not in str(w.message) for w in caught)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a compatible engine's key can look like anything: no warning
        load_settings({**OFF, "OPENAI_BASE_URL": "http://localhost:8000/v1", "OPENAI_API_KEY": odd})


# --- models ---------------------------------------------------------------------------------------

def test_vision_model_overrides_the_default():
    assert load_settings({**OFF, "VISION_MODEL": "gpt-4o"}).model == "gpt-4o"


def test_retired_model_is_refused_before_any_request():
    with pytest.raises(RetiredModelError) as err:
        load_settings({**OFF, "VISION_MODEL": "gpt-4-vision-preview"})
    retired = models.retired_model("gpt-4-vision-preview")
    assert retired is not None
    assert err.value.replacement == retired.replacement
    assert f"VISION_MODEL={retired.replacement}" in str(err.value)
    assert isinstance(err.value, ConfigurationError)


def test_retired_azure_deployment_name_is_refused():
    with pytest.raises(RetiredModelError):
        load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "gpt-4-vision-preview", "VISION_MODEL": "gpt-4o"})


def test_azure_request_model_is_the_deployment_and_model_is_for_costs():
    s = load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "my-vision", "VISION_MODEL": "gpt-4o"})
    assert s.request_model == "my-vision" and s.model == "gpt-4o"
    s = load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-2024-08-06"})
    assert s.request_model == "gpt-4o-2024-08-06" and s.model == "gpt-4o-2024-08-06"
    assert s.azure_endpoint == "https://my-resource.openai.azure.com"


def test_azure_deployment_with_an_unknown_name_assumes_the_default_and_says_so():
    """A deployment name is the learner's choice ("my-vision"): it works, and setup() says what is assumed."""
    settings = load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "my-vision"})
    assert (settings.model, settings.request_model, settings.model_assumed) == (DEFAULT_MODEL, "my-vision", True)
    line = describe(settings)
    assert f"Assumed: deployment 'my-vision' runs {DEFAULT_MODEL}" in line and "Set VISION_MODEL" in line
    told = load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "my-vision", "VISION_MODEL": "gpt-4o"})
    assert (told.model, told.model_assumed) == ("gpt-4o", False) and "Assumed" not in describe(told)
    named = load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o-2024-11-20"})
    assert (named.model, named.model_assumed) == ("gpt-4o-2024-11-20", False)


# --- masking --------------------------------------------------------------------------------------

def test_mask_secret_shapes():
    assert mask_secret(OPENAI_KEY) == "sk-...wxyz"
    assert mask_secret(AZURE_KEY) == "...cdef"
    assert mask_secret("short") == "****"
    assert mask_secret(None) == "(not set)"
    assert mask_secret("offline") == "offline"


def test_redact_hides_given_secrets_and_key_shaped_strings():
    text = f"Incorrect API key provided: {OPENAI_KEY}. Azure said {AZURE_KEY}."
    out = redact(text)
    assert OPENAI_KEY not in out and AZURE_KEY not in out
    assert "sk-...wxyz" in out
    assert redact("my key is k3y-" + "z" * 12, "k3y-" + "z" * 12) == "my key is ...zzzz"
    assert redact("pw=hunter2hunter", "hunter2hunter") == "pw=****"


@pytest.mark.parametrize("config", [
    {**OFF, "OPENAI_API_KEY": OPENAI_KEY},
    {**OFF, "OPENAI_BASE_URL": "http://localhost:11434/v1", "OPENAI_API_KEY": OPENAI_KEY},
    {**AZURE_OK, "AZURE_OPENAI_API_KEY": AZURE_KEY},
])
def test_keys_never_appear_in_repr_or_str(config):
    s = load_settings(config)
    for text in (repr(s), str(s), f"{s}", describe(s), repr([s])):
        assert OPENAI_KEY not in text and AZURE_KEY not in text
        assert OPENAI_KEY[8:20] not in text and AZURE_KEY[:12] not in text
    assert "api_key=" in repr(s) and "..." in repr(s)


def test_settings_are_hashable_and_equal_by_value():
    a = load_settings({**OFF, "OPENAI_API_KEY": OPENAI_KEY})
    b = load_settings({**OFF, "OPENAI_API_KEY": OPENAI_KEY})
    assert a == b and hash(a) == hash(b)
    assert a != load_settings({**OFF, "OPENAI_API_KEY": OPENAI_KEY, "VISION_TIMEOUT": "5"})


def test_describe_is_one_line_without_secrets():
    s = Settings(provider="offline", model="gpt-4.1-mini", api_key="offline")
    assert describe(s, "http://127.0.0.1:4321/v1") == (
        "Provider: offline (local analysis, no language model) · model: gpt-4.1-mini · endpoint: 127.0.0.1:4321")
    az = load_settings({**AZURE_OK, "AZURE_OPENAI_DEPLOYMENT": "vision", "VISION_MODEL": "gpt-4o"})
    assert describe(az) == ("Provider: azure (deployment vision) · model: gpt-4o · "
                            "endpoint: my-resource.openai.azure.com")


# --- .env.example ------------------------------------------------------------------------------

def test_env_example_documents_every_variable_with_a_comment_and_no_values():
    text = (REPO / ".env.example").read_text(encoding="utf-8")
    lines = text.splitlines()
    assigned = {}
    for i, line in enumerate(lines):
        match = re.match(r"^([A-Z][A-Z0-9_]*)=(.*)$", line)
        if match:
            assigned[match.group(1)] = match.group(2)
            assert lines[i - 1].startswith("#"), f"{match.group(1)} needs a comment line above it"
    assert set(assigned) == set(ENV_VARS)
    assert all(value == "" for value in assigned.values()), "no values: copying the file must change nothing"
    assert models.DEFAULT_MODEL not in text, "the default model is named in helpers/models.py only"
    assert "helpers/models.py" in text
    # Copying it to .env unchanged keeps the course offline.
    assert load_settings({}, dotenv_path=REPO / ".env.example").provider == "offline"


@pytest.mark.parametrize("config", [
    {**OFF, "OPENAI_BASE_URL": OPENAI_KEY},                               # key pasted into the wrong variable
    {**AZURE_OK, "AZURE_OPENAI_ENDPOINT": AZURE_KEY},
    {**AZURE_OK, "AZURE_OPENAI_ENDPOINT": f"https://x.openai.azure.com/openai?key={AZURE_KEY}"},
    {**OFF, "COURSE_IMAGES_BASE_URL": OPENAI_KEY},
    {**OFF, "OPENAI_API_KEY": OPENAI_KEY + "\t"  + "x"},
])
def test_keys_never_appear_in_configuration_errors(config):
    with pytest.raises(ConfigurationError) as err:
        load_settings(config)
    text = str(err.value)
    assert OPENAI_KEY not in text and AZURE_KEY not in text
    assert OPENAI_KEY[8:24] not in text and AZURE_KEY[4:28] not in text


def test_credentials_inside_urls_are_not_shown():
    s = load_settings({**OFF, "OPENAI_BASE_URL": "https://user:" + "pw" * 8 + "@proxy.example.org:8443/v1",
                       "OPENAI_API_KEY": OPENAI_KEY})
    assert describe(s) == f"Provider: compatible · model: {models.DEFAULT_MODEL} · endpoint: proxy.example.org:8443"
    proxied = load_settings({**OFF, "OPENAI_BASE_URL": f"https://proxy.example.org/v1?key={OPENAI_KEY}",
                             "OPENAI_API_KEY": OPENAI_KEY})
    assert OPENAI_KEY not in repr(proxied)
