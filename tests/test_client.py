"""helpers.client: the right SDK client per provider, caching, async variants, setup(), course_image_url(),
and the translation of SDK exceptions into course errors."""

from __future__ import annotations

import asyncio
import urllib.request
import warnings

import httpx2
import openai
import pytest
from localhttp import FakeAPI  # the scripted local Chat Completions server (tests/localhttp.py)

from helpers import client, course_images, errors
from helpers.client import course_image_url, get_client, setup, translate_error
from helpers.config import Settings, load_settings
from helpers.models import DEFAULT_MODEL

KEY = "sk-" + "proj-" + "Hh4" * 12 + "tail"
AZURE_KEY = "fe" * 16

AZURE_ENV = {
    "VISION_PROVIDER": "azure",
    "AZURE_OPENAI_ENDPOINT": "https://my-resource.openai.azure.com",
    "AZURE_OPENAI_API_KEY": AZURE_KEY,
    "AZURE_OPENAI_API_VERSION": "2024-10-21",
    "AZURE_OPENAI_DEPLOYMENT": "course-vision",
    "VISION_MODEL": DEFAULT_MODEL,
}


@pytest.fixture(autouse=True)
def _fresh_clients():
    client.clear_clients()
    yield
    client.clear_clients()


@pytest.fixture
def fake():
    server = FakeAPI()
    yield server
    server.close()


