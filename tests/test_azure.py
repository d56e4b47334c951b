"""Azure OpenAI shapes (helpers.azure) and the Azure route of the offline backend: the deployment URL, the
``api-key`` header, Azure's own errors, and the retired vision enhancements (OCR + grounding) computed from
the real image.
"""

from __future__ import annotations

import base64
import io
import json

import openai
import pytest
import requests
from PIL import Image, ImageDraw, ImageFont

from helpers import azure, models, tokens
from helpers.azure import MAX_IMAGES_AZURE, MAX_IMAGES_AZURE_HOWTO, azure_max_images
from helpers.offline import enhancements
from helpers.offline.analysis import ImageReport, OcrLine
from helpers.offline.server import OfflineServer

API_VERSION = "2024-02-15-preview"      # the version of the enhancements documentation (seed 003)
KEY = "offline"
#: A deployment named after a model the cost tables know and nobody has shut down today.
DEPLOYMENT = next(m for m in tokens.known_models() if models.retired_model(m) is None and m != models.DEFAULT_MODEL)

#: The enhanced response of Azure's documentation (seed 003), trimmed to the fields that matter here.
DOCUMENTED_RESPONSE = {
    "id": "chatcmpl-8UyuhLfzwTj34zpevT3tWlVIgCpPg", "object": "chat.completion", "created": 1702394683,
    "model": "gpt-4",
    "choices": [{
        "finish_reason": {"type": "stop", "stop": "<|fim_suffix|>"}, "index": 0,
        "message": {"role": "assistant", "content": "The image shows a close-up of an individual with dark hair "
                    "and what appears to be a short haircut. The person has visible ears and a bit of their neckline."},
        "enhancements": {"grounding": {"lines": [{
            "text": "The image shows a close-up of an individual with dark hair and what appears to be a short "
                    "haircut. The person has visible ears and a bit of their neckline.",
            "spans": [{"text": "the person", "length": 10, "offset": 99, "polygon": [
                {"x": 0.11950000375509262, "y": 0.4124999940395355}, {"x": 0.8034999370574951, "y": 0.4124999940395355},
                {"x": 0.8034999370574951, "y": 0.6434999704360962}, {"x": 0.11950000375509262, "y": 0.6434999704360962}]}],
        }], "status": "Success"}},
    }],
    "usage": {"prompt_tokens": 816, "completion_tokens": 49, "total_tokens": 865},
}


def png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


def sign_png(text: str = "EXIT 42") -> bytes:
    img = Image.new("RGB", (640, 240), "white")
    ImageDraw.Draw(img).text((40, 70), text, fill="black", font=ImageFont.load_default(size=80))
    return png(img)


def data_url(data: bytes) -> str:
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def report(lines=(), faces=(), width=200, height=100) -> ImageReport:
    return ImageReport(sha256="0" * 64, width=width, height=height, mime_type="image/png", orientation="landscape",
                       lines=tuple(lines), faces=tuple(faces), colours=(), phash="0" * 16)


@pytest.fixture(scope="module")
def server():
    server = OfflineServer(warm_ocr=False, read_timeout=0.5)
    server.start()
    yield server
    server.stop()


def azure_client(server: OfflineServer, **options) -> openai.AzureOpenAI:
    options.setdefault("api_version", API_VERSION)
    options.setdefault("max_retries", 0)
    if "azure_ad_token" not in options:
        options.setdefault("api_key", KEY)
    return openai.AzureOpenAI(azure_endpoint=server.base_url, **options)


# --- pure shape builders -------------------------------------------------------------------------------------

