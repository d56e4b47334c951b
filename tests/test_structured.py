"""Structured outputs and tool calls against the offline backend, through the official SDK (issue 11).

``response_format`` json_object / json_schema (strict and not), ``client.chat.completions.parse()`` with a
pydantic model, forced tool calls (``required`` and a named function), ``stop`` and ``n``. Every JSON answer is
checked against the schema that was sent with ``jsonschema``; what was filled is read from ``x-offline-fill``.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import openai
import pytest
from pydantic import BaseModel, Field

from helpers import models
from helpers.offline.answers import NOTICE_PREFIX
from helpers.offline.fill import Facts, fill

REPO = Path(__file__).resolve().parent.parent
MODEL = models.DEFAULT_MODEL


def image_url(name: str) -> str:
    data = (REPO / "images" / name).read_bytes()
    mime = "image/png" if name.endswith(".png") else "image/jpeg"
    return f"data:{mime};base64," + base64.b64encode(data).decode()


def ask(text: str, name: str = "product_label.png") -> list[dict]:
    return [{"role": "user", "content": [{"type": "text", "text": text},
                                         {"type": "image_url", "image_url": {"url": image_url(name)}}]}]


@pytest.fixture(scope="module")
def client(api):
    """The SDK pointed at this module's own offline server (tests/conftest.py)."""
    return api


class TextLine(BaseModel):
    text: str
    box: list[int] = Field(description="[x_min, y_min, x_max, y_max] in pixels, origin top-left")


class Label(BaseModel):
    product_name: str | None
    best_before: str | None
    text: str
    lines: list[TextLine]
    face_count: int
    colours: list[str]
    width: int
    height: int


def test_parse_with_a_pydantic_model_fills_what_was_measured(client):
    raw = client.chat.completions.with_raw_response.parse(model=MODEL, messages=ask("Extract the label."),
                                                          response_format=Label)
    label = raw.parse().choices[0].message.parsed
    truth = (REPO / "images" / "product_label.txt").read_text(encoding="utf-8")
    assert label.text.splitlines()[0] == truth.splitlines()[0] == "ALPINE OAT BAR"
    assert (label.width, label.height, label.face_count) == (1536, 1024, 0)
    assert label.lines[0].text == "ALPINE OAT BAR"
    x0, y0, x1, y1 = label.lines[0].box
    assert 0 <= x0 < x1 <= label.width and 0 <= y0 < y1 <= label.height
    assert label.product_name is None and label.best_before is None      # would need a model: left empty
    header = raw.headers["x-offline-fill"]
    assert "text(ocr)" in header and "lines(ocr)" in header and "width(size)" in header
    assert header.endswith("empty=product_name,best_before")


def test_strict_content_validates_against_the_schema_sent(client):
    schema = openai.lib._pydantic.to_strict_json_schema(Label)
    answer = client.chat.completions.create(model=MODEL, messages=ask("Extract"), response_format={
        "type": "json_schema", "json_schema": {"name": "label", "schema": schema, "strict": True}})
    jsonschema.validate(json.loads(answer.choices[0].message.content), schema)


@pytest.mark.parametrize("schema", [
    {"type": "object", "properties": {"total": {"type": "number"}, "currency": {"enum": ["EUR", "USD"]},
                                      "items": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                                      "kind": {"const": "receipt"}, "paid": {"type": "boolean"}},
     "required": ["total", "currency", "items", "kind", "paid"]},
    {"type": "object", "$defs": {"Face": {"type": "object", "properties": {"x": {"type": "integer"},
                                                                           "y": {"type": "integer"},
                                                                           "w": {"type": "integer"}}}},
     "properties": {"faces": {"type": "array", "items": {"$ref": "#/$defs/Face"}},
                    "images": {"type": "array", "items": {"type": "object", "properties": {
                        "width": {"type": "integer"}, "format": {"type": "string"}}}}}},
    {"type": "object", "properties": {"colors": {"type": "array", "items": {
        "type": "object", "properties": {"name": {"type": "string"}, "percent": {"type": "number"}},
        "required": ["name", "percent"]}}, "note": {"anyOf": [{"type": "string"}, {"type": "null"}]}}},
])
def test_non_strict_schemas_validate(client, schema):
    answer = client.chat.completions.create(model=MODEL, messages=ask("Describe", "astronaut.jpg"), response_format={
        "type": "json_schema", "json_schema": {"name": "anything", "schema": schema}})
    value = json.loads(answer.choices[0].message.content)
    jsonschema.validate(value, schema)
    if "faces" in value:
        assert len(value["faces"]) == 1 and value["faces"][0]["w"] > 50     # the astronaut's face
        assert value["images"] == [{"width": 512, "format": "jpeg"}]
    if "total" in value:
        assert value == {"total": 0, "currency": "EUR", "items": [""], "kind": "receipt", "paid": False}


def test_strict_mode_rules_fail_like_the_api(client):
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": loose, "strict": True}})
    assert "'additionalProperties' is required to be supplied and to be false" in err.value.message
    partial = {**loose, "additionalProperties": False, "properties": {"a": {"type": "string"}, "b": {}}}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), response_format={
            "type": "json_schema", "json_schema": {"name": "x", "schema": partial, "strict": True}})
    assert "Missing 'b'" in err.value.message


