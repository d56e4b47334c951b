"""The offline backend's HTTP server: routes, validation, OpenAI-shaped errors, streaming, fault injection.

A real HTTP/1.1 server (stdlib ``ThreadingHTTPServer``, one thread per connection, keep-alive) that speaks
the Chat Completions wire protocol, so unmodified ``OpenAI()``, ``AzureOpenAI()``, ``AsyncOpenAI()`` and raw
``requests.post(...)`` code runs against it with no key and no network.

>>> from helpers.offline.server import OfflineServer
>>> with OfflineServer() as server:                                      # doctest: +SKIP
...     print(server.base_url)
http://127.0.0.1:PORT

Routes
======
======  ===============================================================  ====================================
method  path                                                             auth
======  ===============================================================  ====================================
POST    ``/v1/chat/completions``                                         ``Authorization: Bearer <any key>``
POST    ``/openai/deployments/{deployment}/chat/completions?api-version=``  ``api-key: <any key>`` (or Bearer)
POST    ``/openai/deployments/{deployment}/extensions/chat/completions``    same (2023-12-01-preview spelling)
GET     ``/v1/models``, ``/v1/models/{model}``                           ``Authorization: Bearer <any key>``
GET     ``/images/{file}``                                               none (serves the repo's ``images/``)
======  ===============================================================  ====================================

Anything else is a JSON 404 (``Invalid URL (GET /path)``); a known path with the wrong method is a 405.

Answers
=======
The answer is ``helpers.offline.answers.compose(question, reports, image_bytes)`` where ``question`` is the
text of the LAST user message and ``reports`` are ``helpers.offline.analysis.analyze`` results for the images
of that message (a text-only turn gives ``reports=[]``). No language model runs offline; the answer says so.
Responses are deterministic: ``id`` is ``chatcmpl-`` + a hash of the route and the request body,
``system_fingerprint`` is ``"offline"``, ``model`` echoes the requested model (Azure: the model behind the
deployment, see :func:`resolve_model`). ``created`` is the real time.

Token accounting (``usage``)
============================
``prompt_tokens`` = for every message ``PER_MESSAGE_TOKENS`` (3) + tokens of its role + tokens of its text
parts + ``helpers.tokens.image_tokens(width, height, detail, model)`` for each image (its decoded size)
[+ ``PER_NAME_TOKENS`` + tokens of ``name``], plus ``REPLY_PRIMING_TOKENS`` (3) for the assistant reply.
The per-message constants are the ones of OpenAI's cookbook "How to count tokens with tiktoken"
(https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken, checked 2026-11-21); text tokens
are ``helpers.tokens.text_tokens`` (an offline estimate). ``completion_tokens`` = ``text_tokens(answer)``.
``max_tokens`` / ``max_completion_tokens`` cut the answer at a word boundary (a character boundary if one
word is already too long) so that it fits, and set ``finish_reason="length"``.

Errors (``{"error": {"message", "type", "param", "code"}}``)
==========================================================
=====================================================  ======  =====================  ==========================
condition                                              status  type                   code
=====================================================  ======  =====================  ==========================
body is not JSON (or NaN/Infinity, not UTF-8)          400     invalid_request_error  null
body is not a JSON object                              400     invalid_request_error  invalid_type
``model`` missing (OpenAI route)                       400     invalid_request_error  null
``messages`` missing / not an array / empty            400     invalid_request_error  missing_required_parameter
                                                                                      / invalid_type / empty_array
a message, role, content or part of the wrong type     400     invalid_request_error  invalid_type / invalid_value
                                                                                      / missing_required_parameter
an image in a system/developer/assistant message       400     invalid_request_error  invalid_value
``detail`` not low/high/auto                           400     invalid_request_error  invalid_value
``max_tokens`` / ``max_completion_tokens`` < 1         400     invalid_request_error  integer_below_min_value
``max_tokens`` sent to a reasoning model (gpt-5.4...)  400     invalid_request_error  unsupported_parameter
``temperature`` outside 0..2                           400     invalid_request_error  decimal_below/above_..._value
``n`` != 1 (the offline backend makes one choice)      400     invalid_request_error  unsupported_value
``stream_options`` without ``stream``                  400     invalid_request_error  invalid_value
``enhancements``/``dataSources`` on the OpenAI route   400     invalid_request_error  null ("Unrecognized request
                                                                                      argument supplied")
image URL neither ``data:`` nor http(s)                400     invalid_request_error  invalid_value
a data URL that is not valid base64                    400     invalid_request_error  invalid_image_url
image download fails / times out                       400     invalid_request_error  invalid_image_url
                                                                                      (+ ``x-should-retry: false``)
image not PNG/JPEG/WebP/GIF (sniffed from its bytes)   400     invalid_request_error  invalid_image_format
image bytes that do not decode (truncated, corrupt)    400     invalid_request_error  invalid_image
one image over 20 MB                                   400     invalid_request_error  image_too_large
over 50 MB of image bytes in one request               400     invalid_request_error  images_too_large
more than ``MAX_IMAGES_OPENAI`` images (OpenAI route)  400     invalid_request_error  too_many_images
more than 10 images (Azure route)                      400     null                   BadRequest ("Too many images
                                                                                      in request. Max is 10.")
Azure ``enhancements`` without an AzureComputerVision  400     null                   BadRequest
``dataSources`` entry
Azure ``enhancements`` other than ocr/grounding, or    400     invalid_request_error  unsupported_value
with ``stream``
no / empty credentials                                 401     invalid_request_error  null
no ``api-key`` (or Bearer token) on the Azure route    401     null                   "401"
retired model (``helpers.models.retired_model``)      404     invalid_request_error  model_not_found
unknown model (OpenAI route)                           404     invalid_request_error  model_not_found
Azure route without ``api-version``                    404     null                   "404" ("Resource not found",
                                                                                      as Azure answers)
Azure ``api-version`` of the wrong shape               400     null                   BadRequest
unknown route / wrong method                           404/405 invalid_request_error  null
body over ``MAX_BODY_BYTES`` (96 MiB)                  413     invalid_request_error  request_too_large
body shorter than its Content-Length (read timeout)    400     invalid_request_error  incomplete_body
=====================================================  ======  =====================  ==========================

Fault injection (reliability lessons and tests)
===============================================
Request header ``x-offline-fault`` or environment variable ``VISION_OFFLINE_FAULT`` (read on every request;
the header wins) with the syntax ``KIND[;times=N][;key=ID][;retry_after=SECONDS][;seconds=SECONDS]``:

* ``429``: rate limit, ``Retry-After`` (whole seconds) and ``retry-after-ms`` headers (default 1 s,
  ``retry_after=`` changes it), body code ``rate_limit_exceeded`` (Azure route: code ``"429"``).
* ``500`` / ``503``: ``server_error``.
* ``timeout``: no answer; the connection is held for ``seconds=`` (default ``VISION_OFFLINE_TIMEOUT_SECONDS``,
  30 s; at most 600 s), then closed, so the client's own timeout fires first.
* ``times=N``: only the first N requests carrying the same ``key`` fail; later ones are answered normally.
  Requests without ``key=`` share one counter per distinct fault value. ``429;times=2;key=lesson-1`` makes a
  client with ``max_retries=2`` succeed on its third attempt.

Faults apply to the chat completion routes only, after the credentials check.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import http.client
import io
import json
import logging
import math
import mimetypes
import os
import re
import socket
import threading
import time
import urllib.parse
import urllib.request
import warnings
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from PIL import Image

from helpers import azure as azure_shapes
from helpers import models, tokens, images
from helpers.errors import CourseError, ImageError, ImageTooLargeError
from helpers.offline import analysis, answers

log = logging.getLogger("helpers.offline")

REPO_ROOT = Path(__file__).resolve().parents[2]
#: The folder served at ``/images/`` (the course images and their transcripts).
IMAGES_DIR = REPO_ROOT / "images"

# --- limits and constants (each with its source) --------------------------------------------------------

#: Images and image bytes per request on the OpenAI route. OpenAI "Images and vision" guide, "Image input
#: requirements": "Up to 500 individual images per request", "Up to 50 MB image bytes per request", "Up to 20MB
#: per image" (https://developers.openai.com/api/docs/guides/images-vision, stored copy, checked 2026-11-21;
#: docs/FACTS.md section 5).
MAX_IMAGES_OPENAI = 500
MAX_IMAGE_BYTES_PER_REQUEST = 50 * 1024 * 1024
#: Images per request on the Azure route. Azure OpenAI "Use GPT-4 Turbo with Vision": "When uploading images,
#: there is a limit of 10 images per chat request." (https://learn.microsoft.com/azure/ai-services/openai/how-to/
#: gpt-with-vision, checked 2026-11-21). Azure's limit for current models is not documented where we could read
#: it (FACTS.md section 8), so the offline backend keeps 10 for every deployment.
MAX_IMAGES_AZURE = 10
#: Largest request body accepted (413 above): our own cap, not a documented API number. 96 MiB is above the
#: largest valid request (50 MB of images is ~67 MB of base64 plus JSON), so a learner who sends too much meets
#: the API's own 400 about image bytes first; it also bounds the memory one request can take.
MAX_BODY_BYTES = 96 * 1024 * 1024
#: Tokens every message adds besides its content, a ``name`` adds, and the assistant reply is primed with.
#: OpenAI cookbook "How to count tokens with tiktoken" (checked 2026-11-21).
PER_MESSAGE_TOKENS = 3
PER_NAME_TOKENS = 1
REPLY_PRIMING_TOKENS = 3

DEFAULT_READ_TIMEOUT = 10.0      # seconds to wait for each piece of a declared request body
DEFAULT_IDLE_TIMEOUT = 75.0      # seconds an idle keep-alive connection stays open
DEFAULT_DOWNLOAD_TIMEOUT = 5.0   # seconds per socket operation when fetching an http(s) image
DNS_TIMEOUT = 2.0                # seconds allowed for resolving an image URL's host name
DEFAULT_HOLD_SECONDS = 30.0      # the "timeout" fault holds the connection this long (VISION_OFFLINE_TIMEOUT_SECONDS)
MAX_HOLD_SECONDS = 600.0
DEFAULT_RETRY_AFTER = 1.0        # seconds, for the 429 fault
DRAIN_LIMIT_BYTES = 1024 * 1024 * 1024   # an oversized body is read and discarded up to this, then closed

ROLES = ("system", "assistant", "user", "function", "tool", "developer")
DETAILS = ("low", "high", "auto")
FAULT_KINDS = ("429", "500", "503", "timeout")
_AZURE_PATH = re.compile(r"^/openai/deployments/([^/]+)/(?:extensions/)?chat/completions/?$")
_API_VERSION = re.compile(r"^(?:\d{4}-\d{2}-\d{2}(?:-preview)?|preview|latest|v1)$")
_DEPRECATIONS_URL = "https://platform.openai.com/docs/deprecations"
_JSON_HELP = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
              "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid "
              "JSON.)")
_UNSUPPORTED_IMAGE = ("You uploaded an unsupported image. Please make sure your image is below 20 MB in size and "
                      "is of one the following formats: ['png', 'jpeg', 'gif', 'webp'].")
_INVALID_IMAGE = ("The image data you provided does not represent a valid image. Please check your input and try "
                  "again with one of the supported image formats: ['image/jpeg', 'image/png', 'image/gif', "
                  "'image/webp'].")
_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an Authorization header using "
           "Bearer auth (i.e. Authorization: Bearer YOUR_KEY). The offline backend accepts any non-empty key, "
           "e.g. Authorization: Bearer offline.")
_AZURE_NO_KEY = ("Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid "
                 "key for an active subscription and use a correct regional API endpoint for your resource.")


# --- errors the server answers with --------------------------------------------------------------------

class ApiError(Exception):
    """An error response: HTTP status + OpenAI-shaped body ``{"error": {message, type, param, code}}``.

    Internal to the server (clients see it as the SDK's ``openai.BadRequestError`` etc.).

    >>> ApiError(400, "Invalid value: 'medium'.", param="detail", code="invalid_value").body()["error"]["code"]
    'invalid_value'
    """

    def __init__(self, status: int, message: str, *, type: str | None = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None,
                 close: bool = False, drain: int = 0) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.type = type
        self.param = param
        self.code = code
        self.headers = dict(headers or {})
        self.close = close
        self.drain = drain

    def body(self) -> dict[str, Any]:
        """The JSON body the client receives."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def _json_type(value: Any) -> str:
    """How the API names a JSON value's type in its messages ("a string", "an integer"...)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(400, f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
                    param=param, code="invalid_type")


def _missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def _invalid_value(param: str, value: Any, allowed: tuple[str, ...]) -> ApiError:
    quoted = [f"'{a}'" for a in allowed]
    listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    return ApiError(400, f"Invalid value: {json.dumps(value)[:80]}. Supported values are: {listed}.",
                    param=param, code="invalid_value")


# --- request parsing and validation --------------------------------------------------------------------

@dataclass(frozen=True)
class Route:
    """Which API a request came in on: ``"openai"`` or ``"azure"`` (with its deployment and api-version)."""

    api: str
    deployment: str | None = None
    api_version: str | None = None


@dataclass(frozen=True)
class ImagePart:
    """One ``image_url`` content part: where it is in the request and what it asks for."""

    message_index: int
    part_index: int
    url: str
    detail: str

    @property
    def param(self) -> str:
        """The JSON path the API names in errors about this part."""
        return f"messages[{self.message_index}].content[{self.part_index}].image_url"


@dataclass(frozen=True)
class LoadedImage:
    """An image's bytes, sniffed MIME type and decoded size."""

    part: ImagePart
    data: bytes
    mime_type: str
    width: int
    height: int


@dataclass(frozen=True)
class ChatRequest:
    """A validated chat completion request."""

    route: Route
    model: str                 # the model whose token maths applies
    echo_model: str            # what the response's ``model`` says
    messages: list[dict[str, Any]]
    image_parts: list[ImagePart]
    max_tokens: int | None
    stream: bool
    include_usage: bool
    ocr: bool                  # Azure enhancements
    grounding: bool


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """Decode a request body as a JSON object, failing like the API (NaN and Infinity are not JSON).

    >>> parse_json_body(b'{"model": "gpt-4o"}')
    {'model': 'gpt-4o'}
    """
    def reject(constant: str) -> Any:
        raise ValueError(f"{constant} is not valid JSON")

    try:
        payload = json.loads(raw.decode("utf-8"), parse_constant=reject)
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ApiError(400, _JSON_HELP) from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"Invalid request body: expected a JSON object, but got {_json_type(payload)} instead.",
                       code="invalid_type")
    return payload


