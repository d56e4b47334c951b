"""Azure OpenAI request and response shapes, including the retired "vision enhancements" (OCR, grounding).

Azure's GPT-4 Turbo with Vision *preview* could call Azure AI Vision for you: with ``enhancements`` and a
``dataSources`` entry in the request body, the answer came back with ``choices[0].enhancements``, where
``grounding.lines[].spans[]`` tie phrases of the answer to polygons on the image (0-1 coordinates). Source:
Azure OpenAI "Use GPT-4 Turbo with Vision", section "Use Vision enhancement with images"
(https://learn.microsoft.com/azure/ai-services/openai/how-to/gpt-with-vision, api-version 2024-02-15-preview,
checked 2026-11-21).

The feature is gone: see :data:`ENHANCEMENTS_RETIREMENT`. The course keeps these shapes so that the Azure lesson
can show what the old notebooks sent and received, and the offline backend answers such requests with OCR and
grounding computed from the real image (``helpers.offline``).

Every function here is pure (no network): build a body, parse a response. The offline backend builds the
response side (content filters, OCR and grounding from its analysis) in ``helpers.offline.enhancements``.

>>> body = build_enhanced_request("Describe this picture:", "https://example.com/cat.jpg")
>>> sorted(body["enhancements"])
['grounding', 'ocr']

Taught in notebooks/07_azure.ipynb.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from helpers.errors import ConfigurationError

#: The deployment route of Azure OpenAI's Chat Completions (the ``api-version`` query parameter is required).
CHAT_PATH = "/openai/deployments/{deployment}/chat/completions"

@dataclass(frozen=True)
class Retirement:
    """When a provider feature stopped working, what replaced it, and where that is stated."""

    feature: str
    retired_on: str
    replacement: str
    source: str
    note: str


#: Vision enhancements worked only with the ``gpt-4`` ``vision-preview`` model version ("Vision enhancements are
#: not supported by the GPT-4 Turbo GA model. They are only available with the preview models." - the how-to
#: above). Azure retired ``vision-preview`` on 2025-05-15 (moved from 2025-05-01 in April 2025; deployments were
#: upgraded to ``gpt-4o`` 2024-11-20 from 2025-04-17), and with it the enhancements.
ENHANCEMENTS_RETIREMENT = Retirement(
    feature="Azure OpenAI vision enhancements (OCR, object grounding, video prompts) of gpt-4 vision-preview",
    retired_on="2025-05-15",
    replacement=("gpt-4o (or gpt-4.1) reads text in images on its own; for boxes and word positions call "
                 "Azure AI Vision Image Analysis 4.0 'read' (or Document Intelligence) yourself"),
    source=("https://learn.microsoft.com/azure/ai-services/openai/concepts/model-retirements "
            "(gpt-4 vision-preview: retirement moved from May 1 to May 15, 2025 in April 2025; the 1106/0125 "
            "previews stayed on May 1; upgrade to gpt-4o 2024-11-20; checked 2026-11-21, date re-checked "
            "2026-12-02) and https://learn.microsoft.com/azure/ai-services/openai/how-to/gpt-with-vision "
            "(enhancements only with the preview models; checked 2026-11-21)"),
    note="A request with 'enhancements' to a current deployment fails; the offline backend still answers it.",
)


# --- requests ----------------------------------------------------------------------------------------------

def chat_url(endpoint: str, deployment: str, api_version: str) -> str:
    """The full Azure Chat Completions URL for a deployment (what ``AzureOpenAI`` calls for you).

    >>> chat_url("https://my-res.openai.azure.com/", "gpt-4o", "2024-10-21")
    'https://my-res.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21'
    """
    path = CHAT_PATH.format(deployment=quote(deployment, safe=""))
    return f"{endpoint.rstrip('/')}{path}?api-version={quote(api_version, safe='')}"


def build_enhanced_request(prompt: str, image_url: str, *, ocr: bool = True, grounding: bool = True,
                           vision_endpoint: str = "<your_computer_vision_endpoint>",
                           vision_key: str = "<your_computer_vision_key>", max_tokens: int = 100,
                           system_prompt: str = "You are a helpful assistant.") -> dict[str, Any]:
    """The request body of Azure's retired vision enhancements, as its documentation showed it.

    ``image_url`` is an http(s) URL or a ``data:`` URL. ``vision_endpoint``/``vision_key`` are those of an Azure
    AI Vision resource (placeholders by default: never put a real key in a notebook).

    >>> body = build_enhanced_request("Describe this picture:", "data:image/png;base64,iVBORw0KGgo=")
    >>> body["dataSources"][0]["type"], body["messages"][1]["content"][1]["type"]
    ('AzureComputerVision', 'image_url')

    Taught in notebooks/07_azure.ipynb.
    """
    return {
        "enhancements": {"ocr": {"enabled": bool(ocr)}, "grounding": {"enabled": bool(grounding)}},
        "dataSources": [{"type": "AzureComputerVision",
                         "parameters": {"endpoint": vision_endpoint, "key": vision_key}}],
        "messages": [
            {"role": "system", "content": system_prompt},
            {"role": "user", "content": [{"type": "text", "text": prompt},
                                         {"type": "image_url", "image_url": {"url": image_url}}]},
        ],
        "max_tokens": max_tokens,
        "stream": False,
    }


# --- responses ---------------------------------------------------------------------------------------------

def _as_dict(response: Any) -> Mapping[str, Any]:
    if isinstance(response, Mapping):
        return response
    for method in ("model_dump", "to_dict"):
        if hasattr(response, method):
            return getattr(response, method)()
    raise TypeError(f"expected a response dict or an SDK response object, got {type(response).__name__}.")


def parse_grounding(response_json: Any) -> list[tuple[str, list[tuple[float, float]]]]:
    """The grounded phrases of an enhanced response: ``[(span text, [(x, y), ...]), ...]`` in 0-1 coordinates.

    Accepts the JSON dict (``requests``) or the SDK's ``ChatCompletion`` (extra fields are kept by the SDK).
    A response without enhancements gives ``[]``.

    >>> sample = {"choices": [{"enhancements": {"grounding": {"lines": [{"text": "The person...", "spans": [
    ...     {"text": "the person", "length": 10, "offset": 99, "polygon": [{"x": 0.1, "y": 0.4},
    ...      {"x": 0.8, "y": 0.4}, {"x": 0.8, "y": 0.6}, {"x": 0.1, "y": 0.6}]}]}], "status": "Success"}}}]}
    >>> parse_grounding(sample)
    [('the person', [(0.1, 0.4), (0.8, 0.4), (0.8, 0.6), (0.1, 0.6)])]

    Taught in notebooks/07_azure.ipynb.
    """
    data = _as_dict(response_json)
    choices = data.get("choices") or []
    if not choices:
        return []
    enhancements = (choices[0] or {}).get("enhancements") or {}
    grounding = enhancements.get("grounding") or {}
    result = []
    for line in grounding.get("lines") or []:
        for span in line.get("spans") or []:
            polygon = [(float(p["x"]), float(p["y"])) for p in span.get("polygon") or []]
            result.append((str(span.get("text", "")), polygon))
    return result


#: Images per request on the Azure route. Microsoft's pages disagree: the quotas page says 50 for "GPT-4o and
#: GPT-4.1 max images per request" (learn.microsoft.com/azure/ai-foundry/openai/quotas-limits), the GPT-4 Turbo
#: with Vision how-to "a limit of 10 images per chat request" (both checked 2026-12-02; FACTS section 5). The
#: simulator's number is a setting: ``VISION_OFFLINE_AZURE_MAX_IMAGES`` (read per request, like the other
#: ``VISION_OFFLINE_*`` switches), default the quotas page's 50; set 10 to imitate the how-to.
MAX_IMAGES_AZURE = 50
MAX_IMAGES_AZURE_HOWTO = 10


def azure_max_images() -> int:
    """The Azure route's images-per-request limit: ``VISION_OFFLINE_AZURE_MAX_IMAGES``, else :data:`MAX_IMAGES_AZURE`.

    >>> azure_max_images() in (MAX_IMAGES_AZURE, int(os.environ.get("VISION_OFFLINE_AZURE_MAX_IMAGES") or 0))
    True
    """
    raw = os.environ.get("VISION_OFFLINE_AZURE_MAX_IMAGES", "").strip()
    if not raw:
        return MAX_IMAGES_AZURE
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigurationError(f"VISION_OFFLINE_AZURE_MAX_IMAGES={raw!r} is not a whole number >= 1 (the Azure "
                                 "route's images per request: 50 per Azure's quotas page, 10 per its how-to).",
                                 fix="set it to 50 (Azure's quotas page) or 10 (the how-to), or remove it.")
    return int(raw)
