"""The offline backend is a real Chat Completions server: the official SDK (sync, async, streaming), raw
``requests`` and raw sockets all work against it, and it fails the way the API fails.

Every test talks HTTP to a server on a free loopback port. Images are made with Pillow in the test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import http.client
import io
import json
import logging
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import openai
import pytest
import requests
from PIL import Image, ImageDraw, ImageFont

from helpers import models, tokens
from helpers.errors import ConfigurationError
from helpers.offline import ServerSettings, app, completions, ensure_server, faults, fetch, protocol
from helpers.offline.server import OfflineServer

REPO = Path(__file__).resolve().parent.parent
MODEL = models.DEFAULT_MODEL
#: A non-reasoning model, for the tests of ``max_tokens`` (reasoning models such as the default reject it).
CLASSIC_MODEL = "gpt-4.1"
KEY = "offline"


def usable_models(family: str | None = None) -> list[str]:
    """Models the cost tables know that no provider has shut down today (the list changes with the calendar)."""
    return [m for m in tokens.known_models() if models.retired_model(m) is None
            and (family is None or tokens.model_cost(m).family == family)]


OTHER = next(m for m in usable_models() if m != MODEL)     # a second usable model
TILE = next(iter(usable_models("tile")), None)             # a tile-family model, while one is still offered


# --- images made in the test --------------------------------------------------------------------------------

def png_bytes(width: int = 64, height: int = 48, colour: str = "steelblue") -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), colour).save(buf, "PNG")
    return buf.getvalue()


def image_bytes(fmt: str, size: tuple[int, int] = (32, 24)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", size, "orange").save(buf, fmt)
    return buf.getvalue()


def text_png(text: str, size: tuple[int, int] = (640, 200)) -> bytes:
    img = Image.new("RGB", size, "white")
    font = ImageFont.load_default(size=56)
    ImageDraw.Draw(img).text((30, 60), text, fill="black", font=font)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


def user_message(text: str, *urls: str, detail: str | None = None) -> dict:
    parts: list[dict] = [{"type": "text", "text": text}]
    for url in urls:
        spec = {"url": url}
        if detail is not None:
            spec["detail"] = detail
        parts.append({"type": "image_url", "image_url": spec})
    return {"role": "user", "content": parts}


# --- fixtures ------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    server = OfflineServer(warm_ocr=False, read_timeout=0.5, hold_seconds=3.0, download_timeout=0.5)
    server.start()
    yield server
    server.stop()


def client(server: OfflineServer, **options) -> openai.OpenAI:
    options.setdefault("max_retries", 0)
    options.setdefault("timeout", 20)
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key=KEY, **options)


def post(server: OfflineServer, body, *, headers: dict | None = None, path: str = "/v1/chat/completions",
         raw: bytes | None = None) -> requests.Response:
    all_headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json", **(headers or {})}
    data = raw if raw is not None else json.dumps(body).encode()
    return requests.post(server.base_url + path, data=data, headers=all_headers, timeout=20)


def error_of(response: requests.Response) -> dict:
    assert response.headers["Content-Type"].startswith("application/json")
    error = response.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error


def sdk_error(server: OfflineServer, body: dict, expected: type[openai.APIStatusError], **client_options):
    """Send an arbitrary body through the SDK's own HTTP stack and return the exception it raises."""
    sdk = client(server, **client_options)
    with pytest.raises(expected) as caught:
        sdk.post("/chat/completions", body=body, cast_to=openai.types.chat.ChatCompletion)
    assert type(caught.value) is expected
    return caught.value


# --- the protocol with the official SDK and with requests ----------------------------------------------------

def test_openai_sdk_answers_an_image_question(server):
    response = client(server).chat.completions.create(
        model=MODEL, messages=[user_message("What colour is this?", data_url(png_bytes()))],
        max_completion_tokens=300)
    assert response.object == "chat.completion"
    assert response.id.startswith("chatcmpl-")
    assert response.model == MODEL
    assert response.system_fingerprint == "offline"
    choice = response.choices[0]
    assert choice.index == 0 and choice.message.role == "assistant"
    assert isinstance(choice.message.content, str) and choice.message.content.strip()
    assert choice.finish_reason == "stop"
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_source_notebook_requests_code_runs_unchanged(server):
    # The raw call of the source notebook: jpeg hard-coded in the data URL even for a PNG file.
    # (with a model that still takes max_tokens: the seed's gpt-4-turbo is retired)
    payload = {"model": CLASSIC_MODEL,
               "messages": [user_message("图里的内容讲了什么？", data_url(png_bytes(), "image/jpeg"))],
               "max_tokens": 1000}
    headers = {"Content-Type": "application/json", "Authorization": f"Bearer {KEY}"}
    response = requests.post(server.base_url + "/v1/chat/completions", headers=headers, json=payload, timeout=20)
    assert response.status_code == 200
    assert response.headers["Content-Length"] == str(len(response.content))
    assert response.json()["choices"][0]["message"]["content"]


def test_usage_counts_image_tokens_for_the_model_and_detail(server):
    sdk = client(server)
    width, height = 1024, 768
    image = data_url(png_bytes(width, height))
    text = "Describe this picture in one sentence."
    text_only = sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": text}])
    expected_text = (tokens.PER_MESSAGE_TOKENS + tokens.text_tokens("user") + tokens.text_tokens(text)
                     + tokens.REPLY_PRIMING_TOKENS)
    assert text_only.usage.prompt_tokens == expected_text
    for model in dict.fromkeys([MODEL, OTHER, *usable_models("tile")[:2]]):
        for detail in ("low", "high", "auto"):
            with_image = sdk.chat.completions.create(model=model, messages=[user_message(text, image, detail=detail)])
            expected = tokens.image_tokens(width, height, detail, model) + expected_text
            assert with_image.usage.prompt_tokens == expected, (model, detail)
            content = with_image.choices[0].message.content
            assert with_image.usage.completion_tokens == tokens.text_tokens(content)


