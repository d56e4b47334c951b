"""helpers.structured.extract: a pydantic model in, an instance out, offline and against a scripted provider."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from localhttp import FakeAPI, Reply  # tests/localhttp.py
from pydantic import BaseModel

from helpers import chat, client
from helpers.display import draw_boxes
from helpers.errors import BadRequestError, ServiceError, TruncatedAnswerWarning
from helpers.structured import extract, extraction, response_format

REPO = Path(__file__).resolve().parent.parent
LABEL = REPO / "images" / "product_label.png"
KEY = "sk-" + "test-" + "Zq9" * 12 + "k3y9"


class Line(BaseModel):
    text: str
    box: list[int]


class Label(BaseModel):
    text: str
    lines: list[Line]
    best_before: str | None


@pytest.fixture
def api(monkeypatch):
    fake = FakeAPI()
    monkeypatch.setenv("VISION_PROVIDER", "compatible")
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url + "/v1")
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    yield fake
    client.clear_clients()
    fake.close()


def test_offline_extract_fills_ocr_and_boxes(offline):
    label = extract(Label, LABEL)
    assert label.text.startswith("ALPINE OAT BAR") and label.best_before is None
    assert label.lines[0].text == "ALPINE OAT BAR" and len(label.lines[0].box) == 4
    sent = chat.last_request()
    assert sent["response_format"] == response_format(Label)
    assert sent["response_format"]["json_schema"]["strict"] is True
    figure = draw_boxes(LABEL, [line.box for line in label.lines[:3]], [line.text for line in label.lines[:3]])
    assert len(figure.axes[0].patches) == 3


def test_compatible_provider_gets_the_strict_schema(api):
    api.push(Reply(content=json.dumps({"text": "hi", "lines": [], "best_before": "2027-03-14"})))
    done = extraction(Label, LABEL)
    assert done.value == Label(text="hi", lines=[], best_before="2027-03-14") and done.mode == "json_schema"
    body = api.posts[0].body
    assert body["response_format"]["type"] == "json_schema" and body["messages"][0]["content"][1]["type"] == "image_url"


def test_falls_back_to_json_object_when_the_schema_is_refused(api):
    refused = {"error": {"message": "response_format json_schema is not supported", "type": "invalid_request_error",
                         "param": "response_format", "code": None}}
    api.push(Reply(status=400, body=refused), Reply(content='{"text": "x", "lines": [], "best_before": null}'))
    done = extraction(Label, LABEL)
    assert done.mode == "json_object" and done.value.text == "x"
    second = api.posts[1].body
    assert second["response_format"] == {"type": "json_object"}
    assert '"best_before"' in second["messages"][0]["content"][0]["text"]


def test_cut_or_invalid_answers_raise(api):
    api.push(Reply(content='{"text": "x", "li', finish_reason="length"))
    with pytest.raises(ServiceError, match="token limit"), pytest.warns(TruncatedAnswerWarning):
        extract(Label, LABEL)
    api.push(Reply(content='{"text": 3}'))
    with pytest.raises(ServiceError, match="does not match Label"):
        extract(Label, LABEL)
    with pytest.raises(BadRequestError, match="pydantic model"):
        extract({"type": "object"}, LABEL)