def use(monkeypatch, **env: str) -> None:
    """Change the environment, then resolve the settings again, as re-running ``setup()`` does."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    client.clear_clients()


# --- which client -----------------------------------------------------------------------------------

def test_openai_provider(monkeypatch):
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY, VISION_TIMEOUT="7.5", VISION_MAX_RETRIES="4")
    c = get_client()
    assert type(c) is openai.OpenAI
    assert str(c.base_url) == "https://api.openai.com/v1/"
    assert c.api_key == KEY
    assert c.timeout == 7.5 and c.max_retries == 4


def test_openai_provider_ignores_a_stray_base_url_in_the_process_env(monkeypatch):
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY, OPENAI_BASE_URL="http://localhost:9/v1")
    assert str(get_client().base_url) == "https://api.openai.com/v1/"


def test_compatible_provider_with_and_without_key(monkeypatch):
    monkeypatch.delenv("VISION_PROVIDER")                 # the test session forces offline; infer instead
    use(monkeypatch, OPENAI_BASE_URL="http://localhost:11434/v1")
    c = get_client()
    assert type(c) is openai.OpenAI
    assert str(c.base_url) == "http://localhost:11434/v1/"
    use(monkeypatch, VISION_PROVIDER="compatible")
    assert get_client().api_key == "not-needed"          # local engines ignore it; the SDK requires one
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    assert get_client().api_key == "not-needed"          # settings are resolved once, not on every call...
    assert setup(verbose=False)[0].api_key == KEY        # ...and again when setup() runs (after editing .env)


def test_azure_provider(monkeypatch):
    use(monkeypatch, **AZURE_ENV)
    c = get_client()
    assert type(c) is openai.AzureOpenAI
    assert str(c.base_url) == "https://my-resource.openai.azure.com/openai/"
    assert c._api_version == "2024-10-21"
    _, model = setup(verbose=False)
    assert model == "course-vision"                      # requests name the deployment


def test_offline_provider_points_at_the_embedded_server(monkeypatch, fake):
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: fake.url)
    c = get_client(load_settings({"VISION_DOTENV": "off"}))
    assert type(c) is openai.OpenAI
    assert str(c.base_url) == fake.url + "/v1/"
    assert c.api_key == "offline"


def test_offline_provider_starts_the_real_offline_server():
    from helpers.offline import ensure_server

    c, model = setup(verbose=False)
    assert str(c.base_url) == ensure_server() + "/v1/"
    assert model == DEFAULT_MODEL
    reply = c.chat.completions.create(model=model, messages=[{"role": "user", "content": "Hello?"}],
                                      max_completion_tokens=50)
    assert reply.choices[0].message.content


# --- caching and async --------------------------------------------------------------------------------

def test_one_cached_client_per_settings(monkeypatch):
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY)
    first = get_client()
    assert get_client() is first
    assert setup(verbose=False)[0] is first
    monkeypatch.setenv("VISION_TIMEOUT", "9")                 # different settings -> a different client
    second = setup(verbose=False)[0]
    assert second is not first and second.timeout == 9.0 and get_client() is second
    monkeypatch.delenv("VISION_TIMEOUT")
    assert setup(verbose=False)[0] is first


def test_async_variants(monkeypatch):
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY)
    a = get_client(asynchronous=True)
    assert type(a) is openai.AsyncOpenAI and a is get_client(asynchronous=True) and a is not get_client()
    use(monkeypatch, **AZURE_ENV)
    az = get_client(asynchronous=True)
    assert type(az) is openai.AsyncAzureOpenAI
    assert str(az.base_url) == "https://my-resource.openai.azure.com/openai/"


def test_async_client_really_talks_to_the_server(monkeypatch, fake):
    use(monkeypatch, VISION_PROVIDER="compatible", OPENAI_BASE_URL=fake.url + "/v1", OPENAI_API_KEY=KEY)
    a = get_client(asynchronous=True)

    async def ask() -> str:
        reply = await a.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}])
        await a.close()
        return reply.choices[0].message.content

    assert asyncio.run(ask()) == "Reply 1"
    assert fake.posts[0].headers["authorization"] == f"Bearer {KEY}"


def test_configuration_errors_surface_before_any_client(monkeypatch):
    use(monkeypatch, VISION_PROVIDER="azure", AZURE_OPENAI_ENDPOINT="https://r.openai.azure.com")
    with pytest.raises(errors.ConfigurationError, match="AZURE_OPENAI_API_KEY"):
        get_client()
    monkeypatch.setenv("VISION_PROVIDER", "offline")
    monkeypatch.setenv("VISION_MODEL", "gpt-4-vision-preview")
    with pytest.raises(errors.RetiredModelError):
        setup()
    with pytest.raises(errors.RetiredModelError):      # a hand-made Settings is checked too
        get_client(Settings(provider="openai", model="gpt-4-vision-preview", api_key=KEY,
                            base_url="https://api.openai.com/v1"))


# --- setup() ----------------------------------------------------------------------------------------

def test_setup_prints_one_line_without_the_key(monkeypatch, capsys):
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY)
    c, model = setup()
    out = capsys.readouterr().out
    assert out == f"Provider: openai · model: {DEFAULT_MODEL} · endpoint: api.openai.com\n"
    assert KEY not in out and model == DEFAULT_MODEL and c is get_client()
    setup(verbose=False)
    assert capsys.readouterr().out == ""


def test_setup_warns_about_a_scheduled_shutdown(monkeypatch, capsys):
    from helpers import models

    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY)
    record = models.RetiredModel("course-test-model", "course-successor", "2999-01-01", "https://example.org")
    monkeypatch.setitem(models.SCHEDULED_SHUTDOWNS, "course-test-model", record)
    monkeypatch.setenv("VISION_MODEL", "course-test-model")
    with pytest.warns(FutureWarning, match="scheduled to shut down on 2999-01-01: plan to switch to "
                                           "course-successor"):
        setup()
    assert capsys.readouterr().out.count("\n") == 1      # still one printed line
    monkeypatch.delenv("VISION_MODEL")
    with warnings.catch_warnings():
        warnings.simplefilter("error")                   # the default model has no announced shutdown
        setup()


def test_setup_line_for_offline_and_azure(monkeypatch, capsys, fake):
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: fake.url)
    setup()
    port = fake.url.rsplit(":", 1)[1]
    assert capsys.readouterr().out == (
        f"Provider: offline (local analysis, no language model) · model: {DEFAULT_MODEL} · "
        f"endpoint: 127.0.0.1:{port}\n")
    use(monkeypatch, **AZURE_ENV)
    setup()
    out = capsys.readouterr().out
    assert out == (f"Provider: azure (deployment course-vision) · model: {DEFAULT_MODEL} · "
                   "endpoint: my-resource.openai.azure.com\n")
    assert AZURE_KEY not in out


# --- course_image_url ---------------------------------------------------------------------------------

@pytest.fixture
def images_dir(tmp_path, monkeypatch):
    (tmp_path / "boardwalk.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really decoded here")
    (tmp_path / "two words.png").write_bytes(b"\x89PNG\r\n\x1a\n")
    monkeypatch.setattr(course_images, "IMAGES_DIR", tmp_path)
    return tmp_path


def test_course_image_url_offline(images_dir, monkeypatch, fake):
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: fake.url)
    assert course_image_url("boardwalk.jpg") == f"{fake.url}/images/boardwalk.jpg"
    assert course_image_url("two words.png") == f"{fake.url}/images/two%20words.png"


@pytest.mark.parametrize("provider_env", [
    {"VISION_PROVIDER": "openai", "OPENAI_API_KEY": KEY},
    {"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": "http://localhost:11434/v1"},
    AZURE_ENV,
], ids=["openai", "compatible", "azure"])
def test_course_image_url_with_a_real_provider_needs_no_extra_setting(monkeypatch, capsys, provider_env):
    """Issue 9: with only a key, the URL lessons used to stop with 'COURSE_IMAGES_BASE_URL not set'."""
    import base64
    import hashlib

    from helpers.course_images import public_copy

    use(monkeypatch, **provider_env)
    rocket = course_image_url("rocket.jpg")            # has a public copy: sent by that URL
    assert rocket == public_copy("rocket.jpg").url and rocket.startswith("https://raw.githubusercontent.com/")
    notes = capsys.readouterr().out
    assert notes.count("\n") == 1 and "rocket.jpg: sent by the URL of its public copy" in notes
    course_image_url("rocket.jpg")
    assert capsys.readouterr().out == ""               # explained once, not on every call

    notes_url = course_image_url("handwriting_en.jpg")  # the course's own image: no public copy, so inline
    assert notes_url.startswith("data:image/jpeg;base64,")
    assert base64.b64decode(notes_url.split(",", 1)[1])[:3] == b"\xff\xd8\xff"
    assert "handwriting_en.jpg: no public copy, so it is sent inline as a data URL" in capsys.readouterr().out

    use(monkeypatch, COURSE_IMAGES_BASE_URL="https://raw.example.org/course/main/images")
    assert course_image_url("handwriting_en.jpg") == "https://raw.example.org/course/main/images/handwriting_en.jpg"
    assert KEY not in capsys.readouterr().out
    # The recorded checksum is the one of the local file it stands for.
    copy = public_copy("rocket.jpg")
    assert hashlib.sha256((course_images.IMAGES_DIR / "rocket.jpg").read_bytes()).hexdigest() == copy.local_sha256


def test_course_image_url_checks_the_file(images_dir):
    with pytest.raises(errors.ImageNotFoundError) as err:
        course_image_url("missing.jpg")
    assert "boardwalk.jpg" in err.value.fix                  # lists what exists
    assert isinstance(err.value, FileNotFoundError)
    for bad in ("../conftest.py", "sub/boardwalk.jpg", "", ".."):
        with pytest.raises(errors.ImageNotFoundError):
            course_image_url(bad)


def test_course_image_url_is_served_by_the_real_offline_server():
    from helpers.offline import ensure_server

    names = sorted(p.name for p in client.IMAGES_DIR.iterdir() if p.suffix.lower() in {".jpg", ".png"})
    assert names, "the course ships sample images in images/"
    url = course_image_url(names[0])
    assert url == f"{ensure_server()}/images/{names[0]}"
    with urllib.request.urlopen(url, timeout=10) as response:   # noqa: S310 - 127.0.0.1 only
        assert response.status == 200
        assert response.read() == (client.IMAGES_DIR / names[0]).read_bytes()


# --- translate_error ----------------------------------------------------------------------------------

def _status_error(status: int, body: dict, headers: dict | None = None) -> openai.APIStatusError:
    request = httpx2.Request("POST", "https://api.openai.com/v1/chat/completions")
    response = httpx2.Response(status, json=body, headers=headers or {}, request=request)
    sdk = openai.OpenAI(api_key=KEY, base_url="https://api.openai.com/v1")
    try:
        return sdk._make_status_error_from_response(response)
    finally:
        sdk.close()


@pytest.mark.parametrize(
    ("status", "code", "expected", "advice"),
    [
        (400, "invalid_image", errors.BadRequestError, "request itself"),
        (401, "invalid_api_key", errors.AuthenticationError, "OPENAI_API_KEY"),
        (403, None, errors.AuthenticationError, "OPENAI_API_KEY"),
        (404, "model_not_found", errors.ModelNotFoundError, "VISION_MODEL"),
        (413, None, errors.BadRequestError, "image format or size"),
        (422, None, errors.BadRequestError, "request itself"),
        (429, "rate_limit_exceeded", errors.RateLimitError, "VISION_MAX_RETRIES"),
        (429, "insufficient_quota", errors.RateLimitError, "billing"),
        (500, None, errors.ServiceError, "try again later"),
        (503, None, errors.ServiceError, "try again later"),
    ],
)
def test_translate_status_errors(status, code, expected, advice):
    settings = load_settings({"VISION_DOTENV": "off", "OPENAI_API_KEY": KEY})
    body = {"error": {"message": f"Server says no (key {KEY}).", "type": "x", "code": code}}
    err = translate_error(_status_error(status, body), settings)
    assert type(err) is expected
    assert err.status == status and err.code == code
    assert advice in err.fix
    assert "Server says no" in str(err)
    assert KEY not in str(err) and KEY[8:] not in str(err) and "sk-...tail" in str(err)


def test_translate_uses_azure_variable_names():
    settings = load_settings({"VISION_DOTENV": "off", **AZURE_ENV})
    auth = translate_error(_status_error(401, {"error": {"message": "Access denied", "code": "401"}}), settings)
    assert "AZURE_OPENAI_API_KEY" in auth.fix
    missing = translate_error(_status_error(404, {"error": {"code": "DeploymentNotFound",
                                                            "message": "The API deployment does not exist"}}),
                              settings)
    assert isinstance(missing, errors.ModelNotFoundError) and "AZURE_OPENAI_DEPLOYMENT" in missing.fix
    assert missing.code == "DeploymentNotFound"


def test_translate_network_errors():
    request = httpx2.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    offline = Settings(provider="offline", model=DEFAULT_MODEL, api_key="offline", timeout=3.0)
    err = translate_error(openai.APIConnectionError(request=request), offline)
    assert type(err) is errors.NetworkError and err.status is None
    assert "offline server running" in err.fix and "127.0.0.1:9" in str(err)
    timeout = translate_error(openai.APITimeoutError(request=request), offline)
    assert type(timeout) is errors.NetworkError and "VISION_TIMEOUT" in timeout.fix and "3 s" in str(timeout)


def test_translate_leaves_other_exceptions_alone():
    original = KeyError("x")
    assert translate_error(original) is original
    course = errors.BadRequestError("already translated")
    assert translate_error(course) is course
    sdk_config = translate_error(openai.OpenAIError("Missing credentials."))
    assert isinstance(sdk_config, errors.ConfigurationError)


# --- raw HTTP and the Azure target (notebooks 02 and 07) ---------------------------------------------

def test_http_endpoint_follows_the_provider(monkeypatch):
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY)
    e = client.http_endpoint()
    assert e.url == "https://api.openai.com/v1/chat/completions" and e.params == {}
    assert e.headers["Authorization"] == f"Bearer {KEY}" and KEY not in repr(e)
    use(monkeypatch, **AZURE_ENV)
    e = client.http_endpoint()
    assert e.url == "https://my-resource.openai.azure.com/openai/deployments/course-vision/chat/completions"
    assert e.params == {"api-version": "2024-10-21"} and e.headers["api-key"] == AZURE_KEY
    assert "Authorization" not in e.headers and AZURE_KEY not in repr(e)


def test_azure_target_is_your_deployment_or_the_simulator(monkeypatch, fake):
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: fake.url)
    use(monkeypatch, **AZURE_ENV)
    mine = client.azure_target()
    assert not mine.simulated and mine.deployment == "course-vision" and mine.api_version == "2024-10-21"
    assert mine.http_endpoint().url == client.http_endpoint().url
    assert mine.http_endpoint().headers == client.http_endpoint().headers
    assert "your Azure resource" in repr(mine) and AZURE_KEY not in repr(mine)
    use(monkeypatch, VISION_PROVIDER="openai", OPENAI_API_KEY=KEY)
    simulator = client.azure_target()
    assert simulator.simulated and "offline Azure simulator" in repr(simulator)
    assert simulator.http_endpoint().headers["api-key"] == "offline"          # never the OpenAI key
    legacy = client.azure_simulator("2024-02-15-preview").http_endpoint()
    assert legacy.url == f"{fake.url}/openai/deployments/my-vision-deployment/chat/completions"
    assert legacy.params == {"api-version": "2024-02-15-preview"}