def _optional_int(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _invalid_type(name, "an integer", value)
    if value < 1:
        raise ApiError(400, f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got "
                            f"{value} instead.", param=name, code="integer_below_min_value")
    return value


def _check_sampling(payload: dict[str, Any]) -> None:
    temperature = payload.get("temperature")
    if temperature is not None:
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)):
            raise _invalid_type("temperature", "a decimal", temperature)
        if temperature < 0 or temperature > 2:
            side, word, bound = ("below", "minimum", ">= 0") if temperature < 0 else ("above", "maximum", "<= 2")
            raise ApiError(400, f"Invalid 'temperature': decimal {side} {word} value. Expected a value {bound}, "
                                f"but got {temperature} instead.", param="temperature",
                           code=f"decimal_{side}_{'min' if side == 'below' else 'max'}_value")
    n = payload.get("n")
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise _invalid_type("n", "an integer", n)
        if n != 1:
            raise ApiError(400, f"The offline backend returns exactly one choice per request, but n={n} was "
                                "requested. Omit n or use n=1 (a real model can return several).",
                           param="n", code="unsupported_value")


def _check_stream(payload: dict[str, Any]) -> tuple[bool, bool]:
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _invalid_type("stream", "a boolean", stream)
    options = payload.get("stream_options")
    include_usage = False
    if options is not None:
        if not isinstance(options, dict):
            raise _invalid_type("stream_options", "an object", options)
        if not stream:
            raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                           param="stream_options", code="invalid_value")
        value = options.get("include_usage")
        if value is not None and not isinstance(value, bool):
            raise _invalid_type("stream_options.include_usage", "a boolean", value)
        include_usage = bool(value)
    return bool(stream), include_usage