def test_detail_defaults_to_auto_and_bare_string_image_url_is_accepted(server):
    sdk = client(server)
    image = data_url(png_bytes(900, 600))
    as_object = sdk.chat.completions.create(model=OTHER, messages=[user_message("Hi", image)])
    bare = sdk.chat.completions.create(model=OTHER, messages=[{"role": "user", "content": [
        {"type": "text", "text": "Hi"}, {"type": "image_url", "image_url": image}]}])
    assert bare.usage.prompt_tokens == as_object.usage.prompt_tokens
    assert as_object.usage.prompt_tokens - tokens.image_tokens(900, 600, "auto", OTHER) == \
        sdk.chat.completions.create(model=OTHER, messages=[user_message("Hi")]).usage.prompt_tokens


def test_system_developer_and_assistant_messages_are_counted(server):
    sdk = client(server)
    messages = [{"role": "system", "content": "You are terse."},
                {"role": "developer", "content": [{"type": "text", "text": "Answer in English."}]},
                {"role": "user", "content": "First question"},
                {"role": "assistant", "content": "First answer"},
                {"role": "user", "content": "Second question", "name": "ana"}]
    response = sdk.chat.completions.create(model=MODEL, messages=messages, temperature=1)   # a reasoning model takes only the default
    expected = tokens.REPLY_PRIMING_TOKENS + tokens.PER_NAME_TOKENS + tokens.text_tokens("ana")
    for message in messages:
        content = message["content"] if isinstance(message["content"], str) else message["content"][0]["text"]
        expected += tokens.PER_MESSAGE_TOKENS + tokens.text_tokens(message["role"]) + tokens.text_tokens(content)
    assert response.usage.prompt_tokens == expected


def test_max_tokens_cuts_the_answer_and_reports_length(server):
    sdk = client(server)
    messages = [user_message("Describe it.", data_url(png_bytes(300, 200)))]
    full = sdk.chat.completions.create(model=CLASSIC_MODEL, messages=messages).choices[0].message.content
    assert tokens.text_tokens(full) > 5
    for parameter in ("max_tokens", "max_completion_tokens"):
        cut = sdk.chat.completions.create(model=CLASSIC_MODEL, messages=messages, **{parameter: 5})
        choice = cut.choices[0]
        assert choice.finish_reason == "length"
        assert 0 < cut.usage.completion_tokens <= 5
        assert full.startswith(choice.message.content)
        assert len(choice.message.content) < len(full)
    roomy = sdk.chat.completions.create(model=CLASSIC_MODEL, messages=messages,
                                        max_tokens=tokens.text_tokens(full))
    assert roomy.choices[0].finish_reason == "stop" and roomy.choices[0].message.content == full


def test_reasoning_models_reject_max_tokens_like_the_real_service(server):
    sdk = client(server)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=MODEL, messages=[user_message("Hi")], max_tokens=50)
    assert (caught.value.code, caught.value.param) == ("unsupported_parameter", "max_tokens")
    assert "Use 'max_completion_tokens' instead" in caught.value.message
    ok = sdk.chat.completions.create(model=MODEL, messages=[user_message("Hi")], max_completion_tokens=50)
    assert ok.choices[0].message.content


def test_truncation_falls_back_to_characters_for_one_long_word():
    text, cut = completions.truncate_to_tokens("Pneumonoultramicroscopicsilicovolcanoconiosis is long", 2)
    assert cut and text and tokens.text_tokens(text) <= 2
    assert "Pneumonoultramicroscopicsilicovolcanoconiosis".startswith(text)


def test_same_request_same_answer_new_ids(server):
    """Deterministic answers, but every answer its own id (issue 23: frameworks that merge messages by id dropped
    an answer when two identical requests got one id)."""
    sdk = client(server)
    messages = [user_message("What is this?", data_url(png_bytes(120, 80, "red")))]
    first = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    second = sdk.chat.completions.with_raw_response.create(model=MODEL, messages=messages)
    one, two = first.parse(), second.parse()
    assert one.choices[0].message.content == two.choices[0].message.content and one.usage == two.usage
    assert one.id != two.id and one.id.startswith("chatcmpl-")
    assert first.headers["x-request-id"] != second.headers["x-request-id"]


def test_stream_without_usage(server):
    sdk = client(server)
    messages = [user_message("Describe it.", data_url(png_bytes(200, 100)))]
    expected = sdk.chat.completions.create(model=MODEL, messages=messages).choices[0].message.content
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=messages, stream=True))
    assert chunks[0].choices[0].delta.role == "assistant"
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.usage is None for c in chunks)
    assert len({c.id for c in chunks}) == 1


def test_stream_with_include_usage_ends_with_a_usage_chunk(server):
    sdk = client(server)
    messages = [user_message("Describe it.", data_url(png_bytes(200, 100)))]
    plain = sdk.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=4)
    chunks = list(sdk.chat.completions.create(model=MODEL, messages=messages, max_completion_tokens=4, stream=True,
                                              stream_options={"include_usage": True}))
    assert chunks[-1].choices == [] and chunks[-1].usage == plain.usage
    assert chunks[-2].choices[0].finish_reason == "length"
    assert "".join(c.choices[0].delta.content or "" for c in chunks[:-1]) == plain.choices[0].message.content


