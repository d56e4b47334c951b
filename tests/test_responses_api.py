"""``POST /v1/responses`` on the offline backend, through the official SDK (issue 11).

The same image question is asked on both APIs: the answer and the image-token count must agree, because the
Responses request is translated into the Chat Completions request it means (helpers.offline.responses).
"""

from __future__ import annotations

import base64
import json
from pathlib import Path

import jsonschema
import openai
import pytest
from pydantic import BaseModel

from helpers import models
from helpers.offline.answers import NOTICE_PREFIX

REPO = Path(__file__).resolve().parent.parent
MODEL = models.DEFAULT_MODEL
LABEL = "data:image/png;base64," + base64.b64encode((REPO / "images" / "product_label.png").read_bytes()).decode()


@pytest.fixture(scope="module")
def client(api):
    """The SDK pointed at this module's own offline server (tests/conftest.py)."""
    return api


def user(text: str, image: str = LABEL, detail: str = "low") -> list[dict]:
    return [{"role": "user", "content": [{"type": "input_text", "text": text},
                                         {"type": "input_image", "image_url": image, "detail": detail}]}]


def test_same_question_both_apis_same_answer_and_tokens(client):
    # A server's first answer ends with the set-up hint (once per learner); the two compared here come after it.
    client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
    response = client.responses.create(model=MODEL, instructions="Answer briefly.", input=user("Transcribe it."))
    chat = client.chat.completions.create(model=MODEL, messages=[
        {"role": "system", "content": "Answer briefly."},
        {"role": "user", "content": [{"type": "text", "text": "Transcribe it."},
                                     {"type": "image_url", "image_url": {"url": LABEL, "detail": "low"}}]}])
    assert response.output_text == chat.choices[0].message.content
    assert response.output_text.startswith(NOTICE_PREFIX) and "ALPINE OAT BAR" in response.output_text
    assert response.usage.input_tokens == chat.usage.prompt_tokens
    assert response.usage.output_tokens == chat.usage.completion_tokens
    assert response.status == "completed" and response.id.startswith("resp_")


def test_image_by_url_and_max_output_tokens(client, server):
    url = server.base_url + "/images/product_label.png"
    cut = client.responses.create(model=MODEL, input=user("Transcribe it.", url), max_output_tokens=16)
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    assert cut.usage.output_tokens <= 16
    with pytest.raises(openai.BadRequestError) as err:
        client.responses.create(model=MODEL, input="Hi", max_output_tokens=5)
    assert err.value.param == "max_output_tokens"


def test_previous_response_id_carries_the_conversation(client):
    first = client.responses.create(model=MODEL, input=user("Transcribe it."))
    second = client.responses.create(model=MODEL, previous_response_id=first.id, input="What is the lot number?")
    assert second.previous_response_id == first.id
    assert second.usage.input_tokens > first.usage.input_tokens + first.usage.output_tokens
    with pytest.raises(openai.NotFoundError):
        client.responses.create(model=MODEL, previous_response_id="resp_unknown", input="Hi")


class Label(BaseModel):
    text: str
    best_before: str | None


def test_text_format_json_schema_with_parse(client):
    parsed = client.responses.parse(model=MODEL, input=user("Extract the label.", detail="high"), text_format=Label)
    label = parsed.output_parsed
    assert label.text.startswith("ALPINE OAT BAR") and label.best_before is None


def test_stream_events_end_in_the_same_text(client):
    plain = client.responses.create(model=MODEL, input=user("Transcribe it."))
    with client.responses.stream(model=MODEL, input=user("Transcribe it.")) as stream:
        kinds = [event.type for event in stream]
        final = stream.get_final_response()
    assert kinds[:2] == ["response.created", "response.in_progress"] and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds and final.output_text == plain.output_text


def test_forced_function_call(client):
    tool = {"type": "function", "name": "save_label", "strict": True, "parameters": {
        "type": "object", "properties": {"text": {"type": "string"}, "price": {"type": ["number", "null"]}},
        "required": ["text", "price"], "additionalProperties": False}}
    response = client.responses.create(model=MODEL, input=user("Save it."), tools=[tool], tool_choice="required")
    [call] = [item for item in response.output if item.type == "function_call"]
    arguments = json.loads(call.arguments)
    jsonschema.validate(arguments, tool["parameters"])
    assert call.name == "save_label" and arguments["price"] is None and arguments["text"].startswith("ALPINE")
    after = client.responses.create(model=MODEL, previous_response_id=response.id, tools=[tool], input=[
        {"type": "function_call_output", "call_id": call.call_id, "output": "saved"}])
    assert after.output_text.startswith(NOTICE_PREFIX)


def test_file_upload_then_file_id(client):
    uploaded = client.files.create(file=("label.png", (REPO / "images" / "product_label.png").read_bytes()),
                                   purpose="vision")
    assert uploaded.purpose == "vision" and uploaded.bytes == (REPO / "images" / "product_label.png").stat().st_size
    assert client.files.retrieve(uploaded.id).filename == "label.png"
    by_id = client.responses.create(model=MODEL, input=[{"role": "user", "content": [
        {"type": "input_text", "text": "Transcribe it."}, {"type": "input_image", "file_id": uploaded.id,
                                                           "detail": "low"}]}])
    inline = client.responses.create(model=MODEL, input=user("Transcribe it."))
    assert by_id.output_text == inline.output_text and by_id.usage.input_tokens == inline.usage.input_tokens
    assert client.files.delete(uploaded.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(uploaded.id)
    with pytest.raises(openai.BadRequestError) as err:
        client.files.create(file=("x.png", b"x"), purpose="holiday")
    assert err.value.param == "purpose"


def test_azure_responses_route_takes_a_deployment(server):
    azure = openai.AzureOpenAI(azure_endpoint=server.base_url, api_key="offline", api_version="2025-04-01-preview",
                               max_retries=0)
    response = azure.responses.create(model="my-vision", input=user("Transcribe it."))
    assert response.model == models.DEFAULT_MODEL and "ALPINE OAT BAR" in response.output_text