def test_json_object_needs_the_word_json_and_returns_the_analysis(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("Extract"), response_format={"type": "json_object"})
    assert err.value.param == "messages" and "must contain the word 'json'" in err.value.message
    answer = client.chat.completions.create(model=MODEL, messages=ask("Extract as JSON"),
                                            response_format={"type": "json_object"})
    value = json.loads(answer.choices[0].message.content)
    assert value["offline_notice"].startswith(NOTICE_PREFIX)
    assert value["images"][0]["text"].startswith("ALPINE OAT BAR") and value["images"][0]["faces"] == []


RECORD = {"type": "function", "function": {"name": "record_label", "description": "Store the label's data",
                                           "parameters": {"type": "object", "properties": {
                                               "text": {"type": "string"}, "price": {"type": ["number", "null"]}},
                                               "required": ["text", "price"], "additionalProperties": False},
                                           "strict": True}}
OTHER = {"type": "function", "function": {"name": "count_faces", "parameters": {
    "type": "object", "properties": {"face_count": {"type": "integer"}}, "required": ["face_count"]}}}


@pytest.mark.parametrize("choice, name, finish", [("required", "record_label", "tool_calls"),
                                                  ({"type": "function", "function": {"name": "count_faces"}},
                                                   "count_faces", "stop")])
def test_forced_tool_call_arguments_validate(client, choice, name, finish):
    answer = client.chat.completions.create(model=MODEL, messages=ask("Record this label"), tools=[RECORD, OTHER],
                                            tool_choice=choice)
    message = answer.choices[0]
    assert message.finish_reason == finish and message.message.content is None
    call = message.message.tool_calls[0]
    assert call.function.name == name and call.id.startswith("call_")
    tool = RECORD if name == "record_label" else OTHER
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, tool["function"]["parameters"])
    assert arguments == ({"text": arguments["text"], "price": None} if name == "record_label" else {"face_count": 0})


def test_tool_call_round_trip_and_stream(client):
    messages = ask("Record this label")
    first = client.chat.completions.create(model=MODEL, messages=messages, tools=[RECORD], tool_choice="required")
    call = first.choices[0].message.tool_calls[0]
    with client.chat.completions.stream(model=MODEL, messages=messages, tools=[RECORD],
                                        tool_choice="required") as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.tool_calls[0].function.arguments == call.function.arguments
    history = [*messages, first.choices[0].message.model_dump(exclude_none=True),
               {"role": "tool", "tool_call_id": call.id, "content": "stored"}]
    after = client.chat.completions.create(model=MODEL, messages=history, tools=[RECORD])   # auto: plain answer
    assert after.choices[0].message.tool_calls is None
    assert after.choices[0].message.content.startswith(NOTICE_PREFIX)


def test_tool_choice_errors(client):
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), tool_choice="required")
    assert err.value.param == "tool_choice"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), tools=[RECORD],
                                       tool_choice={"type": "function", "function": {"name": "nope"}})
    assert err.value.param == "tool_choice"


def test_stop_and_n(client):
    full = client.chat.completions.create(model=MODEL, messages=ask("Transcribe")).choices[0].message.content
    cut = client.chat.completions.create(model=MODEL, messages=ask("Transcribe"), stop=["OAT", "zzz"], n=3)
    assert [c.index for c in cut.choices] == [0, 1, 2]
    assert {c.message.content for c in cut.choices} == {full[:full.index("OAT")]}
    assert cut.choices[0].finish_reason == "stop"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), n=129)
    assert err.value.param == "n"
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), stop=["a", "b", "c", "d", "e"])
    assert err.value.param == "stop"


def test_plain_answers_carry_no_fill_header(client):
    raw = client.chat.completions.with_raw_response.create(model=MODEL, messages=ask("Transcribe"))
    assert "x-offline-fill" not in raw.headers


def test_fill_without_images_leaves_everything_empty():
    value, log = fill(openai.lib._pydantic.to_strict_json_schema(Label), Facts(()))
    assert value == {"product_name": None, "best_before": None, "text": "", "lines": [], "face_count": 0,
                     "colours": [], "width": 0, "height": 0}
    assert log.header() == ("filled=-; empty=product_name,best_before,text,lines,face_count,colours,width,height")


def test_deep_schemas_fill_and_endless_ones_are_a_400(client):
    deep: dict = {"type": "string"}
    for _ in range(40):
        deep = {"type": "object", "properties": {"a": deep}, "required": ["a"], "additionalProperties": False}
    answer = client.chat.completions.create(model=MODEL, messages=ask("x"), response_format={
        "type": "json_schema", "json_schema": {"name": "deep", "schema": deep, "strict": True}})
    jsonschema.validate(json.loads(answer.choices[0].message.content), deep)
    endless = {"type": "object", "$defs": {"N": {"type": "object", "properties": {"next": {"$ref": "#/$defs/N"}},
                                                 "required": ["next"]}},
               "properties": {"head": {"$ref": "#/$defs/N"}}, "required": ["head"]}
    with pytest.raises(openai.BadRequestError) as err:
        client.chat.completions.create(model=MODEL, messages=ask("x"), response_format={
            "type": "json_schema", "json_schema": {"name": "endless", "schema": endless}})
    assert err.value.code == "invalid_json_schema"