def test_stream_wire_format_is_sse_with_done(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hello"}], "stream": True}
    with requests.post(server.base_url + "/v1/chat/completions", json=body, stream=True, timeout=20,
                       headers={"Authorization": f"Bearer {KEY}"}) as response:
        assert response.status_code == 200
        assert response.headers["Content-Type"].startswith("text/event-stream")
        lines = [line for line in response.iter_lines(decode_unicode=True) if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    assert json.loads(lines[0][6:])["object"] == "chat.completion.chunk"


def test_async_client_sync_and_stream(server):
    async def run():
        async with openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0) as sdk:
            messages = [user_message("What is it?", data_url(png_bytes(50, 50)))]
            answer = await sdk.chat.completions.create(model=MODEL, messages=messages)
            stream = await sdk.chat.completions.create(model=MODEL, messages=messages, stream=True,
                                                       stream_options={"include_usage": True})
            pieces, usage = [], None
            async for chunk in stream:
                if chunk.choices:
                    pieces.append(chunk.choices[0].delta.content or "")
                usage = chunk.usage or usage
            return answer, "".join(pieces), usage

    answer, streamed, usage = asyncio.run(run())
    assert streamed == answer.choices[0].message.content
    assert usage == answer.usage


def test_azure_sdk_client_works_on_the_deployment_route(server):
    azure = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key=KEY, api_version="2024-10-21",
                               max_retries=0)
    response = azure.chat.completions.create(model=OTHER, messages=[user_message("Hi", data_url(png_bytes()))])
    assert response.model == OTHER
    assert response.choices[0].message.content
    assert response.prompt_filter_results[0]["content_filter_results"]["hate"]["filtered"] is False


def test_models_list_and_retrieve(server):
    sdk = client(server)
    ids = [model.id for model in sdk.models.list()]
    assert MODEL in ids and OTHER in ids
    assert all(models.retired_model(name) is None for name in ids)
    assert sdk.models.retrieve(OTHER).id == OTHER
    with pytest.raises(openai.NotFoundError):
        sdk.models.retrieve("no-such-model")


