"""helpers.chat against a real local HTTP server that speaks minimal Chat Completions JSON.

The server (``FakeAPI``, in tests/localhttp.py) records every request and answers from a script: status codes, Retry-After headers,
delays (for timeouts) and finish_reason are controllable, so retries and failures are exercised through the real
SDK and the real network stack, not mocks.
"""

from __future__ import annotations

import copy
import json
import os
import re
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from localhttp import FakeAPI, Reply, as_compatible_provider  # tests/localhttp.py
from PIL import Image

from helpers import chat, client, conversation, models, setup
from helpers.chat import query_base64_image_description, query_image_description
from helpers.conversation import Conversation
from helpers.errors import (
    AuthenticationError,
    BadRequestError,
    ModelNotFoundError,
    NetworkError,
    RateLimitError,
    RetiredModelError,
    ServiceError,
    TruncatedAnswerWarning,
)

KEY = "sk-" + "test-" + "Zq9" * 12 + "k3y9"  # built at run time: no key-shaped literal in the repository


@pytest.fixture
def api(monkeypatch):
    """A fresh FakeAPI, configured as the 'compatible' provider with a key, fast retries and a short timeout."""
    fake = FakeAPI()
    as_compatible_provider(monkeypatch, fake, KEY, retries=2)
    yield fake
    client.clear_clients()
    fake.close()


def png_file(path: Path, size: tuple[int, int] = (320, 200), seed: int = 0) -> Path:
    """A real PNG with noisy pixels (so it does not compress to nothing)."""
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format="PNG")
    return path


def image_urls(message: dict[str, Any]) -> list[str]:
    return [p["image_url"]["url"] for p in message["content"] if p.get("type") == "image_url"]


def fast(reply: Reply) -> Reply:
    """A retryable reply that asks for a 10 ms wait (OpenAI's retry-after-ms header, which the SDK prefers)."""
    reply.headers.setdefault("retry-after-ms", "10")
    return reply


# --- the source notebook's functions ---------------------------------------------------------------

def test_query_image_description_sends_the_documented_body(api):
    url = "https://example.org/images/boardwalk.jpg"
    answer = query_image_description(url)
    assert answer == "Reply 1"
    [seen] = api.posts
    assert seen.path == "/v1/chat/completions"
    assert seen.headers["authorization"] == f"Bearer {KEY}"
    assert seen.body == {
        "model": models.DEFAULT_MODEL,
        "messages": [{"role": "user", "content": [
            {"type": "text", "text": chat.DEFAULT_URL_PROMPT},
            {"type": "image_url", "image_url": {"url": url, "detail": "auto"}},
        ]}],
        "max_completion_tokens": 300,      # the default model reasons: the field follows the model, not the provider
    }
    assert chat.last_request() == seen.body


def test_query_image_description_keyword_extras(api):
    query_image_description("https://example.org/a.png", "What is it?", 50, model="llava:13b", detail="low")
    body = api.posts[0].body
    assert body["model"] == "llava:13b" and body["max_tokens"] == 50
    assert body["messages"][0]["content"][1]["image_url"]["detail"] == "low"


def test_base64_sends_the_real_mime_type_not_jpeg(api, tmp_path):
    # A PNG saved under a .jpg name: the source notebook would have labelled it image/jpeg.
    path = png_file(tmp_path / "chart.jpg")
    data = query_base64_image_description(str(path), "Read the chart.")
    [url] = image_urls(api.posts[0].body["messages"][-1])
    assert url.startswith("data:image/png;base64,")
    assert data == {"messages": api.posts[0].body["messages"], "current_reply": "Reply 1"}
    assert set(data) == {"messages", "current_reply"}


