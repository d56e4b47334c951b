"""Requests the SDK sends and what the offline backend answers, validated against OpenAI's published OpenAPI schemas.

``tests/data/openai_openapi_subset.json`` is a copy of the parts of https://github.com/openai/openai-openapi
(``openapi.json``, commit and dates in its ``source`` field) that these messages use: every schema reachable from
its ``roots``. It is OpenAPI 3.1, whose schemas are JSON Schema 2020-12, so ``jsonschema`` reads them directly,
with two readings the spec needs:

- its unions are ``oneOf`` with overlapping arms (an input message such as ``{"role": "user", "content": [...]}``
  matches both ``EasyInputMessage`` and ``InputMessage``; code generators pick an arm by ``discriminator``), so
  ``oneOf`` is read as ``anyOf`` ("matches at least one arm");
- a stream chunk's ``usage`` is ``null`` before the last chunk when ``include_usage`` is set (API reference,
  ``stream_options.include_usage``: "All other chunks will also include a usage field, but with a null value"),
  which the schema does not allow, so a null ``usage`` is left out before validating;
- some schemas still use OpenAPI 3.0's ``nullable: true`` (a chunk's ``logprobs``, ``finish_reason``), which
  JSON Schema 2020-12 ignores, so ``type`` and ``enum`` accept ``null`` where ``nullable`` is true.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import openai
import pytest
import requests

from helpers import models
from helpers.offline.server import OfflineServer

REPO = Path(__file__).resolve().parent.parent
SPEC = json.loads((REPO / "tests" / "data" / "openai_openapi_subset.json").read_text(encoding="utf-8"))
MODEL = models.DEFAULT_MODEL
LABEL = "data:image/png;base64," + base64.b64encode((REPO / "images" / "product_label.png").read_bytes()).decode()
SCHEMA = {"type": "object", "properties": {"text": {"type": "string"}, "price": {"type": ["number", "null"]}},
          "required": ["text", "price"], "additionalProperties": False}


_BASE = jsonschema.Draft202012Validator.VALIDATORS


def _nullable(keyword: str):
    def check(validator, value, instance, schema):
        if instance is None and schema.get("nullable") is True:
            return
        yield from _BASE[keyword](validator, value, instance, schema)
    return check


Validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, {
    "oneOf": _BASE["anyOf"], "type": _nullable("type"), "enum": _nullable("enum")})


def check(instance: object, name: str) -> None:
    """Validate ``instance`` against ``components.schemas[name]`` of the stored spec."""
    validator = Validator({"$ref": f"#/components/schemas/{name}", **SPEC})
    error = jsonschema.exceptions.best_match(validator.iter_errors(instance))
    assert error is None, f"{name}: {error.message[:300]} at {list(error.absolute_path)} ({error.validator})"


def test_the_copy_names_its_source():
    assert "openai/openai-openapi" in SPEC["source"] and "commit" in SPEC["source"]
    assert SPEC["openapi"].startswith("3.1") and set(SPEC["roots"]) <= set(SPEC["components"]["schemas"])


@pytest.fixture(scope="module")
def client():
    with OfflineServer(warm_ocr=False) as server:
        yield openai.OpenAI(base_url=server.base_url + "/v1", api_key="offline", max_retries=0, timeout=60)


IMAGE_TURN = [{"role": "user", "content": [{"type": "text", "text": "Extract the label as JSON."},
                                           {"type": "image_url", "image_url": {"url": LABEL, "detail": "low"}}]}]
TOOL = {"type": "function", "function": {"name": "save_label", "parameters": SCHEMA, "strict": True}}


@pytest.mark.parametrize("options", [
    {},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "label", "schema": SCHEMA, "strict": True}}},
    {"response_format": {"type": "json_object"}, "n": 2, "stop": ["\n\n"]},
    {"tools": [TOOL], "tool_choice": "required"},
    {"tools": [TOOL], "tool_choice": {"type": "function", "function": {"name": "save_label"}}},
], ids=["plain", "json_schema", "json_object-n2", "tool-required", "tool-named"])
def test_chat_completions_request_and_response(client, options):
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=IMAGE_TURN, **options)
    check(json.loads(raw.http_request.content), "CreateChatCompletionRequest")
    check(raw.http_response.json(), "CreateChatCompletionResponse")


def test_chat_completions_stream_chunks(client):
    url = str(client.base_url) + "chat/completions"
    for options in ({}, {"tools": [TOOL], "tool_choice": "required"}):
        body = {"model": MODEL, "messages": IMAGE_TURN, "stream": True, "stream_options": {"include_usage": True},
                **options}
        check(body, "CreateChatCompletionRequest")
        lines = requests.post(url, json=body, headers={"Authorization": "Bearer offline"}, timeout=60).text
        chunks = [json.loads(line[6:]) for line in lines.splitlines() if line.startswith("data: {")]
        assert chunks
        for chunk in chunks:
            check({k: v for k, v in chunk.items() if not (k == "usage" and v is None)},
                  "CreateChatCompletionStreamResponse")


RESPONSE_INPUT = [{"role": "user", "content": [{"type": "input_text", "text": "Extract the label."},
                                               {"type": "input_image", "image_url": LABEL, "detail": "low"}]}]


@pytest.mark.parametrize("options", [
    {"instructions": "Answer briefly.", "max_output_tokens": 20},
    {"text": {"format": {"type": "json_schema", "name": "label", "schema": SCHEMA, "strict": True}}},
    {"tools": [{"type": "function", "name": "save_label", "parameters": SCHEMA, "strict": True}],
     "tool_choice": "required"},
], ids=["text", "json_schema", "tool"])
def test_responses_request_and_response(client, options):
    raw = client.responses.with_raw_response.create(model=MODEL, input=RESPONSE_INPUT, **options)
    check(json.loads(raw.http_request.content), "CreateResponse")
    check(raw.http_response.json(), "Response")


def test_responses_stream_events(client):
    body = {"model": MODEL, "input": RESPONSE_INPUT, "stream": True}
    check(body, "CreateResponse")
    text = requests.post(str(client.base_url) + "responses", json=body, headers={"Authorization": "Bearer offline"},
                         timeout=60).text
    events = [json.loads(line[6:]) for line in text.splitlines() if line.startswith("data: ")]
    assert events[-1]["type"] == "response.completed"
    for event in events:
        check(event, "ResponseStreamEvent")