def _image_part(part: dict[str, Any], i: int, j: int, role: str) -> ImagePart:
    param = f"messages[{i}].content[{j}]"
    if role != "user":
        raise ApiError(400, f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', "
                            f"but this message with role '{role}' contains an image URL.",
                       param=f"messages[{i}]", code="invalid_value")
    if "image_url" not in part:
        raise _missing(f"{param}.image_url")
    spec = part["image_url"]
    detail: Any = "auto"
    if isinstance(spec, str):                       # the bare-string form {"image_url": "https://..."}
        url = spec
    elif isinstance(spec, dict):
        if "url" not in spec:
            raise _missing(f"{param}.image_url.url")
        url = spec["url"]
        if not isinstance(url, str):
            raise _invalid_type(f"{param}.image_url.url", "a string", url)
        detail = spec.get("detail") if spec.get("detail") is not None else "auto"
    else:
        raise _invalid_type(f"{param}.image_url", "an object", spec)
    if detail not in DETAILS:
        raise _invalid_value(f"{param}.image_url.detail", detail, DETAILS)
    return ImagePart(i, j, url, detail)


def _check_parts(content: list[Any], i: int, role: str) -> list[ImagePart]:
    if not content and role == "user":
        raise ApiError(400, f"Invalid 'messages[{i}].content': empty array. Expected an array with minimum length "
                            "1, but got an empty array instead.", param=f"messages[{i}].content", code="empty_array")
    found = []
    for j, part in enumerate(content):
        param = f"messages[{i}].content[{j}]"
        if not isinstance(part, dict):
            raise _invalid_type(param, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise _missing(f"{param}.type")
        if kind == "text":
            if not isinstance(part.get("text"), str):
                raise _invalid_type(f"{param}.text", "a string", part.get("text"))
        elif kind == "refusal" and role == "assistant":
            if not isinstance(part.get("refusal"), str):
                raise _invalid_type(f"{param}.refusal", "a string", part.get("refusal"))
        elif kind == "image_url":
            found.append(_image_part(part, i, j, role))
        elif isinstance(kind, str):
            raise ApiError(400, f"The offline backend reads 'text' and 'image_url' content parts; it cannot read "
                                f"a '{kind}' part. Send it to a real model, or remove it.",
                           param=f"{param}.type", code="unsupported_value")
        else:
            raise _invalid_type(f"{param}.type", "a string", kind)
    return found


def check_messages(payload: dict[str, Any]) -> list[ImagePart]:
    """Validate ``messages`` like the API does; return the image parts in request order.

    >>> check_messages({"messages": [{"role": "user", "content": "Hi"}]})
    []
    """
    if "messages" not in payload or payload["messages"] is None:
        raise _missing("messages")
    messages = payload["messages"]
    if not isinstance(messages, list):
        raise _invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                            "empty array instead.", param="messages", code="empty_array")
    found: list[ImagePart] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise _invalid_type(f"messages[{i}]", "an object", message)
        if "role" not in message:
            raise _missing(f"messages[{i}].role")
        role = message["role"]
        if role not in ROLES:
            raise _invalid_value(f"messages[{i}].role", role, ROLES)
        name = message.get("name")
        if name is not None and not isinstance(name, str):
            raise _invalid_type(f"messages[{i}].name", "a string", name)
        content = message.get("content")
        if content is None:
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                continue
            raise _missing(f"messages[{i}].content")
        if isinstance(content, list):
            found += _check_parts(content, i, role)
        elif not isinstance(content, str):
            raise _invalid_type(f"messages[{i}].content", "one of a string or array of objects", content)
    return found


def resolve_model(payload: dict[str, Any], route: Route) -> tuple[str, str]:
    """``(model for token maths, model echoed in the response)``, or a 404 for retired and unknown models.

    OpenAI route: the body's ``model`` must be a model the cost tables know (dated snapshots resolve).
    Azure route: the deployment name is the model when the tables know it, else ``models.DEFAULT_MODEL``
    (deployment names are free text on Azure); the response names that model, as Azure names the model
    behind a deployment.

    >>> resolve_model({"model": "gpt-4o-2024-08-06"}, Route("openai"))
    ('gpt-4o-2024-08-06', 'gpt-4o-2024-08-06')
    """
    if route.api == "azure":
        name = route.deployment or ""
        retired = models.retired_model(name)
        if retired is not None:
            raise ApiError(404, f"The deployment '{name}' runs the model {retired.name}, which was retired on "
                                f"{retired.retired_on}. Deploy {retired.replacement} and use that deployment "
                                "name instead.", code="model_not_found")
        model = name if tokens.resolve_model(name) is not None else models.DEFAULT_MODEL
        return model, model
    if "model" not in payload or payload["model"] is None:
        raise ApiError(400, "you must provide a model parameter")
    model = payload["model"]
    if not isinstance(model, str):
        raise _invalid_type("model", "a string", model)
    retired = models.retired_model(model)
    if retired is not None:
        raise ApiError(404, f"The model `{model}` has been deprecated, learn more here: {_DEPRECATIONS_URL} "
                            f"(retired on {retired.retired_on}; use `{retired.replacement}` instead).",
                       code="model_not_found")
    if tokens.resolve_model(model) is None:
        raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                       code="model_not_found")
    return model, model


def _enhancement_flags(payload: dict[str, Any], route: Route) -> tuple[bool, bool]:
    """``(ocr, grounding)`` from Azure's vision ``enhancements``; validates ``dataSources``."""
    if route.api != "azure":
        for name in ("enhancements", "dataSources", "data_sources"):
            if name in payload:
                raise ApiError(400, f"Unrecognized request argument supplied: {name}")
        return False, False
    enhancements = payload.get("enhancements")
    if enhancements is None:
        return False, False
    if not isinstance(enhancements, dict):
        raise _invalid_type("enhancements", "an object", enhancements)
    flags = {}
    for key, value in enhancements.items():
        if key not in ("ocr", "grounding"):
            raise ApiError(400, f"The offline backend implements the 'ocr' and 'grounding' enhancements, not "
                                f"'{key}' (video enhancements needed an Azure AI Vision video index).",
                           param=f"enhancements.{key}", code="unsupported_value")
        if not isinstance(value, dict) or not isinstance(value.get("enabled"), bool):
            raise _invalid_type(f"enhancements.{key}.enabled", "a boolean", (value or {}).get("enabled")
                                if isinstance(value, dict) else value)
        flags[key] = value["enabled"]
    ocr, grounding = flags.get("ocr", False), flags.get("grounding", False)
    if (ocr or grounding) and not _has_vision_source(payload):
        raise ApiError(400, "Vision enhancements need a dataSources entry "
                            '{"type": "AzureComputerVision", "parameters": {"endpoint": ..., "key": ...}} naming '
                            "your Azure AI Vision resource (helpers.azure.build_enhanced_request builds one).",
                       param="dataSources", type=None, code="BadRequest")
    if (ocr or grounding) and payload.get("stream"):
        raise ApiError(400, "The offline backend returns enhancements only without stream=True.",
                       param="stream", code="unsupported_value")
    return ocr, grounding