def test_keep_alive_connection_serves_errors_streams_and_answers_in_turn(server):
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    headers = {"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    good = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    streamed = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": True})
    statuses = []
    for body in (good, "{not json", streamed, good):
        conn.request("POST", "/v1/chat/completions", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        statuses.append(response.status)
        assert response.getheader("Connection") != "close"
    sock = conn.sock
    conn.request("GET", "/v1/models", headers=headers)
    conn.getresponse().read()
    assert conn.sock is sock, "the same TCP connection served every request"
    assert statuses == [200, 400, 200, 200]
    conn.close()


HANDWRITING = REPO / "images" / "handwriting_en.jpg"


@pytest.mark.skipif(not HANDWRITING.with_suffix(".txt").is_file(), reason="no handwriting sample with a transcript")
def test_transcribing_the_handwriting_sample_finds_its_words(server):
    # The server's own /images/ URL: read from disk, OCR'd locally.
    answer = client(server).chat.completions.create(model=MODEL, messages=[
        user_message("Transcribe the handwriting.", f"{server.base_url}/images/{HANDWRITING.name}")])
    text = answer.choices[0].message.content
    assert text.startswith("Offline backend: no language model")
    transcript = HANDWRITING.with_suffix(".txt").read_text(encoding="utf-8")
    words = {w.lower() for w in re.findall(r"[A-Za-z][A-Za-z0-9-]{3,}", transcript)}
    squashed = re.sub(r"\s+", "", text).lower()       # OCR often glues handwritten words together
    found = {w for w in words if w in squashed}
    assert len(found) >= 0.7 * len(words), sorted(words - found)
    assert {"google", "stanford", "adapter", "qlora"} <= found


# --- errors: status, type/code, and the SDK's exception class ------------------------------------------------

def test_malformed_json(server):
    response = post(server, None, raw=b'{"model": "x", "messages": [')
    assert response.status_code == 400
    assert error_of(response)["type"] == "invalid_request_error"
    sdk = client(server)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.post("/chat/completions", content=b'{"model": NaN}', cast_to=openai.types.chat.ChatCompletion,
                 options={"headers": {"Content-Type": "application/json"}})
    assert "could not parse the JSON body" in caught.value.message


def test_body_must_be_an_object(server):
    response = post(server, ["not", "an", "object"])
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_type"


def test_missing_model(server):
    err = sdk_error(server, {"messages": [{"role": "user", "content": "Hi"}]}, openai.BadRequestError)
    assert err.status_code == 400 and "model" in err.message


@pytest.mark.parametrize(("body", "code", "param"), [
    ({"model": MODEL}, "missing_required_parameter", "messages"),
    ({"model": MODEL, "messages": []}, "empty_array", "messages"),
    ({"model": MODEL, "messages": "Hello"}, "invalid_type", "messages"),
    ({"model": MODEL, "messages": ["Hello"]}, "invalid_type", "messages[0]"),
    ({"model": MODEL, "messages": [{"content": "Hi"}]}, "missing_required_parameter", "messages[0].role"),
    ({"model": MODEL, "messages": [{"role": "robot", "content": "Hi"}]}, "invalid_value", "messages[0].role"),
    ({"model": MODEL, "messages": [{"role": "user"}]}, "missing_required_parameter", "messages[0].content"),
    ({"model": MODEL, "messages": [{"role": "user", "content": 42}]}, "invalid_type", "messages[0].content"),
    ({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": 7}]}]},
     "invalid_type", "messages[0].content[0].text"),
    ({"model": MODEL, "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     "missing_required_parameter", "messages[0].content[0].image_url"),
    ({"model": MODEL, "messages": [{"role": "system", "content": [
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]}]}, "invalid_value", "messages[0]"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "max_tokens": "300"},
     "invalid_type", "max_tokens"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "temperature": 3},
     "decimal_above_max_value", "temperature"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream": "yes"}, "invalid_type", "stream"),
    ({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "stream_options": {"include_usage": True}},
     "invalid_value", "stream_options"),
])
def test_wrong_shapes_and_types(server, body, code, param):
    err = sdk_error(server, body, openai.BadRequestError)
    assert (err.code, err.param, err.type) == (code, param, "invalid_request_error")


@pytest.mark.parametrize("value", [0, -5])
@pytest.mark.parametrize("parameter", ["max_tokens", "max_completion_tokens"])
def test_max_tokens_below_one(server, parameter, value):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], parameter: value}
    err = sdk_error(server, body, openai.BadRequestError)
    assert (err.code, err.param) == ("integer_below_min_value", parameter)


def test_unknown_detail_value(server):
    body = {"model": MODEL, "messages": [user_message("Hi", data_url(png_bytes()), detail="medium")]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_value" and err.param == "messages[0].content[1].image_url.detail"
    assert "'low', 'high', 'original', and 'auto'" in err.message   # every value the SDK's ImageURL.detail lists


def test_original_detail_is_counted_where_the_guide_documents_it(server):
    # Guide, "Model sizing behavior" (checked 2026-12-02): gpt-5.4/gpt-5.5 `original` = up to 10,000 patches or
    # 6000 px; `auto` = `high` on gpt-5.4 and `original` on gpt-5.5. usage follows helpers.tokens exactly.
    sdk = client(server)
    width, height = 3000, 2000
    image = data_url(png_bytes(width, height))
    text = "Describe this picture in one sentence."
    base = sdk.chat.completions.create(model="gpt-5.4", messages=[{"role": "user", "content": text}]).usage
    for model, detail in [("gpt-5.4", "original"), ("gpt-5.4", "auto"), ("gpt-5.5", "auto"), ("gpt-5.5", "high")]:
        usage = sdk.chat.completions.create(model=model, messages=[user_message(text, image, detail=detail)]).usage
        assert usage.prompt_tokens == base.prompt_tokens + tokens.image_tokens(width, height, detail, model)
    assert tokens.image_tokens(width, height, "auto", "gpt-5.4") == tokens.image_tokens(width, height, "high", "gpt-5.4")
    assert tokens.image_tokens(width, height, "auto", "gpt-5.5") == tokens.image_tokens(width, height, "original",
                                                                                          "gpt-5.5")


def test_original_detail_on_a_model_without_it_is_an_invalid_value(server):
    # The guide lists `original` only for gpt-5.4, gpt-5.5 and GPT-5.6; what the real API answers for other models
    # is not documented: the backend ASSUMES its generic invalid-value error, listing that model's levels.
    body = {"model": "gpt-4o", "messages": [user_message("Hi", data_url(png_bytes()), detail="original")]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_value" and err.param == "messages[0].content[1].image_url.detail"
    assert "'low', 'high', and 'auto'" in err.message


def test_n_choices_up_to_the_api_maximum(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "n": 129}
    err = sdk_error(server, body, openai.BadRequestError)
    assert (err.code, err.param) == ("integer_above_max_value", "n")
    two = client(server).chat.completions.create(model=MODEL, messages=body["messages"], n=2)
    assert [c.index for c in two.choices] == [0, 1] and two.choices[0].message == two.choices[1].message


def test_image_that_does_not_decode(server):
    truncated = png_bytes(200, 200)[:60]
    body = {"model": MODEL, "messages": [user_message("Hi", data_url(truncated))]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_image"


def test_data_url_that_is_not_base64(server):
    body = {"model": MODEL, "messages": [user_message("Hi", "data:image/png;base64,@@@not-base64@@@")]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_image_url"


@pytest.mark.parametrize("fmt", ["BMP", "TIFF"])
def test_unsupported_image_format_is_sniffed_from_the_bytes(server, fmt):
    # Declared as PNG, really BMP/TIFF: the bytes decide.
    body = {"model": MODEL, "messages": [user_message("Hi", data_url(image_bytes(fmt)))]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_image_format" and "20 MB" in err.message


@pytest.mark.parametrize("fmt", ["JPEG", "WEBP", "GIF"])
def test_supported_formats_are_accepted(server, fmt):
    mime = {"JPEG": "image/jpeg", "WEBP": "image/webp", "GIF": "image/gif"}[fmt]
    response = client(server).chat.completions.create(
        model=OTHER, messages=[user_message("Hi", data_url(image_bytes(fmt, (600, 400)), mime))])
    assert response.usage.prompt_tokens > tokens.image_tokens(600, 400, "auto", OTHER)


def test_base64_that_is_not_an_image(server):
    body = {"model": MODEL, "messages": [user_message("Hi", data_url(b"just some text, not pixels"))]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_image_format"


def test_image_over_20_mb(server):
    big = png_bytes()[:33] + b"\0" * (20 * 1024 * 1024)      # a PNG signature, then 20 MB
    body = {"model": MODEL, "messages": [user_message("Hi", data_url(big))]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "image_too_large"


def test_more_than_50_mb_of_images_in_one_request(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    blob = png_bytes()[:33] + bytes(17 * 1024 * 1024)        # 17 MB each: under the per-image limit
    for i in range(3):
        (folder / f"big{i}.png").write_bytes(blob)
    with OfflineServer(images_dir=folder, warm_ocr=False) as local:
        urls = [f"{local.base_url}/images/big{i}.png" for i in range(3)]
        err = sdk_error(local, {"model": MODEL, "messages": [user_message("Hi", *urls)]}, openai.BadRequestError)
    assert err.code == "images_too_large" and "50 MB" in err.message and "offline backend's own limit" in err.message
    assert "512 MB" in err.message                              # OpenAI's documented payload limit (2026-12-02)


def test_openai_route_image_count_limit(server):
    tiny = data_url(png_bytes(8, 8))
    body = {"model": OTHER, "messages": [user_message("Hi", *[tiny] * (protocol.MAX_IMAGES_OPENAI + 1))]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "too_many_images"
    # The limit counts every image of the request, including earlier turns (only the last turn is analysed).
    at_limit = {"model": OTHER, "messages": [user_message("Hi", *[tiny] * (protocol.MAX_IMAGES_OPENAI - 1)),
                                                {"role": "assistant", "content": "Many squares."},
                                                user_message("And this one?", tiny)]}
    response = post(server, at_limit)
    assert response.status_code == 200
    assert response.json()["usage"]["prompt_tokens"] > protocol.MAX_IMAGES_OPENAI * tokens.image_tokens(8, 8, "auto", OTHER)


def test_no_credentials(server):
    response = requests.post(server.base_url + "/v1/chat/completions", timeout=10,
                             json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 401
    assert error_of(response)["type"] == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError) as caught:
        client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                               extra_headers={"Authorization": "Bearer"})
    assert caught.value.status_code == 401
    with pytest.raises(openai.AuthenticationError):
        client(server).models.list(extra_headers={"Authorization": openai.omit})


def test_retired_model_names_its_replacement(server):
    retired = next(iter(models.RETIRED_MODELS.values()), None)
    if retired is None:
        pytest.skip("helpers.models lists no retired model yet")
    with pytest.raises(openai.NotFoundError) as caught:
        client(server).chat.completions.create(model=retired.name, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "model_not_found"
    assert retired.replacement in caught.value.message


def test_unknown_model(server):
    with pytest.raises(openai.NotFoundError) as caught:
        client(server).chat.completions.create(model="gpt-imaginary", messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "model_not_found" and caught.value.type == "invalid_request_error"
    assert "gpt-imaginary" in caught.value.message


def test_dated_snapshot_of_a_known_model_is_accepted(server):
    snapshot = f"{MODEL}-2026-03-17"
    response = client(server).chat.completions.create(model=snapshot, messages=[{"role": "user", "content": "Hi"}])
    assert response.model == snapshot


def test_oversized_body_gets_413():
    with OfflineServer(warm_ocr=False, max_body_bytes=1024 * 1024) as small:
        body = {"model": MODEL, "messages": [user_message("Hi", data_url(b"\x89PNG" + b"\0" * (1024 * 1024)))]}
        response = post(small, body)
        assert response.status_code == 413
        assert error_of(response)["code"] == "request_too_large"
        with pytest.raises(openai.APIStatusError) as caught:
            client(small).post("/chat/completions", body=body, cast_to=openai.types.chat.ChatCompletion)
        assert caught.value.status_code == 413 and type(caught.value) is openai.APIStatusError
        assert post(small, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}).status_code == 200


def test_default_body_cap_answers_413_before_reading_the_body(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer offline\r\n"
                     b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n{" % (app.MAX_BODY_BYTES + 1))
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413")


def test_unreachable_image_url_fails_fast_without_retries(server):
    url = "http://no-such-host.invalid/cat.jpg"
    sdk = client(server, max_retries=2)
    started = time.perf_counter()
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=MODEL, messages=[user_message("Hi", url)])
    assert time.perf_counter() - started < fetch.DNS_TIMEOUT + 1.0
    err = caught.value
    assert err.code == "invalid_image_url" and url in err.message
    assert err.response.headers["x-should-retry"] == "false"


def test_image_download_timeout():
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1)                     # accepts connections, never answers
    origin = f"127.0.0.1:{listener.getsockname()[1]}"
    url = f"http://{origin}/slow.png"
    try:
        # A loopback image server is refused by the download policy unless trusted (tests only).
        with OfflineServer(warm_ocr=False, download_timeout=0.5, trusted_origins=[origin]) as local, \
                pytest.raises(openai.BadRequestError) as caught:
            client(local).chat.completions.create(model=MODEL, messages=[user_message("Hi", url)])
    finally:
        listener.close()
    assert caught.value.body["message"] == f"Timeout while downloading {url}."
    assert caught.value.code == "invalid_image_url"


def test_local_path_instead_of_url(server):
    body = {"model": MODEL, "messages": [user_message("Hi", "./images/cat.jpg")]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "invalid_value" and "data:" in err.message


def test_unsupported_content_part_type(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": [
        {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "wav"}}]}]}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.code == "unsupported_value"


def test_azure_only_arguments_are_rejected_on_the_openai_route(server):
    body = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}], "enhancements": {}}
    err = sdk_error(server, body, openai.BadRequestError)
    assert err.body["message"] == "Unrecognized request argument supplied: enhancements"


def test_unknown_route_and_wrong_method(server):
    response = requests.get(server.base_url + "/v1/nothing-here", timeout=10)
    assert response.status_code == 404 and error_of(response)["message"] == "Invalid URL (GET /v1/nothing-here)"
    response = requests.get(server.base_url + "/v1/chat/completions", timeout=10)
    assert response.status_code == 405
    assert error_of(response)["message"] == "Invalid method for URL (GET /v1/chat/completions)"


# --- /images/ --------------------------------------------------------------------------------------------------

def test_images_are_served_with_their_real_type_and_traversal_is_refused(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    photo = png_bytes(30, 20)
    (folder / "photo.png").write_bytes(photo)
    (folder / "really_png.jpg").write_bytes(photo)
    (folder / "notes.txt").write_text("hello", encoding="utf-8")
    (tmp_path / "secret.txt").write_text("do not serve", encoding="utf-8")
    with OfflineServer(images_dir=folder, warm_ocr=False) as local:
        response = requests.get(local.base_url + "/images/photo.png", timeout=10)
        assert response.status_code == 200 and response.content == photo
        assert response.headers["Content-Type"] == "image/png"
        assert requests.get(local.base_url + "/images/really_png.jpg", timeout=10).headers["Content-Type"] == \
            "image/png"
        assert requests.get(local.base_url + "/images/notes.txt", timeout=10).headers["Content-Type"] == \
            "text/plain; charset=utf-8"
        for path in ("/images/../secret.txt", "/images/%2e%2e/secret.txt", "/images/..%2fsecret.txt",
                     "/images/%2e%2e%2fsecret.txt", "/images/" + str(tmp_path / "secret.txt"),
                     "/images/missing.png", "/images/"):
            conn = http.client.HTTPConnection("127.0.0.1", local.port, timeout=10)
            conn.request("GET", path)                # http.client sends the path exactly as written
            reply = conn.getresponse()
            body = reply.read()
            conn.close()
            assert reply.status == 404, path
            assert b"do not serve" not in body

        # Its own /images/ URLs are read from disk, so the URL lesson works offline.
        sdk = openai.OpenAI(base_url=local.base_url + "/v1", api_key=KEY, max_retries=0)
        answer = sdk.chat.completions.create(model=OTHER, messages=[
            user_message("What is it?", local.base_url + "/images/photo.png", detail="low")])
        assert answer.usage.prompt_tokens == tokens.image_tokens(30, 20, "low", OTHER) + sdk.chat.completions.create(
            model=OTHER, messages=[user_message("What is it?")]).usage.prompt_tokens
        with pytest.raises(openai.BadRequestError) as caught:
            sdk.chat.completions.create(model=OTHER, messages=[
                user_message("What is it?", local.base_url + "/images/../secret.txt")])
        assert caught.value.code == "invalid_image_url"


# --- fault injection -------------------------------------------------------------------------------------------

def test_fault_429_has_retry_after_and_rate_limit_body(server):
    response = post(server, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
                    headers={"x-offline-fault": "429"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "1"
    error = error_of(response)
    assert error["code"] == "rate_limit_exceeded" and MODEL in error["message"]
    with pytest.raises(openai.RateLimitError):
        client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                               extra_headers={"x-offline-fault": "429"})


def test_counted_429_lets_a_retrying_client_succeed_on_the_third_try(server):
    key = uuid.uuid4().hex
    sdk = client(server, max_retries=2)
    started = time.perf_counter()
    response = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"x-offline-fault": f"429;times=2;key={key};retry_after=0.1"})
    elapsed = time.perf_counter() - started
    assert response.parse().choices[0].message.content
    assert response.retries_taken == 2
    # Retry-After (0.1 s twice) was honoured: the SDK's own backoff would wait at least 0.375 + 0.75 s.
    assert elapsed < 1.0

    impatient = client(server, max_retries=1)
    with pytest.raises(openai.RateLimitError):
        impatient.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                          extra_headers={"x-offline-fault": f"429;times=2;key={key}-b"})


@pytest.mark.parametrize("status", [500, 503])
def test_fault_server_errors(server, status):
    with pytest.raises(openai.InternalServerError) as caught:
        client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                               extra_headers={"x-offline-fault": str(status)})
    assert caught.value.status_code == status and caught.value.type == "server_error"


def test_fault_timeout_trips_the_client_timeout_and_the_server_keeps_serving(server):
    sdk = client(server, timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(openai.APITimeoutError):
        sdk.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}],
                                    extra_headers={"x-offline-fault": "timeout;seconds=2"})
    assert time.perf_counter() - started < 1.5
    assert client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])


