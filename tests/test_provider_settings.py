"""The settings a learner actually writes, read the way a learner's notebook reads them.

Every case writes a ``.env`` file, clears the process environment of every course variable (so the file is
what counts, as on a learner's machine), and runs ``setup()``: the real path, not ``load_settings(environ=...)``.
Each combination gives either a working ``setup()`` (and, where the endpoint can be reached here, a real request
answered by the course's own server posing as the remote service) or a clear error that names the variable.

Issue 9 ("Real providers"): the Azure case with a deployment name that is not a model name used to end in
``RecursionError`` inside ``setup()``; the old settings test passed a dict and never took this path.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from helpers import client, config, models
from helpers.chat import complete, last_request
from helpers.errors import ConfigurationError, RetiredModelError
from helpers.offline import ensure_server

OPENAI_KEY = "sk-" + "test-" + "Zq9" * 12 + "end1"
AZURE_KEY = "a1b2c3d4" * 4
SERVER = "{server}"          # replaced by the running course server's base URL


@dataclass(frozen=True)
class Case:
    name: str
    dotenv: dict[str, str]
    provider: str | None = None            # expected provider when setup() works
    model: str | None = None               # expected model behind the requests
    request_model: str | None = None       # what goes in "model"
    line: tuple[str, ...] = ()             # fragments of the printed setup line
    error: type[Exception] | None = None
    names: str | None = None               # the variable the error must name
    reachable: bool = False                # a request can be answered here by the course's server
    absent: tuple[str, ...] = field(default=())   # strings that must not appear anywhere printed


AZURE = {"AZURE_OPENAI_ENDPOINT": SERVER, "AZURE_OPENAI_API_KEY": AZURE_KEY,
         "AZURE_OPENAI_API_VERSION": "2024-10-21", "AZURE_OPENAI_DEPLOYMENT": "my-vision"}

CASES = [
    Case("nothing set", {}, "offline", models.DEFAULT_MODEL, models.DEFAULT_MODEL,
         ("Provider: offline (local analysis, no language model)",), reachable=True),
    Case("only an OpenAI key", {"OPENAI_API_KEY": OPENAI_KEY}, "openai", models.DEFAULT_MODEL,
         models.DEFAULT_MODEL, ("Provider: openai", "endpoint: api.openai.com"), absent=(OPENAI_KEY,)),
    Case("compatible: key and base URL", {"OPENAI_BASE_URL": SERVER + "/v1", "OPENAI_API_KEY": OPENAI_KEY},
         "compatible", models.DEFAULT_MODEL, models.DEFAULT_MODEL, ("Provider: compatible",), reachable=True,
         absent=(OPENAI_KEY,)),
    # (The stand-in server knows OpenAI's model names only, so a non-reasoning OpenAI model plays the local one:
    # it gets max_tokens, as a local engine's model would.)
    Case("Ollama-style base URL, no key", {"OPENAI_BASE_URL": SERVER + "/v1", "VISION_MODEL": "gpt-4.1"},
         "compatible", "gpt-4.1", "gpt-4.1", ("Provider: compatible", "model: gpt-4.1"), reachable=True),
    Case("Azure, deployment name is not a model name", AZURE, "azure", models.DEFAULT_MODEL, "my-vision",
         ("Provider: azure (deployment my-vision)", "Assumed: deployment 'my-vision' runs", "Set VISION_MODEL"),
         reachable=True, absent=(AZURE_KEY,)),
    Case("Azure, model named in VISION_MODEL", {**AZURE, "VISION_MODEL": "gpt-4.1"}, "azure", "gpt-4.1",
         "my-vision", ("model: gpt-4.1",), reachable=True, absent=(AZURE_KEY, "Assumed")),
    Case("Azure, deployment named after its model", {**AZURE, "AZURE_OPENAI_DEPLOYMENT": "gpt-4o"}, "azure",
         "gpt-4o", "gpt-4o", ("deployment gpt-4o",), reachable=True, absent=("Assumed",)),
    Case("Azure, api-version missing", {k: v for k, v in AZURE.items() if k != "AZURE_OPENAI_API_VERSION"},
         error=ConfigurationError, names="AZURE_OPENAI_API_VERSION"),
    Case("Azure, wrong api-version", {**AZURE, "AZURE_OPENAI_API_VERSION": "10/21/2024"},
         error=ConfigurationError, names="AZURE_OPENAI_API_VERSION"),
    Case("Azure, deployment missing", {k: v for k, v in AZURE.items() if k != "AZURE_OPENAI_DEPLOYMENT"},
         error=ConfigurationError, names="AZURE_OPENAI_DEPLOYMENT"),
    Case("Azure, deployment given as a path", {**AZURE, "AZURE_OPENAI_DEPLOYMENT": "deployments/my-vision"},
         error=ConfigurationError, names="AZURE_OPENAI_DEPLOYMENT"),
    Case("Azure, empty key", {**AZURE, "AZURE_OPENAI_API_KEY": ""}, error=ConfigurationError,
         names="AZURE_OPENAI_API_KEY"),
    Case("Azure, endpoint over plain http", {**AZURE, "AZURE_OPENAI_ENDPOINT": "http://contoso.openai.azure.com"},
         error=ConfigurationError, names="AZURE_OPENAI_ENDPOINT"),
    Case("Azure, endpoint with the deployment path pasted in",
         {**AZURE, "AZURE_OPENAI_ENDPOINT": "https://contoso.openai.azure.com/openai/deployments/my-vision"},
         error=ConfigurationError, names="AZURE_OPENAI_ENDPOINT"),
    Case("provider forced to openai with an empty key", {"VISION_PROVIDER": "openai", "OPENAI_API_KEY": ""},
         error=ConfigurationError, names="OPENAI_API_KEY"),
    Case("key pasted with a space in the middle", {"OPENAI_API_KEY": f'"{OPENAI_KEY[:20]} {OPENAI_KEY[20:]}"'},
         error=ConfigurationError, names="OPENAI_API_KEY", absent=(OPENAI_KEY[:20], OPENAI_KEY[20:])),
    Case("key copied from .env.example", {"OPENAI_API_KEY": "sk-..."}, error=ConfigurationError,
         names="OPENAI_API_KEY"),
    Case("provider misspelt", {"VISION_PROVIDER": "azur", **AZURE}, error=ConfigurationError,
         names="VISION_PROVIDER"),
    Case("retired model", {"OPENAI_API_KEY": OPENAI_KEY, "VISION_MODEL": "gpt-4-vision-preview"},
         error=RetiredModelError, names="gpt-4-vision-preview"),
]




def write_dotenv(folder, values: dict[str, str], server: str) -> None:
    lines = [f"{k}={v.replace(SERVER, server)}" for k, v in values.items()]
    (folder / ".env").write_text("# written by the test, as a learner would\n" + "\n".join(lines) + "\n")


@pytest.mark.filterwarnings("ignore:.*to shut down on:FutureWarning")   # gpt-4o/gpt-4.1: said, not tested
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_settings_a_learner_writes(case: Case, learner, capsys):
    server = ensure_server()
    write_dotenv(learner, case.dotenv, server)
    if case.error is not None:
        with pytest.raises(case.error) as err:
            client.setup()
        text = str(err.value)
        assert case.names in text, f"the error does not name {case.names}: {text}"
        assert "What to do" in text or getattr(err.value, "fix", None), text
        printed = capsys.readouterr()
        for secret in case.absent:
            assert secret.strip("'") not in text + printed.out + printed.err
        return

    llm, model = client.setup()
    out = capsys.readouterr().out
    for fragment in case.line:
        assert fragment in out, f"{fragment!r} not in the setup line: {out!r}"
    for secret in case.absent:
        assert secret not in out
    settings = client.active_settings()
    assert (settings.provider, settings.model, model) == (case.provider, case.model, case.request_model)
    assert models.model_behind(model) == case.model          # cost maths take the deployment name too
    if case.reachable:
        done = complete([{"role": "user", "content": "Say hello."}], max_tokens=200)
        assert done.reply and done.finish_reason in ("stop", "length")
        sent = last_request()
        assert sent["model"] == case.request_model
        field = models.token_limit_field(case.model, case.provider)
        assert sent[field] == 200 and len([k for k in sent if k.startswith("max_")]) == 1
        printed = capsys.readouterr()
        for secret in case.absent:
            assert secret not in printed.out + printed.err + repr(settings) + repr(done)


def test_the_table_covers_each_provider_and_each_required_variable():
    working = {c.provider for c in CASES if c.error is None}
    assert working == set(config.PROVIDERS)
    named = {c.names for c in CASES if c.error is ConfigurationError}
    assert {"AZURE_OPENAI_API_VERSION", "AZURE_OPENAI_DEPLOYMENT", "AZURE_OPENAI_API_KEY", "AZURE_OPENAI_ENDPOINT",
            "OPENAI_API_KEY", "VISION_PROVIDER"} <= named


@pytest.mark.filterwarnings("ignore:.*to shut down on:FutureWarning")
def test_editing_dotenv_and_rerunning_setup_takes_effect(learner, capsys):
    """Settings are read once (not on every call) and again each time the setup cell runs."""
    server = ensure_server()
    write_dotenv(learner, {"OPENAI_BASE_URL": SERVER + "/v1", "VISION_MODEL": "llava:13b"}, server)
    _, model = client.setup()
    assert model == "llava:13b"
    write_dotenv(learner, {"OPENAI_BASE_URL": SERVER + "/v1", "VISION_MODEL": "gpt-4.1"}, server)
    assert client.active_settings().model == "llava:13b"     # not re-read behind the learner's back
    _, model = client.setup()
    assert model == "gpt-4.1" and models.configured_model() == "gpt-4.1"
    capsys.readouterr()


def test_the_token_limit_field_follows_the_model_on_a_compatible_proxy(learner, capsys):
    """Issue 9: a proxy in front of OpenAI with the default (reasoning) model got max_tokens and a 400."""
    server = ensure_server()
    write_dotenv(learner, {"OPENAI_BASE_URL": SERVER + "/v1", "OPENAI_API_KEY": OPENAI_KEY}, server)
    client.setup()
    from helpers.chat import query_base64_image_description

    result = query_base64_image_description(str(config.REPO_ROOT / "images" / "cat.jpg"), "What animal is this?")
    assert result["current_reply"]
    assert "max_completion_tokens" in last_request() and "max_tokens" not in last_request()
    capsys.readouterr()