def _has_vision_source(payload: dict[str, Any]) -> bool:
    sources = payload.get("dataSources", payload.get("data_sources"))
    if not isinstance(sources, list):
        return False
    for source in sources:
        if isinstance(source, dict) and source.get("type") == "AzureComputerVision":
            params = source.get("parameters")
            if isinstance(params, dict) and all(isinstance(params.get(k), str) and params.get(k).strip()
                                                for k in ("endpoint", "key")):
                return True
    return False


def parse_chat_request(payload: dict[str, Any], route: Route) -> ChatRequest:
    """Validate a chat completion body in the API's order; raise :class:`ApiError` on the first problem.

    >>> req = parse_chat_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]},
    ...                          Route("openai"))
    >>> req.model, req.stream
    ('gpt-4o', False)
    """
    if route.api == "openai" and ("model" not in payload or payload["model"] is None):
        raise ApiError(400, "you must provide a model parameter")
    image_parts = check_messages(payload)
    max_tokens = _optional_int(payload, "max_tokens")
    max_completion = _optional_int(payload, "max_completion_tokens")
    limits = [v for v in (max_tokens, max_completion) if v is not None]
    _check_sampling(payload)
    stream, include_usage = _check_stream(payload)
    ocr, grounding = _enhancement_flags(payload, route)
    model, echo = resolve_model(payload, route)
    if max_tokens is not None and models.is_reasoning_model(model):
        # What the real service answers for o-series / gpt-5+ models (the 2023-2024 seeds used max_tokens).
        raise ApiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                            "Use 'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")
    limit = MAX_IMAGES_AZURE if route.api == "azure" else MAX_IMAGES_OPENAI
    if len(image_parts) > limit:
        if route.api == "azure":
            raise ApiError(400, f"Too many images in request. Max is {limit}.", type=None, code="BadRequest")
        raise ApiError(400, f"Too many images in request: {len(image_parts)} were provided, the maximum is {limit}.",
                       param="messages", code="too_many_images")
    return ChatRequest(route=route, model=model, echo_model=echo, messages=payload["messages"],
                       image_parts=image_parts, max_tokens=min(limits) if limits else None, stream=stream,
                       include_usage=include_usage, ocr=ocr, grounding=grounding)


# --- images: fetch, sniff, decode ----------------------------------------------------------------------

class _SizeCache:
    """Decoded sizes of recently seen images by SHA-256, so a repeated request does not decode again."""

    def __init__(self, capacity: int = 256) -> None:
        self._items: OrderedDict[str, tuple[int, int]] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def get(self, key: str) -> tuple[int, int] | None:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            return None

    def put(self, key: str, size: tuple[int, int]) -> None:
        with self._lock:
            self._items[key] = size
            self._items.move_to_end(key)
            while len(self._items) > self._capacity:
                self._items.popitem(last=False)


_SIZES = _SizeCache()


def decoded_size(data: bytes) -> tuple[int, int]:
    """Width and height of an image, after checking that its pixels really decode (first frame).

    Raises :class:`ApiError` (400 ``invalid_image``) for truncated or corrupt data.

    >>> import io; from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (40, 30)).save(buf, "PNG")
    >>> decoded_size(buf.getvalue())
    (40, 30)
    """
    key = hashlib.sha256(data).hexdigest()
    cached = _SIZES.get(key)
    if cached is not None:
        return cached
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                size = img.size
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(400, "The image has too many pixels to process safely. Downscale it (e.g. to 2048 px on "
                            "the long side) before sending it.", code="image_too_large") from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise ApiError(400, _INVALID_IMAGE, code="invalid_image") from None
    _SIZES.put(key, size)
    return size


def _resolve_host(host: str, port: int, timeout: float) -> None:
    """Resolve ``host`` in a daemon thread so a dead DNS server cannot stall the request (or interpreter exit)."""
    outcome: dict[str, BaseException | None] = {}

    def run() -> None:
        try:
            socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            outcome["error"] = None
        except BaseException as err:  # noqa: BLE001 - handed back to the caller below
            outcome["error"] = err

    worker = threading.Thread(target=run, name="offline-dns", daemon=True)
    worker.start()
    worker.join(timeout)
    if "error" not in outcome:
        raise TimeoutError(f"resolving {host} took longer than {timeout} s")
    if outcome["error"] is not None:
        raise outcome["error"]


def _json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON; escaped ASCII when the payload holds a lone surrogate (legal in a JSON request body, e.g.
    ``"\\ud800"``, and echoed back in error messages) that UTF-8 cannot encode."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


def _is_loopback(host: str | None) -> bool:
    """True for localhost and 127.0.0.0/8 or ::1: addresses on this machine, which are never "the internet"."""
    import ipaddress

    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def download_image(url: str, *, timeout: float = DEFAULT_DOWNLOAD_TIMEOUT,
                   limit: int = images.MAX_IMAGE_BYTES) -> bytes:
    """Fetch an http(s) image like the API does: short timeouts, at most ``limit`` + 1 bytes read.

    Fails fast offline (name resolution is bounded by ``DNS_TIMEOUT``). Raises :class:`ApiError` 400
    ``invalid_image_url`` with ``x-should-retry: false`` ("Timeout while downloading ..." or "Error while
    downloading ...", the API's messages).

    >>> download_image("http://no-such-host.invalid/cat.jpg")            # doctest: +SKIP
    Traceback (most recent call last):
    ApiError: Error while downloading http://no-such-host.invalid/cat.jpg.
    """
    no_retry = {"x-should-retry": "false"}
    parts = urllib.parse.urlsplit(url)
    try:
        if not parts.hostname:
            raise ValueError("no host name")
        _resolve_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80), DNS_TIMEOUT)
        request = urllib.request.Request(url, headers={"User-Agent": "vision-course-offline/1.0"})
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - http(s) checked by caller
            return response.read(limit + 1)
    except (OSError, ValueError, http.client.HTTPException) as err:
        # urllib wraps a connect timeout in URLError(reason=TimeoutError); a read timeout is raised as is.
        timed_out = isinstance(err, TimeoutError) or isinstance(getattr(err, "reason", None), TimeoutError)
        what = "Timeout" if timed_out else "Error"
        raise ApiError(400, f"{what} while downloading {url}.", param="url", code="invalid_image_url",
                       headers=no_retry) from None


# --- faults --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class FaultSpec:
    """A parsed ``x-offline-fault`` value (see the module docstring for the syntax).

    >>> parse_fault("429;times=2;key=lesson")
    FaultSpec(kind='429', times=2, key='lesson', retry_after=1.0, seconds=None)
    """

    kind: str
    times: int | None
    key: str
    retry_after: float
    seconds: float | None


def parse_fault(value: str) -> FaultSpec:
    """Parse ``KIND[;times=N][;key=ID][;retry_after=S][;seconds=S]``; ``ValueError`` explains a bad value."""
    fields = [f.strip() for f in value.split(";") if f.strip()]
    if not fields or fields[0].lower() not in FAULT_KINDS:
        raise ValueError(f"unknown fault {value!r}: start with one of {', '.join(FAULT_KINDS)}")
    kind = fields[0].lower()
    options: dict[str, str] = {}
    for item in fields[1:]:
        name, sep, setting = item.partition("=")
        if not sep or name.strip() not in ("times", "key", "retry_after", "seconds"):
            raise ValueError(f"unknown fault option {item!r}: use times=N, key=ID, retry_after=S or seconds=S")
        options[name.strip()] = setting.strip()
    try:
        times = int(options["times"]) if "times" in options else None
        retry_after = float(options.get("retry_after", DEFAULT_RETRY_AFTER))
        seconds = float(options["seconds"]) if "seconds" in options else None
    except ValueError:
        raise ValueError(f"fault options must be numbers in {value!r}") from None
    if (times is not None and times < 0) or not math.isfinite(retry_after) or retry_after < 0 or (
            seconds is not None and (not math.isfinite(seconds) or seconds < 0)):
        raise ValueError(f"fault options must be >= 0 in {value!r}")
    return FaultSpec(kind, times, options.get("key", value.strip()), retry_after, seconds)


