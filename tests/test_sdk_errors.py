"""Issue 20: the course's errors named like the ``openai`` SDK's are the SDK's, so they can be caught the way
OpenAI's documentation teaches (``except openai.RateLimitError``), and still say what to do.

Every failure goes through the real path: ``helpers.complete`` -> the official SDK -> HTTP -> a local server
(``FakeAPI`` in tests/localhttp.py, or the course's own offline server) answering 429, 400 or 401.
"""

from __future__ import annotations

import openai
import pytest
from localhttp import FakeAPI, Reply, as_compatible_provider  # tests/localhttp.py

from helpers import client, complete, errors, image_tokens, offline_settings, user_message

KEY = "sk-" + "sdk-" + "Qx7" * 12 + "w0rd"  # built at run time: no key-shaped literal in the repository
ASK = [user_message("What is in this image?", [])]


@pytest.fixture
def api(monkeypatch):
    fake = FakeAPI()
    as_compatible_provider(monkeypatch, fake, KEY, retries=0)
    yield fake
    client.clear_clients()
    fake.close()


def _error(status: int, code: str, message: str) -> Reply:
    return Reply(status, body={"error": {"message": message, "type": "invalid_request_error", "param": None,
                                         "code": code}})


@pytest.mark.parametrize(("status", "code", "sdk_class", "course_class"), [
    (429, "rate_limit_exceeded", openai.RateLimitError, errors.RateLimitError),
    (400, "invalid_image_format", openai.BadRequestError, errors.BadRequestError),
    (401, "invalid_api_key", openai.AuthenticationError, errors.AuthenticationError),
])
def test_the_documented_except_clause_catches_what_the_course_raises(api, status, code, sdk_class, course_class):
    api.push(_error(status, code, f"Refused: {code}. Your key {KEY} was seen."))
    try:
        complete(ASK, max_tokens=20)
    except sdk_class as caught:          # the way OpenAI's docs teach it
        err = caught
    else:
        pytest.fail(f"{sdk_class.__name__} was not raised")
    assert isinstance(err, course_class) and isinstance(err, errors.CourseError)
    # the course's side: what went wrong and what to do, the status and the server's code, no key
    assert "What to do:" in str(err) and err.fix and err.status == status and err.code == code
    assert KEY not in str(err) and KEY[3:] not in str(err)
    # the SDK's side: the server's real response, its request, its body
    assert err.status_code == status and err.response.status_code == status
    assert str(err.response.request.url) == api.url + "/v1/chat/completions"
    assert err.body["code"] == code and KEY not in str(err.body)
    assert err.message == str(err)
    assert len(api.posts) == 1


def test_an_sdk_handler_for_any_status_error_catches_them_too(api):
    api.push(_error(429, "rate_limit_exceeded", "Slow down."))
    with pytest.raises(openai.APIStatusError) as err:
        complete(ASK, max_tokens=20)
    assert isinstance(err.value, errors.RateLimitError) and err.value.status_code == 429


def test_a_request_refused_before_sending_is_an_sdk_bad_request_too(api):
    with pytest.raises(openai.BadRequestError) as err:
        image_tokens(512, 512, "huge", model="gpt-4o")
    assert isinstance(err.value, errors.InvalidDetailError) and isinstance(err.value, ValueError)
    assert err.value.status is None and err.value.status_code == 400         # nothing sent; what the API would say
    assert err.value.response.request.url.host == "not-sent.invalid"
    assert err.value.body["message"] == str(err.value) and "What to do:" in str(err.value)
    assert api.posts == []


@pytest.fixture
def offline():
    """The course's offline server as the active provider; the active settings are forgotten afterwards."""
    client.clear_clients()
    yield client.activate(offline_settings("gpt-4o"))
    client.clear_clients()


def test_the_offline_server_rate_limit_is_an_sdk_rate_limit(offline, monkeypatch, tmp_path):
    """The same through the course's own server: its fault injection answers 429 (issue 9)."""
    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    monkeypatch.setenv("VISION_OFFLINE_FAULT", f"429;times=9;key={tmp_path.name};retry_after=0.01")
    sdk = client.get_client(offline_settings("gpt-4o"))
    with pytest.raises(openai.RateLimitError) as raw:        # the SDK alone, for comparison
        sdk.chat.completions.create(model="gpt-4o", messages=ASK, max_completion_tokens=20)
    assert not isinstance(raw.value, errors.CourseError)
    monkeypatch.setenv("VISION_OFFLINE_FAULT", f"429;times=9;key={tmp_path.name}-b;retry_after=0.01")
    with pytest.raises(openai.RateLimitError) as err:
        complete(ASK, max_tokens=20)
    assert isinstance(err.value, errors.RateLimitError) and "What to do:" in str(err.value)
    assert err.value.response.status_code == 429 and err.value.response.request.url.host == "127.0.0.1"