def test_base64_history_is_sent_in_order_and_the_callers_list_is_not_mutated(api, tmp_path):
    path = png_file(tmp_path / "gdp.png")
    first = query_base64_image_description(str(path))
    history = first["messages"]
    snapshot = copy.deepcopy(history)

    second = query_base64_image_description("", "What is missing?", history, first["current_reply"])
    assert history == snapshot and len(history) == 1           # untouched
    sent = api.posts[1].body["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0] == snapshot[0]
    assert sent[1] == {"role": "assistant", "content": "Reply 1"}
    assert sent[2]["content"] == [{"type": "text", "text": "What is missing?"}]   # text-only follow-up
    assert second["messages"] == sent and second["current_reply"] == "Reply 2"

    # Returned messages are a copy: editing them does not reach into the next call's history.
    second["messages"].append({"role": "user", "content": "junk"})
    assert api.posts[1].body["messages"] == sent


def test_base64_defaults_match_the_source(api, tmp_path):
    query_base64_image_description(str(png_file(tmp_path / "a.png")))
    body = api.posts[0].body
    assert body["max_completion_tokens"] == 1000 and "max_tokens" not in body
    assert body["messages"][0]["content"][0] == {"type": "text", "text": chat.DEFAULT_IMAGE_PROMPT}


def test_functions_reuse_one_client(api, tmp_path, monkeypatch):
    built = []
    original = client._build
    monkeypatch.setattr(client, "_build", lambda *a: built.append(a) or original(*a))
    query_image_description("https://example.org/a.png")
    query_base64_image_description(str(png_file(tmp_path / "a.png")))
    Conversation().ask("hello")
    assert len(built) == 1
    assert len(api.posts) == 3


def test_functions_raise_instead_of_returning_error_strings(api, tmp_path):
    api.push(Reply(400, body={"error": {"message": "Invalid image data.", "type": "invalid_request_error",
                                        "code": "invalid_image"}}))
    with pytest.raises(BadRequestError) as err:
        query_base64_image_description(str(png_file(tmp_path / "a.png")))
    assert err.value.status == 400 and err.value.code == "invalid_image"
    assert "Invalid image data" in str(err.value)


def test_empty_and_invalid_arguments_fail_before_sending(api):
    with pytest.raises(BadRequestError, match="Nothing to send"):
        query_base64_image_description("", "   ")
    with pytest.raises(BadRequestError, match="max_tokens"):
        query_image_description("https://example.org/a.png", max_tokens=0)
    with pytest.raises(BadRequestError, match="detail"):
        query_image_description("https://example.org/a.png", detail="medium")
    with pytest.raises(BadRequestError, match="No image URL"):
        query_image_description("")
    assert api.posts == []


# --- request paths per provider ------------------------------------------------------------------

def test_openai_style_providers_send_max_completion_tokens(api, monkeypatch):
    # The offline backend and OpenAI get the non-deprecated field (reasoning models reject max_tokens).
    for provider in ("openai", "azure", "offline", "compatible"):
        assert chat.token_limit_field("gpt-5.4-mini", provider) == "max_completion_tokens"
    for provider in ("openai", "azure", "offline"):
        assert chat.token_limit_field("gpt-4o", provider) == "max_completion_tokens"
    assert chat.token_limit_field("llava:13b", "compatible") == "max_tokens"
    monkeypatch.setenv("VISION_PROVIDER", "offline")
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: api.url)
    assert Conversation().ask("hi", max_tokens=42) == "Reply 1"
    assert api.posts[0].body["max_completion_tokens"] == 42 and "max_tokens" not in api.posts[0].body
    assert api.posts[0].headers["authorization"] == "Bearer offline"


def test_azure_requests_use_the_deployment_route_and_api_key_header(api, monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL")
    monkeypatch.setenv("VISION_PROVIDER", "azure")
    monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", api.url)
    monkeypatch.setenv("AZURE_OPENAI_API_KEY", "a1b2" * 8)
    monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-21")
    monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "course-vision")
    monkeypatch.setenv("VISION_MODEL", models.DEFAULT_MODEL)
    assert query_image_description("https://example.org/a.png") == "Reply 1"
    [seen] = api.posts
    assert seen.path == "/openai/deployments/course-vision/chat/completions"
    assert seen.query == {"api-version": ["2024-10-21"]}
    assert seen.headers["api-key"] == "a1b2" * 8
    assert seen.body["model"] == "course-vision"


# --- Conversation ---------------------------------------------------------------------------------