def test_counted_timeout_then_success_with_retries(server):
    sdk = client(server, timeout=0.3, max_retries=1)
    response = sdk.chat.completions.with_raw_response.create(
        model=MODEL, messages=[{"role": "user", "content": "Hi"}],
        extra_headers={"x-offline-fault": f"timeout;times=1;seconds=1;key={uuid.uuid4().hex}"})
    assert response.retries_taken == 1 and response.parse().choices[0].message.content


def test_fault_from_environment_variable(monkeypatch):
    monkeypatch.setenv("VISION_OFFLINE_FAULT", "503")
    with OfflineServer(warm_ocr=False) as local:
        with pytest.raises(openai.InternalServerError):
            client(local).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        monkeypatch.delenv("VISION_OFFLINE_FAULT")
        assert client(local).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])


def test_bad_fault_value_is_explained(server):
    response = post(server, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
                    headers={"x-offline-fault": "418"})
    assert response.status_code == 400 and error_of(response)["code"] == "invalid_fault"
    assert "429, 500, 503, timeout" in error_of(response)["message"]


def test_parse_fault_syntax():
    assert faults.parse_fault("timeout;seconds=2.5") == faults.FaultSpec("timeout", None, "timeout;seconds=2.5", 1.0, 2.5)
    for bad in ("", "429;times=x", "429;color=red", "503;times=-1"):
        with pytest.raises(ValueError):
            faults.parse_fault(bad)