class FaultBook:
    """Counts requests per fault key, so ``times=N`` fails exactly the first N of them (thread-safe)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._counts: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._capacity = capacity

    def should_fail(self, spec: FaultSpec) -> bool:
        """True when this request must fail."""
        if spec.times is None:
            return True
        with self._lock:
            count = self._counts.get(spec.key, 0) + 1
            self._counts[spec.key] = count
            self._counts.move_to_end(spec.key)
            while len(self._counts) > self._capacity:
                self._counts.popitem(last=False)
        return count <= spec.times


def fault_error(spec: FaultSpec, route: Route, model: str) -> ApiError:
    """The response a real service gives for a 429/500/503 (``timeout`` is handled by the connection)."""
    if spec.kind == "429":
        wait = spec.retry_after
        headers = {"Retry-After": str(math.ceil(wait)), "retry-after-ms": str(round(wait * 1000)),
                   "x-ratelimit-limit-requests": "3", "x-ratelimit-remaining-requests": "0",
                   "x-ratelimit-reset-requests": f"{wait:g}s"}
        if route.api == "azure":
            return ApiError(429, f"Requests to the ChatCompletions_Create Operation under Azure OpenAI API version "
                                 f"{route.api_version} have exceeded call rate limit of your current OpenAI S0 "
                                 f"pricing tier. Please retry after {math.ceil(wait)} seconds.",
                            type=None, code="429", headers=headers)
        return ApiError(429, f"Rate limit reached for {model} in organization org-offline on requests per min "
                             f"(RPM): Limit 3, Used 3, Requested 1. Please try again in {wait:g}s. Visit "
                             "https://platform.openai.com/account/rate-limits to learn more.",
                        type="requests", code="rate_limit_exceeded", headers=headers)
    if spec.kind == "500":
        return ApiError(500, "The server had an error while processing your request. Sorry about that!",
                        type="server_error")
    return ApiError(503, "The server is overloaded or not ready yet.", type="server_error")


# --- answers and usage ---------------------------------------------------------------------------------

def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def prompt_tokens(messages: list[dict[str, Any]], images_by_part: dict[tuple[int, int], LoadedImage],
                  model: str) -> int:
    """``usage.prompt_tokens`` of a request (see "Token accounting" in the module docstring).

    >>> prompt_tokens([{"role": "user", "content": "Hi"}], {}, "gpt-4o")
    8
    """
    total = REPLY_PRIMING_TOKENS
    for i, message in enumerate(messages):
        total += PER_MESSAGE_TOKENS + tokens.text_tokens(str(message["role"]))
        if isinstance(message.get("name"), str):
            total += PER_NAME_TOKENS + tokens.text_tokens(message["name"])
        content = message.get("content")
        if isinstance(content, str):
            total += tokens.text_tokens(content)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if part.get("type") == "text":
                    total += tokens.text_tokens(part["text"])
                elif part.get("type") == "refusal":
                    total += tokens.text_tokens(part["refusal"])
                elif part.get("type") == "image_url":
                    image = images_by_part[(i, j)]
                    total += tokens.image_tokens(image.width, image.height, image.part.detail, model)
        for key in ("tool_calls", "function_call"):
            if message.get(key):
                total += tokens.text_tokens(json.dumps(message[key], ensure_ascii=False))
    return total


def truncate_to_tokens(text: str, limit: int) -> tuple[str, bool]:
    """Cut ``text`` so that ``tokens.text_tokens`` of it is at most ``limit``: ``(text, was_cut)``.

    Cuts at the end of a word; if even the first word is too long, at a character.

    >>> truncate_to_tokens("one two three four", 2)
    ('one two', True)
    """
    if tokens.text_tokens(text) <= limit:
        return text, False
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    lo, hi, best = 0, len(ends) - 1, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if tokens.text_tokens(text[:ends[mid]]) <= limit:
            best, lo = ends[mid], mid + 1
        else:
            hi = mid - 1
    if best == 0:
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if tokens.text_tokens(text[:mid]) <= limit:
                lo = mid
            else:
                hi = mid - 1
        best = lo
    return text[:best].rstrip(), True


def stream_pieces(text: str) -> list[str]:
    """Split an answer into the content pieces of a stream (one word with its trailing space each).

    >>> stream_pieces("A cat.\\nDone")
    ['A ', 'cat.\\n', 'Done']
    """
    return re.findall(r"\s+|\S+\s*", text) if text else []


@dataclass(frozen=True)
class Completion:
    """The answer to one request, ready to be sent as JSON or as a stream."""

    id: str
    created: int
    model: str
    content: str
    finish_reason: str
    usage: dict[str, Any]
    azure: bool
    enhancements: dict[str, Any] | None

    def body(self) -> dict[str, Any]:
        """The ``chat.completion`` object."""
        choice: dict[str, Any] = {
            "index": 0,
            "message": {"role": "assistant", "content": self.content, "refusal": None, "annotations": []},
            "logprobs": None,
            "finish_reason": self.finish_reason,
        }
        if self.azure:
            choice["content_filter_results"] = azure_shapes.content_filter_results()
        if self.enhancements:
            choice["enhancements"] = self.enhancements
        body: dict[str, Any] = {"id": self.id, "object": "chat.completion", "created": self.created,
                                "model": self.model, "choices": [choice], "usage": self.usage,
                                "system_fingerprint": "offline"}
        if self.azure:
            body["prompt_filter_results"] = azure_shapes.prompt_filter_results()
        return body

    def chunks(self, include_usage: bool) -> Iterator[dict[str, Any]]:
        """The ``chat.completion.chunk`` objects of the stream (role, pieces, finish, optional usage)."""
        def chunk(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
            item: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                    "model": self.model, "system_fingerprint": "offline",
                                    "choices": [{"index": 0, "delta": delta, "logprobs": None,
                                                 "finish_reason": finish}]}
            if include_usage:
                item["usage"] = None
            return item

        yield chunk({"role": "assistant", "content": "", "refusal": None}, None)
        for piece in stream_pieces(self.content):
            yield chunk({"content": piece}, None)
        yield chunk({}, self.finish_reason)
        if include_usage:
            yield {"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                   "system_fingerprint": "offline", "choices": [], "usage": self.usage}


def usage_block(prompt: int, completion: int) -> dict[str, Any]:
    """The ``usage`` object, with the detail fields the API sends (all zero offline)."""
    return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                          "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}}


# --- the backend logic, independent of HTTP ------------------------------------------------------------

class ChatBackend:
    """Turns a validated request into a :class:`Completion`: fetches and decodes images, analyses the last
    user turn, composes the answer, counts tokens. Thread-safe; shared by all connections of one server.
    """

    def __init__(self, images_dir: Path, *, own_origins: set[tuple[str, int]] | None = None,
                 download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT) -> None:
        self.images_dir = images_dir
        self.own_origins = own_origins if own_origins is not None else set()
        self.download_timeout = download_timeout

    # images
    def fetch(self, part: ImagePart) -> bytes:
        """The bytes of an image part: a data URL, one of our own ``/images/`` URLs (read from disk) or a
        download."""
        url = part.url.strip()
        if url.startswith("data:"):
            try:
                _declared, data = images.decode_data_url(url)
            except (ImageError, ValueError) as err:
                if _is_base64_data_url(url):      # well-formed base64, but the bytes are not an image
                    raise ApiError(400, _UNSUPPORTED_IMAGE, param=part.param, code="invalid_image_format") from None
                problem = err.problem if isinstance(err, CourseError) else str(err)
                raise ApiError(400, f"Invalid image URL: '{part.param}.url'. The data URL could not be decoded "
                                    f"({problem}).", param=f"{part.param}.url", code="invalid_image_url") from None
            return data
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("http", "https"):
            raise ApiError(400, f"Invalid image URL: '{part.param}.url'. Expected a base64-encoded data URL with an "
                                "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a "
                                "value without the 'data:' prefix.", param=f"{part.param}.url", code="invalid_value")
        if (parts.hostname, parts.port) in self.own_origins and parts.path.startswith("/images/"):
            path = safe_image_path(self.images_dir, urllib.parse.unquote(parts.path[len("/images/"):]))
            if path is None:
                raise ApiError(400, f"Error while downloading {url}.", param="url", code="invalid_image_url",
                               headers={"x-should-retry": "false"})
            return path.read_bytes()
        if (os.environ.get("VISION_OFFLINE_DOWNLOADS", "on").strip().lower() in ("off", "0", "false", "no")
                and not _is_loopback(parts.hostname)):
            # The test session switches outside downloads off, so the hot-link lesson stores the same error on a
            # machine with internet as on one without (conftest.py).
            raise ApiError(400, f"Error while downloading {url}.", param="url", code="invalid_image_url",
                           headers={"x-should-retry": "false"})
        return download_image(url, timeout=self.download_timeout)

    def load_all(self, parts: list[ImagePart], route: Route) -> list[LoadedImage]:
        """Fetch every image, check the byte limits (cheap checks first), then sniff and decode each one."""
        fetched = []
        total = 0
        for part in parts:
            data = self.fetch(part)
            if len(data) > images.MAX_IMAGE_BYTES:
                raise ApiError(400, _UNSUPPORTED_IMAGE + f" (this one is over {images.MAX_IMAGE_BYTES // 2**20} "
                                    "MB)", param=part.param, code="image_too_large")
            total += len(data)
            if route.api == "openai" and total > MAX_IMAGE_BYTES_PER_REQUEST:
                raise ApiError(400, f"The images of this request add up to more than "
                                    f"{MAX_IMAGE_BYTES_PER_REQUEST // 2**20} MB; the API takes at most that much "
                                    "image data per request. Send fewer images, or smaller ones.",
                               param="messages", code="images_too_large")
            fetched.append((part, data))
        return [self.inspect(part, data) for part, data in fetched]

    @staticmethod
    def inspect(part: ImagePart, data: bytes) -> LoadedImage:
        """Sniff the real format (the bytes, not the declared MIME type) and decode one image."""
        mime = images.sniff_mime(data)
        if mime not in images.SUPPORTED_MIME:
            raise ApiError(400, _UNSUPPORTED_IMAGE, param=part.param, code="invalid_image_format")
        width, height = decoded_size(data)
        return LoadedImage(part, data, mime, width, height)

    # answer
    def complete(self, request: ChatRequest, raw_body: bytes) -> Completion:
        """Answer a validated request (deterministic apart from ``created``)."""
        loaded = self.load_all(request.image_parts, request.route)
        by_part = {(img.part.message_index, img.part.part_index): img for img in loaded}
        last_user = max((i for i, m in enumerate(request.messages) if m.get("role") == "user"), default=None)
        question = _text_of(request.messages[last_user].get("content")) if last_user is not None else ""
        turn_images = [img for img in loaded if img.part.message_index == last_user]
        reports = [self._analyze(img) for img in turn_images]
        text = answers.compose(question, reports, [img.data for img in turn_images])
        finish = "stop"
        if request.max_tokens is not None:
            text, cut = truncate_to_tokens(text, request.max_tokens)
            finish = "length" if cut else "stop"
        enhancements = None
        if request.ocr or request.grounding:
            enhancements = self._enhancements(request, text, reports)
        digest = hashlib.sha256(f"{request.route.api}|{request.route.deployment}|".encode() + raw_body).hexdigest()
        usage = usage_block(prompt_tokens(request.messages, by_part, request.model), tokens.text_tokens(text))
        return Completion(id="chatcmpl-" + digest[:29], created=int(time.time()), model=request.echo_model,
                          content=text, finish_reason=finish, usage=usage, azure=request.route.api == "azure",
                          enhancements=enhancements)

    @staticmethod
    def _analyze(image: LoadedImage) -> Any:
        try:
            return analysis.analyze(image.data)
        except ImageTooLargeError as err:
            raise ApiError(400, err.problem, param=image.part.param, code="image_too_large") from None
        except ImageError:
            raise ApiError(400, _INVALID_IMAGE, param=image.part.param, code="invalid_image") from None

    @staticmethod
    def _enhancements(request: ChatRequest, text: str, reports: list[Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        report = reports[0] if reports else None
        if request.grounding:
            result["grounding"] = (azure_shapes.grounding_from_report(text, report) if report is not None
                                   else {"lines": [{"text": text, "spans": []}], "status": "Success"})
        if request.ocr:
            result["ocr"] = (azure_shapes.ocr_from_report(report) if report is not None
                             else {"status": "Success", "metadata": None, "readResult": {"blocks": []}})
        return result


def _is_base64_data_url(url: str) -> bool:
    """True if ``url`` is ``data:...;base64,<non-empty valid base64>`` (whatever the bytes are)."""
    head, sep, payload = url.partition(",")
    if not sep or not head.lower().endswith(";base64"):
        return False
    try:
        return bool(base64.b64decode(re.sub(r"\s+", "", payload), validate=True))
    except (binascii.Error, ValueError):
        return False


def safe_image_path(images_dir: Path, name: str) -> Path | None:
    """The file ``name`` inside ``images_dir``, or None if it is missing or would escape the folder.

    >>> safe_image_path(IMAGES_DIR, "../helpers/errors.py") is None
    True
    """
    if not name or "\x00" in name or "\\" in name:
        return None
    root = images_dir.resolve()
    try:
        path = (root / name).resolve()
    except (OSError, RuntimeError, ValueError):
        return None
    if not path.is_relative_to(root) or path == root or not path.is_file():
        return None
    return path


def content_type_for(path: Path, data: bytes) -> str:
    """The Content-Type of a served file: sniffed for images (the bytes win over the name), else by name.

    >>> content_type_for(Path("notes.txt"), b"hello")
    'text/plain; charset=utf-8'
    """
    mime = images.sniff_mime(data)
    if mime:
        return mime
    guessed = mimetypes.guess_type(path.name)[0]
    if path.suffix.lower() in (".md", ".markdown"):
        guessed = "text/markdown"
    if guessed is None:
        return "application/octet-stream"
    return f"{guessed}; charset=utf-8" if guessed.startswith("text/") or guessed == "application/json" else guessed


# --- HTTP ----------------------------------------------------------------------------------------------

class _ClientGone(Exception):
    """The client closed the connection; nothing more to send."""


_GONE = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError)


class _Handler(BaseHTTPRequestHandler):
    """One connection. Routes, reads bodies with timeouts, writes JSON, streams SSE with chunked encoding."""

    protocol_version = "HTTP/1.1"
    server_version = "vision-offline/1.0"
    sys_version = ""
    disable_nagle_algorithm = True
    server: _HTTPServer

    def setup(self) -> None:
        self.timeout = self.server.idle_timeout
        super().setup()

    # quiet: never log headers (keys) or bodies
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        return

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def do_GET(self) -> None:  # noqa: N802 - stdlib naming
        self._dispatch()

    def do_POST(self) -> None:  # noqa: N802
        self._dispatch()

    def do_HEAD(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PUT(self) -> None:  # noqa: N802
        self._dispatch()

    def do_DELETE(self) -> None:  # noqa: N802
        self._dispatch()

    def do_PATCH(self) -> None:  # noqa: N802
        self._dispatch()

    def do_OPTIONS(self) -> None:  # noqa: N802
        self._dispatch()

    # plumbing
    def _dispatch(self) -> None:
        started = time.perf_counter()
        self._status = 0
        path = urllib.parse.urlsplit(self.path).path
        try:
            body = self._read_body()
            self._route(path, body)
        except ApiError as err:
            self._send_error(err)
        except (_ClientGone, *_GONE, TimeoutError):
            self.close_connection = True
        except Exception:  # a bug: answer 500 like the API, keep serving, say what broke
            log.exception("offline server: unexpected error on %s %s", self.command, path)
            self._send_error(ApiError(500, "The server had an error while processing your request. Sorry about "
                                           "that!", type="server_error", close=True))
        finally:
            if self.server.verbose:
                log.info("%s %s -> %s (%.0f ms)", self.command, path, self._status or "closed",
                         (time.perf_counter() - started) * 1000)

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            return self._read_chunked()
        declared = self.headers.get("Content-Length")
        if declared is None:
            return b""
        try:
            length = int(declared)
            if length < 0:
                raise ValueError
        except ValueError:
            raise ApiError(400, "Invalid Content-Length header.", code="invalid_request", close=True) from None
        if length > self.server.max_body_bytes:
            raise ApiError(413, f"Request body too large: {length} bytes; the offline backend accepts at most "
                                f"{self.server.max_body_bytes} bytes. Send fewer or smaller images (downscale "
                                "them, or use URLs).", code="request_too_large", close=True, drain=length)
        return self._read_exact(length)

    def _read_exact(self, length: int) -> bytes:
        self.connection.settimeout(self.server.read_timeout)
        try:
            data = self.rfile.read(length)
        except TimeoutError:
            data = None
        finally:
            self.connection.settimeout(self.server.idle_timeout)
        if data is None or len(data) < length:
            raise ApiError(400, f"The request body was incomplete: Content-Length says {length} bytes, but fewer "
                                "arrived before the connection stalled or closed.", code="incomplete_body",
                           close=True)
        return data

    def _read_chunked(self) -> bytes:
        pieces: list[bytes] = []
        total = 0
        while True:
            self.connection.settimeout(self.server.read_timeout)
            try:
                line = self.rfile.readline(1024)
                size = int(line.split(b";")[0].strip(), 16)
            except (ValueError, TimeoutError):
                raise ApiError(400, "Malformed chunked request body.", code="incomplete_body", close=True) from None
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                break
            total += size
            if total > self.server.max_body_bytes:
                raise ApiError(413, f"Request body too large; the offline backend accepts at most "
                                    f"{self.server.max_body_bytes} bytes.", code="request_too_large", close=True)
            pieces.append(self._read_exact(size))
            self.rfile.readline(8)
        self.connection.settimeout(self.server.idle_timeout)
        return b"".join(pieces)

    def _drain(self, length: int) -> None:
        remaining = min(length, DRAIN_LIMIT_BYTES)
        self.connection.settimeout(min(self.server.read_timeout, 2.0))
        try:
            while remaining > 0:
                chunk = self.rfile.read1(min(remaining, 1 << 20))
                if not chunk:
                    break
                remaining -= len(chunk)
        except (OSError, ValueError):
            pass

    def _write(self, data: bytes) -> None:
        if self.command == "HEAD":
            return
        try:
            self.wfile.write(data)
        except _GONE:
            raise _ClientGone() from None

    def _start(self, status: int, headers: dict[str, str], *, close: bool = False) -> None:
        self._status = status
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        try:
            self.end_headers()
        except _GONE:
            raise _ClientGone() from None

    def _send_bytes(self, status: int, data: bytes, content_type: str, *, headers: dict[str, str] | None = None,
                    close: bool = False) -> None:
        all_headers = {"Content-Type": content_type, "Content-Length": str(len(data)), **(headers or {})}
        self._start(status, all_headers, close=close)
        self._write(data)

    def _send_json(self, status: int, payload: dict[str, Any], *, headers: dict[str, str] | None = None,
                   close: bool = False) -> None:
        self._send_bytes(status, _json_bytes(payload), "application/json", headers=headers, close=close)

    def _send_error(self, err: ApiError) -> None:
        try:
            self._send_json(err.status, err.body(), headers=err.headers, close=err.close)
            if err.drain:
                self._drain(err.drain)
        except (_ClientGone, *_GONE, TimeoutError, OSError):
            self.close_connection = True
        except Exception:  # noqa: BLE001 - the error path itself must never leave the client hanging
            log.exception("offline server: could not send an error response")
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level errors found by the stdlib (bad request line, headers too large...): JSON, then close."""
        phrase = message or self.responses.get(code, ("Error",))[0]
        self._send_error(ApiError(code, f"{phrase}.", code=None, close=True))

    def _send_stream(self, completion: Completion, include_usage: bool) -> None:
        self._start(200, {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache",
                          "Transfer-Encoding": "chunked", "x-request-id": self._request_id})
        events = [b"data: " + _json_bytes(c) + b"\n\n" for c in completion.chunks(include_usage)]
        events.append(b"data: [DONE]\n\n")
        for data in events:
            self._write(b"%x\r\n%s\r\n" % (len(data), data))
            if self.server.stream_delay:
                self.server.stopping.wait(self.server.stream_delay)
        self._write(b"0\r\n\r\n")

    # routing
    def _route(self, path: str, body: bytes) -> None:
        azure = _AZURE_PATH.match(path)
        if path == "/v1/chat/completions":
            self._require_method("POST", path)
            self._chat(Route("openai"), body)
        elif azure:
            self._require_method("POST", path)
            query = urllib.parse.parse_qs(urllib.parse.urlsplit(self.path).query)
            version = (query.get("api-version") or [None])[0]
            if not version:
                raise ApiError(404, "Resource not found", type=None, code="404")
            if not _API_VERSION.match(version):
                raise ApiError(400, "API version not supported", type=None, param="api-version", code="BadRequest")
            self._chat(Route("azure", urllib.parse.unquote(azure.group(1)), version), body)
        elif path == "/v1/models" or path.startswith("/v1/models/"):
            self._require_method("GET", path)
            self._require_bearer()
            self._models(urllib.parse.unquote(path[len("/v1/models/"):]) if path != "/v1/models" else None)
        elif path.startswith("/images/"):
            self._require_method("GET", path)
            self._image(urllib.parse.unquote(path[len("/images/"):]))
        else:
            raise ApiError(404, f"Invalid URL ({self.command} {path})")

    def _require_method(self, method: str, path: str) -> None:
        allowed = {method, "HEAD"} if method == "GET" else {method}
        if self.command not in allowed:
            raise ApiError(405, f"Invalid method for URL ({self.command} {path})", headers={"Allow": method})

    def _require_bearer(self) -> None:
        scheme, _, key = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise ApiError(401, _NO_KEY)

    def _require_azure_key(self) -> None:
        if self.headers.get("api-key", "").strip():
            return
        scheme, _, token = self.headers.get("Authorization", "").strip().partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return                       # Microsoft Entra ID token
        raise ApiError(401, _AZURE_NO_KEY, type=None, code="401")

    @property
    def _request_id(self) -> str:
        return getattr(self, "_rid", "req_offline")

    def _chat(self, route: Route, body: bytes) -> None:
        if route.api == "azure":
            self._require_azure_key()
        else:
            self._require_bearer()
        self._rid = "req_" + hashlib.sha256(body).hexdigest()[:24]
        self._maybe_fault(route, body)
        request = parse_chat_request(parse_json_body(body), route)
        completion = self.server.backend.complete(request, body)
        if request.stream:
            self._send_stream(completion, request.include_usage)
        else:
            self._send_json(200, completion.body(), headers={"x-request-id": self._rid})

    def _maybe_fault(self, route: Route, body: bytes) -> None:
        value = self.headers.get("x-offline-fault") or self.server.fault or os.environ.get("VISION_OFFLINE_FAULT")
        if not value or not value.strip():
            return
        try:
            spec = parse_fault(value)
        except ValueError as err:
            raise ApiError(400, f"Bad x-offline-fault / VISION_OFFLINE_FAULT value: {err}. Syntax: "
                                "KIND[;times=N][;key=ID][;retry_after=S][;seconds=S] with KIND one of "
                                "429, 500, 503, timeout.", param="x-offline-fault", code="invalid_fault") from None
        if not self.server.faults.should_fail(spec):
            return
        if spec.kind == "timeout":
            hold = spec.seconds if spec.seconds is not None else self.server.hold_seconds
            self.server.stopping.wait(min(max(hold, 0.0), MAX_HOLD_SECONDS))
            raise _ClientGone()
        model = route.deployment or "the model"
        with contextlib.suppress(ValueError, AttributeError):     # only for the message; the body may be bad
            model = str(json.loads(body).get("model") or model) if route.api == "openai" else model
        raise fault_error(spec, route, model)

    def _models(self, name: str | None) -> None:
        usable = [m for m in tokens.known_models() if models.retired_model(m) is None]
        if name is None:
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "offline"} for m in usable]
            self._send_json(200, {"object": "list", "data": data})
            return
        if models.retired_model(name) is not None or tokens.resolve_model(name) is None:
            raise ApiError(404, f"The model '{name}' does not exist", param="model", code="model_not_found")
        self._send_json(200, {"id": name, "object": "model", "created": 0, "owned_by": "offline"})

    def _image(self, name: str) -> None:
        path = safe_image_path(self.server.images_dir, name)
        if path is None:
            raise ApiError(404, f"No file named {name!r} in the course images folder.", code="not_found")
        data = path.read_bytes()
        self._send_bytes(200, data, content_type_for(path, data), headers={"Cache-Control": "no-cache"})