def test_conversation_sends_history_and_records_turns(api, tmp_path):
    chat_ = Conversation("Answer briefly.", max_tokens=200)
    first = chat_.ask("What is this?", images=str(png_file(tmp_path / "boardwalk.png")))
    second = chat_.ask("And the colours?")
    assert (first, second) == ("Reply 1", "Reply 2")
    assert [m["role"] for m in chat_.messages] == ["system", "user", "assistant", "user", "assistant"]
    sent = api.posts[1].body
    assert sent == chat_.last_request
    assert sent["messages"] == chat_.messages[:4]
    assert sent["max_completion_tokens"] == 200     # the default model reasons (the field follows the model)
    assert [t.prompt_tokens for t in chat_.turns] == [seen.size // 4 for seen in api.posts]
    assert [u["prompt_tokens"] for u in chat_.usage] == [t.prompt_tokens for t in chat_.turns]
    assert chat_.usage[0]["completion_tokens"] == 1 and chat_.usage[0]["images_sent"] == 1
    assert chat_.turns[0].images[0].name == "boardwalk.png"
    assert chat_.turns[0].images[0].width and chat_.turns[0].images[0].height
    assert chat_.usage[1]["images_sent"] == 0 and chat_.total_tokens() > 0


def test_ask_accepts_one_or_several_images_and_overrides(api, tmp_path):
    a, b = png_file(tmp_path / "a.png", seed=1), png_file(tmp_path / "b.png", seed=2)
    chat_ = Conversation(detail="low")
    chat_.ask("Compare.", images=[a, b], detail="high", max_tokens=77)
    body = api.posts[0].body
    parts = body["messages"][0]["content"]
    assert [p["type"] for p in parts] == ["text", "image_url", "image_url"]
    assert {p["image_url"]["detail"] for p in parts[1:]} == {"high"}
    assert body["max_completion_tokens"] == 77
    chat_.ask("", images=Image.open(a))            # an image alone is fine
    assert api.posts[1].body["messages"][-1]["content"][0]["type"] == "image_url"


def test_ask_validates_before_sending(api):
    chat_ = Conversation()
    with pytest.raises(BadRequestError, match="Nothing to send"):
        chat_.ask("  ")
    for bad in (0, -5, 2.5, True, "100"):
        with pytest.raises(BadRequestError, match="max_tokens must be a positive whole number"):
            chat_.ask("hi", max_tokens=bad)
    with pytest.raises(BadRequestError, match="max_tokens"):
        Conversation(max_tokens=0)
    assert api.posts == [] and chat_.messages == [] and chat_.last_request is None


FAILURES = {
    "400": ([Reply(400, body={"error": {"message": "Invalid image.", "type": "invalid_request_error",
                                         "code": "invalid_image"}})], BadRequestError, 400),
    "401": ([Reply(401, body={"error": {"message": f"Incorrect API key provided: {KEY}.",
                                         "type": "invalid_request_error", "code": "invalid_api_key"}})],
            AuthenticationError, 401),
    "404": ([Reply(404, body={"error": {"message": "The model does not exist.", "type": "invalid_request_error",
                                         "code": "model_not_found"}})], ModelNotFoundError, 404),
    "429-after-retries": ([fast(Reply(429)) for _ in range(3)], RateLimitError, 429),
    "500": ([fast(Reply(500)) for _ in range(3)], ServiceError, 500),
    "timeout": ([Reply(delay=1.2) for _ in range(3)], NetworkError, None),
}


@pytest.mark.parametrize("case", list(FAILURES))
def test_failed_turn_leaves_history_exactly_unchanged(api, tmp_path, monkeypatch, case):
    replies, expected, status = FAILURES[case]
    if case == "timeout":
        monkeypatch.setenv("VISION_TIMEOUT", "0.3")
        monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    chat_ = Conversation("Be brief.")
    chat_.ask("First question", images=str(png_file(tmp_path / "first.png")))
    before_messages = copy.deepcopy(chat_.messages)
    before_turns = list(chat_.turns)

    api.push(*replies)
    with pytest.raises(expected) as err:
        chat_.ask("Second question", images=str(png_file(tmp_path / "second.png", seed=3)))
    assert chat_.messages == before_messages
    assert chat_.turns == before_turns
    assert err.value.status == status
    assert KEY not in str(err.value) and KEY[3:] not in str(err.value)
    assert err.value.fix  # every course error says what to do
    # and the conversation still works afterwards
    api.script.clear()
    assert chat_.ask("Try again").startswith("Reply")
    assert len(chat_.messages) == len(before_messages) + 2


def test_error_translation_keeps_status_code_and_advice(api):
    api.push(Reply(401, body={"error": {"message": f"Incorrect API key provided: {KEY}.",
                                         "type": "invalid_request_error", "code": "invalid_api_key"}}))
    with pytest.raises(AuthenticationError) as err:
        query_image_description("https://example.org/a.png")
    assert err.value.code == "invalid_api_key" and "OPENAI_API_KEY" in err.value.fix
    assert "sk-...k3y9" in str(err.value)                    # masked, still recognisable
    assert err.value.__cause__ is None and err.value.__suppress_context__  # no SDK traceback noise

    api.push(Reply(404, body={"error": {"message": "no such model", "code": "model_not_found"}}))
    with pytest.raises(ModelNotFoundError) as err:
        query_image_description("https://example.org/a.png")
    assert "VISION_MODEL" in err.value.fix


def test_retries_honour_retry_after(api, monkeypatch):
    monkeypatch.setenv("VISION_MAX_RETRIES", "1")
    api.push(Reply(429, headers={"retry-after": "1"}), Reply())
    started = time.monotonic()
    assert query_image_description("https://example.org/a.png") == "Reply 2"
    waited = time.monotonic() - started
    assert len(api.posts) == 2
    assert 0.9 <= waited < 5, waited      # the server said 1 s; the SDK waited that long, not its own backoff
    assert api.posts[1].headers.get("x-stainless-retry-count") == "1"


def test_retry_budget_comes_from_vision_max_retries(api, monkeypatch):
    monkeypatch.setenv("VISION_MAX_RETRIES", "3")
    api.push(*[fast(Reply(503)) for _ in range(3)])           # three failures, then the default 200
    assert query_image_description("https://example.org/a.png") == "Reply 4"
    assert len(api.posts) == 4

    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    client.clear_clients()                                     # settings are read once: re-resolve them
    api.push(fast(Reply(503)))
    with pytest.raises(ServiceError) as err:
        query_image_description("https://example.org/a.png")
    assert err.value.status == 503 and len(api.posts) == 5


def test_client_errors_are_not_retried(api):
    api.push(Reply(400, body={"error": {"message": "bad", "code": None}}))
    with pytest.raises(BadRequestError):
        query_image_description("https://example.org/a.png")
    assert len(api.posts) == 1


def test_unreachable_endpoint_is_a_network_error(monkeypatch):
    import socket

    with socket.socket() as sock:                # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("VISION_PROVIDER", "compatible")
    monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    try:
        with pytest.raises(NetworkError) as err:
            Conversation().ask("hello")
    finally:
        client.clear_clients()
    assert err.value.status is None
    assert "reachable" in err.value.fix and "OPENAI_BASE_URL" in err.value.fix


def test_length_finish_reason_warns_outside_jupyter(api):
    api.push(Reply(finish_reason="length", content="The image shows a wooden"))
    chat_ = Conversation(max_tokens=5)
    with pytest.warns(TruncatedAnswerWarning, match=r"cut off at max_tokens=5"):
        reply = chat_.ask("Describe it.")
    assert reply == "The image shows a wooden"
    assert chat_.turns[-1].finish_reason == "length"          # a cut answer is still a successful turn

    api.push(Reply(finish_reason="length", content=""))
    with pytest.warns(TruncatedAnswerWarning, match="hidden reasoning"):
        chat_.ask("Again?")

    with warnings.catch_warnings():
        warnings.simplefilter("error")                         # a complete answer warns about nothing
        chat_.ask("Fine?")


def test_retired_model_is_refused_before_any_request(api, monkeypatch):
    with pytest.raises(RetiredModelError) as err:
        Conversation(model="gpt-4-vision-preview").ask("hi")
    assert err.value.replacement == models.retired_model("gpt-4-vision-preview").replacement
    with pytest.raises(RetiredModelError):
        query_image_description("https://example.org/a.png", model="gpt-4-vision-preview")
    monkeypatch.setenv("VISION_MODEL", "gpt-4-vision-preview")
    client.clear_clients()                                     # settings are read once: re-resolve them
    with pytest.raises(RetiredModelError):
        query_image_description("https://example.org/a.png")
    with pytest.raises(RetiredModelError):
        setup(verbose=False)
    assert api.posts == []


# --- saving and loading -----------------------------------------------------------------------------

def test_save_and_load_round_trip(api, tmp_path):
    chat_ = Conversation("You describe charts.", detail="low", max_tokens=123, drop_old_images=True)
    chat_.ask("What is this?", images=[png_file(tmp_path / "chart.png")])
    chat_.ask("Summarise.")
    path = chat_.save(tmp_path / "saved" / "chat.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == conversation.FORMAT_NAME and data["version"] == conversation.FORMAT_VERSION

    loaded = Conversation.load(path)
    assert loaded.messages == chat_.messages
    assert loaded.turns == chat_.turns
    assert (loaded.system, loaded.detail, loaded.max_tokens, loaded.drop_old_images) == \
        ("You describe charts.", "low", 123, True)
    assert loaded.as_markdown() == chat_.as_markdown()
    # and it carries on where it stopped
    loaded.ask("One more thing?")
    assert api.posts[-1].body["messages"][:len(chat_.messages)] == chat_.messages


def test_load_refuses_other_files_clearly(tmp_path):
    (tmp_path / "x.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(chat.ConversationFileError, match="not valid JSON"):
        Conversation.load(tmp_path / "x.json")
    (tmp_path / "y.json").write_text(json.dumps({"messages": []}), encoding="utf-8")
    with pytest.raises(chat.ConversationFileError, match="not a saved Conversation"):
        Conversation.load(tmp_path / "y.json")
    (tmp_path / "z.json").write_text(json.dumps({"format": conversation.FORMAT_NAME, "version": 99}), encoding="utf-8")
    with pytest.raises(chat.ConversationFileError, match="version 99"):
        Conversation.load(tmp_path / "z.json")
    with pytest.raises(chat.ConversationFileError, match="no saved conversation"):
        Conversation.load(tmp_path / "missing.json")


@pytest.mark.parametrize("crash_in", ["json.dump", "os.replace"])
def test_save_is_atomic_when_the_write_crashes(api, tmp_path, monkeypatch, crash_in):
    chat_ = Conversation("Keep me.")
    chat_.ask("First")
    path = chat_.save(tmp_path / "chat.json")
    original = path.read_bytes()
    chat_.ask("Second")

    if crash_in == "json.dump":
        real_dump = json.dump

        def broken_dump(obj, stream, **kwargs):
            stream.write(json.dumps(obj)[:40])               # half a file...
            raise OSError("disk full")                       # ...then the crash

        monkeypatch.setattr(conversation.json, "dump", broken_dump)
        assert real_dump is not broken_dump
    else:
        def broken_replace(src, dst):
            raise OSError("power cut")

        monkeypatch.setattr(conversation.os, "replace", broken_replace)

    with pytest.raises(OSError):
        chat_.save(path)
    assert path.read_bytes() == original                     # the old file is intact
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chat.json"]   # no temp file left behind
    assert len(Conversation.load(path).messages) == 3


# --- dropping old images ----------------------------------------------------------------------------

PLACEHOLDER = re.compile(r"\[image sent earlier: (?P<name>[^,]+), (?P<w>\d+)×(?P<h>\d+), omitted to save tokens\]")


def test_drop_old_images_replaces_earlier_images_with_placeholders(api, tmp_path):
    files = [png_file(tmp_path / f"photo{i}.png", size=(400, 300), seed=i) for i in range(1, 6)]
    keep, drop = Conversation(), Conversation(drop_old_images=True)
    for i, path in enumerate(files, start=1):
        keep.ask(f"Turn {i}: what changed?", images=[path])
        drop.ask(f"Turn {i}: what changed?", images=[path])

    sent = drop.last_request["messages"]
    assert sum(len(image_urls(m)) for m in sent if m["role"] == "user") == 1          # only the newest
    assert image_urls(sent[-1]) and image_urls(sent[-1])[0].startswith("data:image/png")
    notes = [PLACEHOLDER.fullmatch(p["text"]) for m in sent[:-1] if m["role"] == "user"
             for p in m["content"] if p["type"] == "text" and p["text"].startswith("[image")]
    assert [n["name"] for n in notes] == [f"photo{i}.png" for i in range(1, 5)]
    assert all((int(n["w"]), int(n["h"])) == (400, 300) for n in notes)
    assert sum(len(image_urls(m)) for m in keep.last_request["messages"] if m["role"] == "user") == 5

    # The history itself keeps every image (nothing is lost; only what is re-sent changes).
    assert sum(len(image_urls(m)) for m in drop.messages if m["role"] == "user") == 5

    # Fewer prompt tokens from the second turn on, and the saving grows with every turn.
    kept = [t.prompt_tokens for t in keep.turns]
    dropped = [t.prompt_tokens for t in drop.turns]
    assert dropped[0] == kept[0]
    savings = [k - d for k, d in zip(kept, dropped, strict=True)]
    assert all(b > a for a, b in zip(savings[1:], savings[2:], strict=False)) and savings[1] > 0
    assert [u["images_omitted"] for u in drop.usage] == [0, 1, 2, 3, 4]


def test_text_follow_up_keeps_the_latest_image(api, tmp_path):
    drop = Conversation(drop_old_images=True)
    drop.ask("Look.", images=[png_file(tmp_path / "a.png", seed=1)])
    drop.ask("And this.", images=[png_file(tmp_path / "b.png", seed=2)])
    drop.ask("What colour is the corner?")                  # about b.png
    sent = drop.last_request["messages"]
    assert len(image_urls(sent[0])) == 0 and PLACEHOLDER.search(json.dumps(sent[0], ensure_ascii=False))
    assert len(image_urls(sent[2])) == 1                     # b.png is still sent


def test_as_markdown_names_images_without_data_or_paths(api, tmp_path):
    chat_ = Conversation("Be kind.")
    chat_.ask("What is this?", images=[png_file(tmp_path / "cat.png", size=(64, 48))])
    text = chat_.as_markdown()
    assert text.startswith("**System:** Be kind.")
    assert "**You:** What is this?" in text and "*[image: cat.png, 64×48]*" in text
    assert "**Assistant:** Reply 1" in text
    assert "base64" not in text and str(tmp_path) not in text and os.sep + "cat.png" not in text


# --- against the real offline backend (helpers.offline) ------------------------------------------------

def test_offline_backend_answers_and_counts_image_tokens(offline, tmp_path):
    from helpers import tokens

    Conversation().ask("Hi")    # the backend's first answer ends with the set-up hint; the ones compared do not
    files = [png_file(tmp_path / f"scene{i}.png", size=(300, 200), seed=10 + i) for i in range(3)]
    keep, drop = Conversation(detail="low"), Conversation(detail="low", drop_old_images=True)
    for i, path in enumerate(files, start=1):
        assert keep.ask(f"Turn {i}: describe it.", images=[path])
        drop.ask(f"Turn {i}: describe it.", images=[path])
    model = load_model()
    per_image = tokens.image_tokens(300, 200, "low", model)
    kept = [t.prompt_tokens for t in keep.turns]
    dropped = [t.prompt_tokens for t in drop.turns]
    assert kept[0] == dropped[0]
    # Each omitted image saves its image tokens, minus the few tokens of its text placeholder.
    for turn, (k, d) in enumerate(zip(kept, dropped, strict=True)):
        placeholders = turn * tokens.text_tokens("[image sent earlier: scene0.png, 300×200, omitted to save tokens]")
        assert k - d == turn * per_image - placeholders


def load_model() -> str:
    from helpers.config import load_settings

    return load_settings().model


def test_offline_length_limit_gives_the_notice(offline):
    chat_ = Conversation(max_tokens=3)
    with pytest.warns(TruncatedAnswerWarning, match="max_tokens=3"):
        reply = chat_.ask("Describe everything you can about this course in detail, please.")
    assert chat_.turns[-1].finish_reason == "length" and chat_.turns[-1].completion_tokens <= 3
    assert reply


def test_offline_faults_leave_history_unchanged_and_retries_recover(offline, monkeypatch, tmp_path):
    chat_ = Conversation()
    chat_.ask("First question.")
    before = copy.deepcopy(chat_.messages)

    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    monkeypatch.setenv("VISION_OFFLINE_FAULT", "500")
    with pytest.raises(ServiceError) as err:
        chat_.ask("Second question.")
    assert err.value.status == 500 and chat_.messages == before

    # Two 429s then success: the SDK's retries (VISION_MAX_RETRIES=2) absorb them, honouring retry-after.
    monkeypatch.setenv("VISION_MAX_RETRIES", "2")
    monkeypatch.setenv("VISION_OFFLINE_FAULT", f"429;times=2;key={tmp_path.name};retry_after=0.05")
    assert chat_.ask("Second question, again.")
    assert len(chat_.messages) == len(before) + 2

    monkeypatch.setenv("VISION_OFFLINE_FAULT", f"429;times=5;key={tmp_path.name}-b;retry_after=0.05")
    with pytest.raises(RateLimitError) as err:
        chat_.ask("Third question.")
    assert err.value.status == 429 and err.value.code == "rate_limit_exceeded"
    assert len(chat_.messages) == len(before) + 2


def test_offline_rejects_an_unknown_model_with_advice(offline):
    with pytest.raises(ModelNotFoundError) as err:
        Conversation(model="no-such-vision-model").ask("hello")
    assert err.value.status == 404 and "VISION_MODEL" in err.value.fix