# --- robustness ----------------------------------------------------------------------------------------------

def test_truncated_body_times_out_and_the_server_keeps_serving(server):
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer offline\r\n"
                     b"Content-Length: 1000\r\n\r\n{\"model\": ")
        started = time.perf_counter()
        reply = b""
        while chunk := sock.recv(65536):      # the server answers, then closes the connection
            reply += chunk
        assert time.perf_counter() - started < 3
    assert reply.startswith(b"HTTP/1.1 400") and b"incomplete_body" in reply
    assert client(server).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])


@pytest.mark.parametrize("raw", [b"\xff\xfe not utf-8", b'{"a": ' * 100_000, b'{"model": 1' + b"0" * 5000 + b"}",
                                 b"[]", b"null", b""])
def test_garbage_bodies_get_400_and_never_take_the_server_down(server, raw):
    assert post(server, None, raw=raw).status_code == 400
    assert post(server, {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}).status_code == 200


def test_chunked_request_body_is_read(server):
    body = json.dumps({"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}).encode()

    def pieces():
        yield body[:10]
        yield body[10:]

    response = requests.post(server.base_url + "/v1/chat/completions", data=pieces(), timeout=10,
                             headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["object"] == "chat.completion"


def test_client_disconnecting_mid_stream_leaves_the_server_answering(caplog):
    caplog.set_level(logging.DEBUG, logger="helpers.offline")
    with OfflineServer(warm_ocr=False, stream_delay=0.02) as slow:
        body = json.dumps({"model": MODEL, "stream": True,
                           "messages": [user_message("Describe it.", data_url(png_bytes(100, 100)))]}).encode()
        for _ in range(2):
            sock = socket.create_connection(("127.0.0.1", slow.port), timeout=5)
            sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer offline\r\n"
                         b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            sock.close()                       # reset the connection in the middle of the stream
        time.sleep(0.2)
        answer = client(slow).chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        assert answer.choices[0].finish_reason == "stop"
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_32_concurrent_requests_are_all_answered(server):
    image = data_url(png_bytes(320, 240, "green"))

    async def run():
        async with openai.AsyncOpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0,
                                      timeout=60) as sdk:
            calls = [sdk.chat.completions.create(model=MODEL, messages=[user_message(f"Question {i}?", image)])
                     for i in range(32)]
            return await asyncio.gather(*calls)

    results = asyncio.run(run())
    assert len(results) == 32 and len({r.id for r in results}) == 32
    assert all(r.choices[0].message.content for r in results)


def test_32_concurrent_raw_connections_with_threads(server):
    results: list[int] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        response = post(server, {"model": MODEL, "messages": [{"role": "user", "content": f"Hello {i}"}]})
        with lock:
            results.append(response.status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [200] * 32


def test_verbose_logs_never_contain_keys(caplog):
    caplog.set_level(logging.INFO, logger="helpers.offline")
    secret = "secret-value-" + uuid.uuid4().hex
    with OfflineServer(warm_ocr=False, verbose=True) as loud:
        response = requests.post(loud.base_url + "/v1/chat/completions?note=" + secret, timeout=10,
                                 headers={"Authorization": f"Bearer {secret}"},
                                 json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
        assert response.status_code == 200
    assert any("/v1/chat/completions" in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text


# --- starting and stopping -----------------------------------------------------------------------------------

def test_ensure_server_starts_once_and_is_thread_safe():
    urls: list[str] = []
    threads = [threading.Thread(target=lambda: urls.append(ensure_server())) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert len(set(urls)) == 1 and urls[0].startswith("http://127.0.0.1:")
    response = requests.post(urls[0] + "/v1/chat/completions", timeout=10, headers={"Authorization": "Bearer x"},
                             json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
    assert response.status_code == 200


def test_ensure_server_reuses_an_offline_backend_already_on_the_port(monkeypatch):
    import helpers.offline as offline

    monkeypatch.setattr(offline, "_SERVER", None)      # pretend this process has not started one yet
    monkeypatch.setattr(offline, "_URL", None)
    with OfflineServer(warm_ocr=False) as terminal_server:    # e.g. `python -m helpers.offline` in a terminal
        monkeypatch.setenv("VISION_OFFLINE_PORT", str(terminal_server.port))
        assert offline.ensure_server() == terminal_server.base_url
        assert offline._SERVER is None                  # nothing new was started


def test_ensure_server_explains_a_bad_or_busy_port(monkeypatch):
    import helpers.offline as offline
    from helpers.errors import ConfigurationError

    monkeypatch.setattr(offline, "_SERVER", None)
    monkeypatch.setattr(offline, "_URL", None)
    monkeypatch.setenv("VISION_OFFLINE_PORT", "eighty")
    with pytest.raises(ConfigurationError, match="VISION_OFFLINE_PORT"):
        offline.ensure_server()
    with socket.socket() as other_program:
        other_program.bind(("127.0.0.1", 0))
        other_program.listen(1)
        stop = threading.Event()

        def refuse() -> None:
            other_program.settimeout(0.1)
            while not stop.is_set():
                with contextlib.suppress(OSError):
                    other_program.accept()[0].close()

        threading.Thread(target=refuse, daemon=True).start()
        monkeypatch.setenv("VISION_OFFLINE_PORT", str(other_program.getsockname()[1]))
        try:
            with pytest.raises(ConfigurationError, match="VISION_OFFLINE_PORT=0"):
                offline.ensure_server()
        finally:
            stop.set()


def test_stop_releases_the_port_and_held_connections():
    local = OfflineServer(warm_ocr=False, hold_seconds=30)
    local.start()
    port = local.port
    outcome: list[str] = []

    def held() -> None:
        try:
            post(local, {"model": MODEL, "messages": []}, headers={"x-offline-fault": "timeout"})
            outcome.append("answered")
        except requests.ConnectionError:
            outcome.append("closed")

    thread = threading.Thread(target=held)
    thread.start()
    time.sleep(0.3)
    started = time.perf_counter()
    local.stop()
    thread.join(5)
    assert time.perf_counter() - started < 3
    assert outcome == ["closed"] and not local.running
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind(("127.0.0.1", port))        # nobody listens there any more
        probe.listen(1)


def test_command_line_server_prints_its_url_and_stops_on_ctrl_c():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen([sys.executable, "-m", "helpers.offline", "--port", "0", "--no-warm"], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = process.stdout.readline()
        assert first.startswith("Offline vision backend at http://127.0.0.1:")
        url = first.split(" at ")[1].split()[0]
        assert "curl " + url in process.stdout.readline() + process.stdout.readline()
        response = requests.post(url + "/v1/chat/completions", timeout=10, headers={"Authorization": "Bearer x"},
                                 json={"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]})
        assert response.status_code == 200
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()


# --- issue 20: one door, settings passed in, each image read once, the hint said once ------------------------

def test_no_server_module_reads_the_environment():
    """The settings are read once, by whoever starts the server (helpers.config, or the command line), and
    passed in; the server's own modules never look at os.environ. Only the door (``ensure_server()`` without
    settings) and the CLI do."""
    import ast

    readers = []
    for path in sorted((REPO / "helpers" / "offline").glob("*.py")):
        if path.name in ("__init__.py", "__main__.py"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in ("environ", "getenv"):
                readers.append(f"{path.name}:{node.lineno}")
    assert not readers, readers


def test_settings_are_read_once_and_explained_when_wrong():
    settings = ServerSettings.from_environ({"VISION_OFFLINE_PORT": "8123", "VISION_OFFLINE_TIMEOUT_SECONDS": "2.5",
                                            "VISION_OFFLINE_CACHE": "OFF", "VISION_OFFLINE_DOWNLOADS": "no"})
    assert (settings.port, settings.hold_seconds, settings.analysis_cache) == (8123, 2.5, None)
    assert not settings.downloads_allowed()
    for name, value in (("VISION_OFFLINE_PORT", "eighty"), ("VISION_OFFLINE_PORT", "70000"),
                        ("VISION_OFFLINE_TIMEOUT_SECONDS", "soon")):
        with pytest.raises(ConfigurationError, match=name):
            ServerSettings.from_environ({name: value})


def test_a_server_takes_its_fault_from_its_settings_not_from_os_environ(monkeypatch):
    monkeypatch.setenv("VISION_OFFLINE_FAULT", "503")
    ask = {"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    with OfflineServer(warm_ocr=False, settings=ServerSettings(switches={})) as calm, \
            OfflineServer(warm_ocr=False, settings=ServerSettings(fault="429", switches={})) as busy:
        assert requests.post(calm.base_url + "/v1/chat/completions", json=ask, timeout=10,
                             headers={"Authorization": "Bearer x"}).status_code == 200
        assert requests.post(busy.base_url + "/v1/chat/completions", json=ask, timeout=10,
                             headers={"Authorization": "Bearer x"}).status_code == 429


def test_the_learners_model_global_does_not_change_the_servers_counts(server):
    """setup() records the learner's model (helpers.models.use_model); the server counts with the request's."""
    payload = {"model": MODEL, "messages": [user_message("Describe", data_url(png_bytes(900, 700)))]}
    before = post(server, payload).json()["usage"]
    try:
        models.use_model(OTHER, deployment=MODEL)
        after = post(server, payload).json()["usage"]
    finally:
        models.use_model(MODEL)
    assert after["prompt_tokens"] == before["prompt_tokens"]


def test_each_image_is_hashed_and_decoded_once_and_the_body_never(server, monkeypatch):
    """Before: one image question cost 4 SHA-256 passes (image twice, body twice), 4 sniffs and 2-3 decodes
    (the size check, the low-detail resize, OCR's loader, the comparison). Now each image is read, hashed and
    decoded once and the same pixels serve validation, analysis and comparison (benchmarks/request_path.py);
    the body is not hashed at all since ids are fresh per answer (issue 23)."""
    import hashlib

    from PIL import ImageFile

    first, second = text_png("Order shipped Tuesday"), text_png("Order delayed Thursday")   # new to the caches
    body = json.dumps({"model": MODEL, "messages": [user_message(
        "What is the difference between these images?", data_url(first), data_url(second))]}).encode()
    counts: dict[str, int] = {}
    real_sha, real_load = hashlib.sha256, ImageFile.ImageFile.load

    def sha256(data=b"", *args, **kwargs):
        if isinstance(data, bytes) and len(data) > 1000:
            what = "image" if data in (first, second) else "body" if data.endswith(body) else "other"
            counts[what] = counts.get(what, 0) + 1
        return real_sha(data, *args, **kwargs)

    def load(self):
        if self.tile:
            counts["decode"] = counts.get("decode", 0) + 1
        return real_load(self)

    monkeypatch.setattr(hashlib, "sha256", sha256)
    monkeypatch.setattr(ImageFile.ImageFile, "load", load)
    answer = requests.post(server.base_url + "/v1/chat/completions", data=body, timeout=60,
                           headers={"Authorization": "Bearer x", "Content-Type": "application/json"})
    content = answer.json()["choices"][0]["message"]["content"]
    assert answer.status_code == 200 and "Thursday" in content        # compared, text included
    assert counts == {"image": 2, "decode": 2}


def test_the_hint_to_set_up_a_model_ends_only_the_first_answer():
    """Lessons printed the same footer ~30 times; now a server says it once, in its first answer (the same
    order of requests always gives the same answers, so stored notebook outputs stay stable)."""
    from helpers.offline.answers import HINT

    asks = [{"model": MODEL, "messages": [{"role": "user", "content": "Hi"}]},
            {"model": MODEL, "response_format": {"type": "json_object"},
             "messages": [{"role": "user", "content": "Reply in JSON"}]},
            {"model": MODEL, "messages": [user_message("Describe", data_url(png_bytes()))]}]
    runs = []
    for _ in range(2):
        with OfflineServer(warm_ocr=False) as fresh:
            runs.append([requests.post(fresh.base_url + "/v1/chat/completions", json=a, timeout=60,
                                       headers={"Authorization": "Bearer x"}).json()["choices"][0]["message"]
                         ["content"] for a in (asks[0], asks[1], asks[2], asks[0])])
    first, structured, image, again = runs[0]
    assert first.endswith("\n\n" + HINT)
    assert HINT not in structured and HINT not in image and HINT not in again
    assert again == first.removesuffix("\n\n" + HINT)
    assert runs[0] == runs[1]


def test_the_rest_of_the_course_reaches_the_server_through_its_door():
    """Issue 20: learners' modules import only ``helpers.offline`` itself (start, stop, URL), never its internals;
    only the teacher's class cost (a counting backend) looks inside. tests/test_layers.py counts the importers."""
    import ast

    inside = {}
    for path in sorted((REPO / "helpers").rglob("*.py")):
        if "offline" in path.relative_to(REPO / "helpers").parts:
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else \
                [a.name for a in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                if name.startswith("helpers.offline."):
                    inside.setdefault(path.stem, set()).add(name)
    assert set(inside) <= {"class_cost"}, inside