class _HTTPServer(ThreadingHTTPServer):
    """ThreadingHTTPServer with the offline backend's state; connection errors are not printed."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    # Rebind at once after a restart (sockets in TIME_WAIT). Not on Windows, where SO_REUSEADDR would let two
    # servers share a port.
    allow_reuse_address = os.name != "nt"

    def __init__(self, address: tuple[str, int], *, backend: ChatBackend, images_dir: Path, read_timeout: float,
                 idle_timeout: float, max_body_bytes: int, fault: str | None, hold_seconds: float,
                 stream_delay: float, verbose: bool) -> None:
        host = address[0]
        if ":" in host:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)
        self.backend = backend
        self.images_dir = images_dir
        self.read_timeout = read_timeout
        self.idle_timeout = idle_timeout
        self.max_body_bytes = max_body_bytes
        self.fault = fault
        self.hold_seconds = hold_seconds
        self.stream_delay = stream_delay
        self.verbose = verbose
        self.faults = FaultBook()
        self.stopping = threading.Event()

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("offline server: connection error from %s", client_address, exc_info=True)


# --- the server object ---------------------------------------------------------------------------------

def _env_float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        from helpers.errors import ConfigurationError

        raise ConfigurationError(f"{name}={raw!r} is not a number of seconds.",
                                 fix=f"set {name} to e.g. {default:g}, or unset it.") from None
    return value


def _warm_up_image() -> bytes:
    """A small PNG with a word on it (what the warm-up analyses)."""
    from PIL import ImageDraw

    img = Image.new("RGB", (320, 240), "white")
    ImageDraw.Draw(img).text((20, 100), "warm up", fill="black")
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


class OfflineServer:
    """The offline backend on a background thread: ``start()`` returns ``http://HOST:PORT``, ``stop()`` ends it.

    ``port=0`` picks a free port. ``host`` is loopback unless you pass another address (then anyone who can
    reach it can use it). ``warm_ocr`` loads the OCR models in a background thread at start-up so the first real
    answer is fast. The other parameters exist for lessons and tests: ``read_timeout`` (seconds to wait for a
    body), ``max_body_bytes``, ``fault`` (a default fault spec, else ``VISION_OFFLINE_FAULT`` per request),
    ``hold_seconds`` (the ``timeout`` fault; default ``VISION_OFFLINE_TIMEOUT_SECONDS`` or 30),
    ``stream_delay`` (seconds between stream events, to watch streaming happen), ``images_dir``.

    >>> with OfflineServer(warm_ocr=False) as server:                   # doctest: +SKIP
    ...     server.base_url.startswith("http://127.0.0.1:")
    True

    Taught in notebooks/00_setup.ipynb; started for you by ``helpers.client``.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, images_dir: str | os.PathLike[str] | None = None,
                 warm_ocr: bool = True, read_timeout: float = DEFAULT_READ_TIMEOUT,
                 idle_timeout: float = DEFAULT_IDLE_TIMEOUT, max_body_bytes: int = MAX_BODY_BYTES,
                 fault: str | None = None, hold_seconds: float | None = None, stream_delay: float = 0.0,
                 download_timeout: float = DEFAULT_DOWNLOAD_TIMEOUT, verbose: bool = False) -> None:
        self.host = host
        self.requested_port = port
        self.images_dir = Path(images_dir) if images_dir is not None else IMAGES_DIR
        self.warm_ocr = warm_ocr
        self.warmed = threading.Event()
        self._options = dict(read_timeout=read_timeout, idle_timeout=idle_timeout, max_body_bytes=max_body_bytes,
                             fault=fault, stream_delay=stream_delay, verbose=verbose,
                             hold_seconds=hold_seconds if hold_seconds is not None
                             else _env_float("VISION_OFFLINE_TIMEOUT_SECONDS", DEFAULT_HOLD_SECONDS))
        self._download_timeout = download_timeout
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        """True between ``start()`` and ``stop()``."""
        return self._httpd is not None

    @property
    def port(self) -> int:
        """The port actually bound (useful with ``port=0``)."""
        if self._httpd is None:
            raise RuntimeError("the offline server is not running: call start() first")
        return int(self._httpd.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://HOST:PORT`` (the OpenAI routes are under ``/v1``)."""
        host = self.host if ":" not in self.host else f"[{self.host}]"
        if host in ("0.0.0.0", "[::]"):
            host = "127.0.0.1"
        return f"http://{host}:{self.port}"

    def start(self) -> str:
        """Bind, start serving on a daemon thread, start the OCR warm-up; return :attr:`base_url`."""
        with self._lock:
            if self._httpd is not None:
                return self.base_url
            backend = ChatBackend(self.images_dir, download_timeout=self._download_timeout)
            httpd = _HTTPServer((self.host, self.requested_port), backend=backend, images_dir=self.images_dir,
                                **self._options)  # type: ignore[arg-type]
            port = int(httpd.server_address[1])
            backend.own_origins.update({(h, port) for h in ("127.0.0.1", "localhost", "::1", self.host)})
            self._httpd = httpd
            self._thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.1},
                                            name=f"offline-server-{port}", daemon=True)
            self._thread.start()
        if self.warm_ocr:
            threading.Thread(target=self._warm, name="offline-ocr-warmup", daemon=True).start()
        else:
            self.warmed.set()
        return self.base_url

    def _warm(self) -> None:
        """Load the OCR models and run them once, then analyse one small image (face cascade, perceptual hash),
        so that the first real answer does not pay for loading them."""
        try:
            from helpers import ocr

            ocr.warm_up()
            analysis.analyze(_warm_up_image())
        except Exception:  # warm-up is an optimisation: a failure shows up (clearly) on the first real request
            log.debug("offline server: warm-up failed", exc_info=True)
        finally:
            self.warmed.set()

    def wait_warm(self, timeout: float | None = None) -> bool:
        """Wait until the OCR warm-up has finished; True if it has."""
        return self.warmed.wait(timeout)

    def stop(self) -> None:
        """Stop serving and close the socket (idempotent). Held connections are released at once.

        Waits (up to a minute) for a running OCR warm-up first: ONNX Runtime aborts the whole interpreter
        ("terminate called without an active exception") if it is still loading models in a daemon thread
        while Python shuts down, which is exactly what a short script would hit at exit.
        """
        with self._lock:
            httpd, thread = self._httpd, self._thread
            self._httpd = self._thread = None
        if httpd is None:
            return
        self.warmed.wait(timeout=60)
        httpd.stopping.set()
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> OfflineServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = self.base_url if self.running else "stopped"
        return f"OfflineServer({state})"