def test_build_enhanced_request_has_the_documented_shape():
    body = azure.build_enhanced_request("Describe this picture:", "https://example.com/a.jpg", max_tokens=100)
    assert body["enhancements"] == {"ocr": {"enabled": True}, "grounding": {"enabled": True}}
    assert body["dataSources"] == [{"type": "AzureComputerVision", "parameters": {
        "endpoint": "<your_computer_vision_endpoint>", "key": "<your_computer_vision_key>"}}]
    assert body["messages"][0] == {"role": "system", "content": "You are a helpful assistant."}
    assert body["messages"][1]["content"] == [{"type": "text", "text": "Describe this picture:"},
                                              {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]
    assert body["max_tokens"] == 100 and body["stream"] is False
    only_ocr = azure.build_enhanced_request("Read it", "https://example.com/a.jpg", grounding=False)
    assert only_ocr["enhancements"]["grounding"] == {"enabled": False}
    json.dumps(body)                     # plain JSON, ready for requests.post(json=...)


def test_chat_url_quotes_the_deployment():
    assert azure.chat_url("https://r.openai.azure.com/", "my vision", "2024-10-21") == \
        "https://r.openai.azure.com/openai/deployments/my%20vision/chat/completions?api-version=2024-10-21"


def test_parse_grounding_reads_the_documented_response():
    spans = azure.parse_grounding(DOCUMENTED_RESPONSE)
    assert len(spans) == 1
    text, polygon = spans[0]
    assert text == "the person"
    assert polygon[0] == pytest.approx((0.1195, 0.4125), abs=1e-4) and len(polygon) == 4
    content = DOCUMENTED_RESPONSE["choices"][0]["enhancements"]["grounding"]["lines"][0]["text"]
    assert content[99:109].lower() == "the person"
    assert azure.parse_grounding({"choices": [{"message": {"content": "no enhancements"}}]}) == []
    assert azure.parse_grounding({"choices": []}) == []


def test_grounding_from_report_ties_ocr_lines_and_faces_to_the_answer():
    lines = [OcrLine("EXIT", ((20.0, 10.0), (80.0, 10.0), (80.0, 30.0), (20.0, 30.0)), 0.99),
             OcrLine("Gate 7", ((20.0, 50.0), (100.0, 50.0), (100.0, 70.0), (20.0, 70.0)), 0.95),
             OcrLine("not quoted", ((0.0, 0.0), (10.0, 0.0), (10.0, 5.0), (0.0, 5.0)), 0.9)]
    answer = 'One face is visible. The sign says "exit", then "Gate 7".'
    grounding = enhancements.grounding_from_report(answer, report(lines, faces=[(100, 20, 50, 60)]))
    assert grounding["status"] == "Success"
    line = grounding["lines"][0]
    assert line["text"] == answer
    spans = line["spans"]
    assert [s["text"] for s in spans] == ["face", "exit", "Gate 7"]
    for span in spans:
        assert answer[span["offset"]:span["offset"] + span["length"]] == span["text"]
        assert all(0 <= p["x"] <= 1 and 0 <= p["y"] <= 1 for p in span["polygon"])
    assert spans[1]["polygon"] == [{"x": 0.1, "y": 0.1}, {"x": 0.4, "y": 0.1}, {"x": 0.4, "y": 0.3},
                                   {"x": 0.1, "y": 0.3}]
    assert spans[0]["polygon"][2] == {"x": 0.75, "y": 0.8}          # face (100, 20, 50, 60) in 200 x 100


def test_grounding_without_matches_has_no_spans():
    grounding = enhancements.grounding_from_report("Nothing to see.", report())
    assert grounding == {"lines": [{"text": "Nothing to see.", "spans": []}], "status": "Success"}


def test_ocr_from_report_uses_the_image_analysis_read_shape():
    lines = [OcrLine("EXIT", ((20.4, 10.0), (80.0, 10.0), (80.0, 30.6), (20.0, 30.0)), 0.99)]
    ocr = enhancements.ocr_from_report(report(lines, width=640, height=480))
    assert ocr["status"] == "Success" and ocr["metadata"] == {"width": 640, "height": 480}
    (block,) = ocr["readResult"]["blocks"]
    assert block["lines"] == [{"text": "EXIT", "boundingPolygon": [{"x": 20, "y": 10}, {"x": 80, "y": 10},
                                                                     {"x": 80, "y": 31}, {"x": 20, "y": 30}]}]
    assert enhancements.ocr_from_report(report())["readResult"]["blocks"] == []


def test_content_filter_shapes():
    assert set(enhancements.content_filter_results()) == {"hate", "self_harm", "sexual", "violence"}
    assert enhancements.prompt_filter_results()[0]["prompt_index"] == 0


def test_retirement_note_agrees_with_the_catalog():
    note = azure.ENHANCEMENTS_RETIREMENT
    assert note.retired_on == models.retired_model("gpt-4 vision-preview").retired_on == "2025-05-15"
    assert "learn.microsoft.com" in note.source and "checked 2026-11-21" in note.source


# --- the Azure route of the offline backend -------------------------------------------------------------------

def test_azure_sdk_counts_tokens_for_the_deployed_model(server):
    image = data_url(png(Image.new("RGB", (800, 600), "navy")))
    messages = [{"role": "user", "content": [{"type": "text", "text": "What colour?"},
                                             {"type": "image_url", "image_url": {"url": image, "detail": "high"}}]}]
    text_only = [{"role": "user", "content": [{"type": "text", "text": "What colour?"}]}]
    sdk = azure_client(server)
    for deployment, model in ((DEPLOYMENT, DEPLOYMENT), ("my-vision-deployment", models.DEFAULT_MODEL)):
        answer = sdk.chat.completions.create(model=deployment, messages=messages)
        base = sdk.chat.completions.create(model=deployment, messages=text_only)
        assert answer.model == model
        assert answer.usage.prompt_tokens - base.usage.prompt_tokens == tokens.image_tokens(800, 600, "high", model)
        assert answer.choices[0].content_filter_results["sexual"] == {"filtered": False, "severity": "safe"}


def test_azure_ad_bearer_token_is_accepted(server):
    sdk = azure_client(server, azure_ad_token="entra-token")
    assert sdk.chat.completions.create(model=DEPLOYMENT, messages=[{"role": "user", "content": "Hi"}]).choices


def test_azure_missing_key(server):
    url = azure.chat_url(server.base_url, DEPLOYMENT, API_VERSION)
    response = requests.post(url, json={"messages": [{"role": "user", "content": "Hi"}]}, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "401"
    with pytest.raises(openai.AuthenticationError) as caught:
        azure_client(server).chat.completions.create(model=DEPLOYMENT, messages=[{"role": "user", "content": "Hi"}],
                                                     extra_headers={"api-key": openai.omit})
    assert caught.value.code == "401"


def test_azure_missing_api_version_is_resource_not_found(server):
    url = server.base_url + "/openai/deployments/" + DEPLOYMENT + "/chat/completions"
    response = requests.post(url, json={"messages": [{"role": "user", "content": "Hi"}]}, timeout=10,
                             headers={"api-key": KEY})
    assert response.status_code == 404
    assert response.json()["error"]["message"] == "Resource not found"
    assert response.json()["error"]["code"] == "404"
    plain = openai.OpenAI(base_url=server.base_url + "/openai/deployments/" + DEPLOYMENT, api_key=KEY, max_retries=0,
                          default_headers={"api-key": KEY})
    with pytest.raises(openai.NotFoundError):
        plain.chat.completions.create(model=DEPLOYMENT, messages=[{"role": "user", "content": "Hi"}])


def test_azure_malformed_api_version(server):
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client(server, api_version="yesterday").chat.completions.create(
            model=DEPLOYMENT, messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "BadRequest" and "API version not supported" in caught.value.message


@pytest.mark.parametrize("setting, limit", [
    (None, 50),   # default: Azure's quotas page, "GPT-4o and GPT-4.1 max images per request": 50 (checked 2026-12-02)
    ("10", 10),   # the GPT-4 Turbo with Vision how-to: "a limit of 10 images per chat request" (checked 2026-12-02)
])
def test_azure_images_per_request_is_a_documented_setting(server, monkeypatch, setting, limit):
    if setting is None:
        monkeypatch.delenv("VISION_OFFLINE_AZURE_MAX_IMAGES", raising=False)
    else:
        monkeypatch.setenv("VISION_OFFLINE_AZURE_MAX_IMAGES", setting)
    assert azure_max_images() == limit and MAX_IMAGES_AZURE == 50 and MAX_IMAGES_AZURE_HOWTO == 10
    tiny = data_url(png(Image.new("RGB", (8, 8), "red")))
    parts = [{"type": "text", "text": "Compare"}] + [{"type": "image_url", "image_url": {"url": tiny}}] * (limit + 1)
    with pytest.raises(openai.BadRequestError) as caught:
        azure_client(server).chat.completions.create(model=DEPLOYMENT, messages=[{"role": "user", "content": parts}])
    assert caught.value.code == "BadRequest"
    assert caught.value.body["message"] == f"Too many images in request. Max is {limit}."
    at_limit = parts[:limit + 1]
    assert azure_client(server).chat.completions.create(model=DEPLOYMENT,
                                                        messages=[{"role": "user", "content": at_limit}])


def test_azure_deployment_of_a_retired_model(server):
    with pytest.raises(openai.NotFoundError) as caught:
        azure_client(server).chat.completions.create(model="vision-preview",
                                                     messages=[{"role": "user", "content": "Hi"}])
    assert caught.value.code == "model_not_found"
    assert models.retired_model("vision-preview").replacement in caught.value.message


def test_azure_rate_limit_fault(server):
    with pytest.raises(openai.RateLimitError) as caught:
        azure_client(server).chat.completions.create(model=DEPLOYMENT, messages=[{"role": "user", "content": "Hi"}],
                                                     extra_headers={"x-offline-fault": "429;retry_after=2"})
    assert caught.value.code == "429"
    assert caught.value.response.headers["Retry-After"] == "2"
    assert API_VERSION in caught.value.message


# --- enhancements on the Azure route ------------------------------------------------------------------------

def enhanced(server: OfflineServer, body: dict, deployment: str = DEPLOYMENT) -> openai.types.chat.ChatCompletion:
    extra = {k: body[k] for k in ("enhancements", "dataSources")}
    return azure_client(server).chat.completions.create(model=deployment, messages=body["messages"],
                                                        max_tokens=body["max_tokens"], extra_body=extra)


def test_enhancements_return_ocr_and_grounding_from_the_real_image(server):
    body = azure.build_enhanced_request("What does the sign say?", data_url(sign_png("EXIT 42")), max_tokens=400)
    response = enhanced(server, body)
    enhancements = response.choices[0].model_extra["enhancements"]
    assert enhancements["grounding"]["status"] == "Success"
    ocr = enhancements["ocr"]
    assert ocr["status"] == "Success" and ocr["metadata"] == {"width": 640, "height": 240}
    read = " ".join(line["text"] for block in ocr["readResult"]["blocks"] for line in block["lines"])
    assert "EXIT" in read.upper()
    for block in ocr["readResult"]["blocks"]:
        for line in block["lines"]:
            assert all(0 <= p["x"] <= 640 and 0 <= p["y"] <= 240 for p in line["boundingPolygon"])
    assert enhancements["grounding"]["lines"][0]["text"] == response.choices[0].message.content
    for text, polygon in azure.parse_grounding(response):
        assert text.lower() in response.choices[0].message.content.lower()
        assert len(polygon) == 4 and all(0 <= x <= 1 and 0 <= y <= 1 for x, y in polygon)


def test_enhanced_request_with_requests_like_the_old_notebooks(server):
    body = azure.build_enhanced_request("Describe this picture:", data_url(sign_png("HELLO")), ocr=False)
    response = requests.post(azure.chat_url(server.base_url, DEPLOYMENT, API_VERSION), json=body, timeout=30,
                             headers={"Content-Type": "application/json", "api-key": KEY})
    assert response.status_code == 200
    choice = response.json()["choices"][0]
    assert set(choice["enhancements"]) == {"grounding"}
    assert isinstance(azure.parse_grounding(response.json()), list)


def test_enhancements_need_a_vision_data_source(server):
    body = azure.build_enhanced_request("Describe", data_url(sign_png()))
    body["dataSources"] = []
    with pytest.raises(openai.BadRequestError) as caught:
        enhanced(server, body)
    assert caught.value.code == "BadRequest" and caught.value.param == "dataSources"


def test_video_enhancement_is_not_offered_offline(server):
    body = azure.build_enhanced_request("Describe", data_url(sign_png()))
    body["enhancements"] = {"video": {"enabled": True}}
    with pytest.raises(openai.BadRequestError) as caught:
        enhanced(server, body)
    assert caught.value.code == "unsupported_value"


def test_enhancements_are_azure_only(server):
    body = azure.build_enhanced_request("Describe", data_url(sign_png()))
    sdk = openai.OpenAI(base_url=server.base_url + "/v1", api_key=KEY, max_retries=0)
    with pytest.raises(openai.BadRequestError) as caught:
        sdk.chat.completions.create(model=DEPLOYMENT, messages=body["messages"],
                                    extra_body={"enhancements": body["enhancements"]})
    assert "Unrecognized request argument supplied: enhancements" in caught.value.message
