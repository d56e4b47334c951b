"""Chat Completions requests: validated against the SDK's own parameter types, failing in OpenAI's words.

The shape of a request is the SDK's: ``openai.types.chat.completion_create_params`` (a TypedDict per message
role and per content part). :func:`check_value` walks those annotations and turns the first mismatch into the
API's error (``Invalid type for 'messages[0].content[1].text': expected a string, but got an integer instead.``,
``Missing required parameter: ...``, ``Invalid value: ...``) with the JSON path as ``param``. On top of the
types come the rules the service adds (ranges, images only in user messages, limits; ``response_format``, tools,
``stop`` and ``n`` in :mod:`helpers.offline.formats`) and the model check.

>>> req = parse_chat_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, Route("openai"))
>>> req.model, req.stream
('gpt-4o', False)
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, get_args

from openai.types.chat import ChatCompletionMessageParam, completion_create_params

from helpers import azure as _azure
from helpers import models, tokens
from helpers.errors import ConfigurationError
from helpers.offline.formats import OutputSpec, parse_output
from helpers.offline.schema import (
    ApiError,
    arms,
    check_fields,
    check_value,
    discriminator,
    fields,
    invalid_type,
    invalid_value,
    is_sequence,
    json_type,
    missing,
)

__all__ = ["ApiError", "ChatRequest", "ImagePart", "Route", "parse_chat_request", "parse_json_body"]

#: Images per request on the OpenAI route ("Up to 1500 individual image inputs per request", OpenAI "Images and
#: vision" guide, "Image input requirements", checked 2026-12-02; it was 500 in the 2024-2025 guide; FACTS section 5).
MAX_IMAGES_OPENAI = 1500
#: The offline backend reads these part types; others get a clear ``unsupported_value``.
READABLE_PARTS = ("text", "image_url", "refusal")

_BASE = completion_create_params.CompletionCreateParamsBase
_DEPRECATIONS_URL = "https://platform.openai.com/docs/deprecations"
_API_VERSION = re.compile(r"^(?:\d{4}-\d{2}-\d{2}(?:-preview)?|preview|latest|v1)$")
JSON_HELP = ("We could not parse the JSON body of your request. (HINT: This likely means you aren't using your "
             "HTTP library correctly. The OpenAI API expects a JSON payload, but what was sent was not valid JSON.)")


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
    output: OutputSpec = OutputSpec()   # response_format, a forced tool call, stop, n


# --- messages ------------------------------------------------------------------------------------------------

MESSAGE_TYPES: dict[str, type] = {get_args(dict((n, a) for n, a, _ in fields(arm))["role"])[0]: arm
                                  for arm in get_args(ChatCompletionMessageParam)}
ROLES = tuple(MESSAGE_TYPES)


def _image_part(part: dict[str, Any], i: int, j: int, role: str) -> ImagePart:
    param = f"messages[{i}].content[{j}]"
    if role != "user":
        raise ApiError(400, f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with role 'user', "
                            f"but this message with role '{role}' contains an image URL.",
                       param=f"messages[{i}]", code="invalid_value")
    if "image_url" not in part:
        raise missing(f"{param}.image_url")
    spec, detail = part["image_url"], "auto"
    if isinstance(spec, str):                       # the bare-string form {"image_url": "https://..."}
        url = spec
    elif isinstance(spec, dict):
        if "url" not in spec:
            raise missing(f"{param}.image_url.url")
        url = spec["url"]
        if not isinstance(url, str):
            raise invalid_type(f"{param}.image_url.url", "a string", url)
        detail = spec.get("detail") if spec.get("detail") is not None else "auto"
    else:
        raise invalid_type(f"{param}.image_url", "an object", spec)
    if detail not in tokens.DETAILS:                # the detail levels the token maths knows
        raise invalid_value(f"{param}.image_url.detail", detail, tokens.DETAILS)
    return ImagePart(i, j, url, detail)


def _check_parts(content: list[Any], i: int, role: str, annotation: Any) -> list[ImagePart]:
    if not content and role == "user":
        raise ApiError(400, f"Invalid 'messages[{i}].content': empty array. Expected an array with minimum length "
                            "1, but got an empty array instead.", param=f"messages[{i}].content", code="empty_array")
    sequence = next(arm for arm in arms(annotation) if is_sequence(arm))
    part_types = get_args(sequence)[0]
    allowed = discriminator(arms(part_types) or [part_types])
    table = allowed[1] if allowed else {}
    found = []
    for j, part in enumerate(content):
        param = f"messages[{i}].content[{j}]"
        if not isinstance(part, dict):
            raise invalid_type(param, "an object", part)
        kind = part.get("type")
        if kind is None:
            raise missing(f"{param}.type")
        if not isinstance(kind, str):
            raise invalid_type(f"{param}.type", "a string", kind)
        if kind == "image_url":
            found.append(_image_part(part, i, j, role))
        elif kind in table and kind in READABLE_PARTS:
            check_fields(part, table[kind], param)
        else:
            raise ApiError(400, f"The offline backend reads 'text' and 'image_url' content parts; it cannot read "
                                f"a '{kind}' part. Send it to a real model, or remove it.",
                           param=f"{param}.type", code="unsupported_value")
    return found


def check_messages(payload: dict[str, Any]) -> list[ImagePart]:
    """Validate ``messages`` like the API does; return the image parts in request order.

    >>> check_messages({"messages": [{"role": "user", "content": "Hi"}]})
    []
    """
    messages = payload.get("messages")
    if messages is None:
        raise missing("messages")
    if not isinstance(messages, list):
        raise invalid_type("messages", "an array of objects", messages)
    if not messages:
        raise ApiError(400, "Invalid 'messages': empty array. Expected an array with minimum length 1, but got an "
                            "empty array instead.", param="messages", code="empty_array")
    found: list[ImagePart] = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict):
            raise invalid_type(f"messages[{i}]", "an object", message)
        if "role" not in message:
            raise missing(f"messages[{i}].role")
        role = message["role"]
        if not isinstance(role, str) or role not in MESSAGE_TYPES:
            raise invalid_value(f"messages[{i}].role", role, ROLES)
        cls = MESSAGE_TYPES[role]
        check_fields(message, cls, f"messages[{i}]", skip=("role", "content"))
        content = message.get("content")
        annotation = dict((n, a) for n, a, _ in fields(cls))["content"]
        if content is None:
            if role == "assistant" and (message.get("tool_calls") or message.get("function_call")):
                continue
            raise missing(f"messages[{i}].content")
        if isinstance(content, list) and any(is_sequence(arm) for arm in arms(annotation)):
            found += _check_parts(content, i, role, annotation)
        else:
            check_value(content, annotation, f"messages[{i}].content")
    return found


# --- the rest of the body ----------------------------------------------------------------------------------

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
        raise ApiError(400, JSON_HELP) from None
    if not isinstance(payload, dict):
        raise ApiError(400, f"Invalid request body: expected a JSON object, but got {json_type(payload)} instead.",
                       code="invalid_type")
    return payload


def _at_least_one(payload: dict[str, Any], name: str) -> int | None:
    value = payload.get(name)
    if value is not None and value < 1:
        raise ApiError(400, f"Invalid '{name}': integer below minimum value. Expected a value >= 1, but got "
                            f"{value} instead.", param=name, code="integer_below_min_value")
    return value


def _check_options(payload: dict[str, Any]) -> tuple[int | None, bool, bool]:
    """``(token limit, stream, include_usage)`` after the typed checks and the service's own ranges."""
    check_fields(payload, _BASE, only=("max_tokens", "max_completion_tokens"))
    limits = [v for v in (_at_least_one(payload, "max_tokens"), _at_least_one(payload, "max_completion_tokens"))
              if v is not None]
    check_fields(payload, _BASE, only=("temperature",))
    temperature = payload.get("temperature")
    if temperature is not None and not 0 <= temperature <= 2:
        side, word, bound = ("below", "minimum", ">= 0") if temperature < 0 else ("above", "maximum", "<= 2")
        raise ApiError(400, f"Invalid 'temperature': decimal {side} {word} value. Expected a value {bound}, but got "
                            f"{temperature} instead.", param="temperature",
                       code=f"decimal_{side}_{'min' if side == 'below' else 'max'}_value")
    check_fields(payload, _BASE, only=("n",))
    _at_least_one(payload, "n")
    stream = payload.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise invalid_type("stream", "a boolean", stream)
    check_fields(payload, _BASE, only=("stream_options",))
    options = payload.get("stream_options")
    if options is not None and not stream:
        raise ApiError(400, "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
                       param="stream_options", code="invalid_value")
    checked = {"messages", "model", "max_tokens", "max_completion_tokens", "temperature", "n", "stream_options"}
    check_fields(payload, _BASE, only=[n for n, _, _ in fields(_BASE) if n in payload and n not in checked])
    return (min(limits) if limits else None), bool(stream), bool((options or {}).get("include_usage"))


def resolve_model(payload: dict[str, Any], route: Route) -> tuple[str, str]:
    """``(model for token maths, model echoed in the response)``, or a 404 for retired and unknown models.

    OpenAI route: the body's ``model`` must be a model the cost tables know (dated snapshots resolve).
    Azure route: the deployment name is the model when the tables know it, else ``models.DEFAULT_MODEL``
    (deployment names are free text on Azure); the response names that model.

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
    model = payload.get("model")
    if model is None:
        raise ApiError(400, "you must provide a model parameter")
    if not isinstance(model, str):
        raise invalid_type("model", "a string", model)
    retired = models.retired_model(model)
    if retired is not None:
        raise ApiError(404, f"The model `{model}` has been deprecated, learn more here: {_DEPRECATIONS_URL} "
                            f"(retired on {retired.retired_on}; use `{retired.replacement}` instead).",
                       code="model_not_found")
    if tokens.resolve_model(model) is None:
        raise ApiError(404, f"The model `{model}` does not exist or you do not have access to it.",
                       code="model_not_found")
    return model, model


def check_api_version(version: str | None) -> str:
    """Azure's answers for a missing (404, as Azure answers) or malformed ``api-version``."""
    if not version:
        raise ApiError(404, "Resource not found", type=None, code="404")
    if not _API_VERSION.match(version):
        raise ApiError(400, "API version not supported", type=None, param="api-version", code="BadRequest")
    return version


def _enhancement_flags(payload: dict[str, Any], route: Route, stream: bool) -> tuple[bool, bool]:
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
        raise invalid_type("enhancements", "an object", enhancements)
    flags = {}
    for key, value in enhancements.items():
        if key not in ("ocr", "grounding"):
            raise ApiError(400, f"The offline backend implements the 'ocr' and 'grounding' enhancements, not "
                                f"'{key}' (video enhancements needed an Azure AI Vision video index).",
                           param=f"enhancements.{key}", code="unsupported_value")
        enabled = value.get("enabled") if isinstance(value, dict) else value
        if not isinstance(enabled, bool):
            raise invalid_type(f"enhancements.{key}.enabled", "a boolean", enabled)
        flags[key] = enabled
    ocr, grounding = flags.get("ocr", False), flags.get("grounding", False)
    if (ocr or grounding) and not _has_vision_source(payload):
        raise ApiError(400, "Vision enhancements need a dataSources entry "
                            '{"type": "AzureComputerVision", "parameters": {"endpoint": ..., "key": ...}} naming '
                            "your Azure AI Vision resource (helpers.azure.build_enhanced_request builds one).",
                       param="dataSources", type=None, code="BadRequest")
    if (ocr or grounding) and stream:
        raise ApiError(400, "The offline backend returns enhancements only without stream=True.",
                       param="stream", code="unsupported_value")
    return ocr, grounding


def _has_vision_source(payload: dict[str, Any]) -> bool:
    sources = payload.get("dataSources", payload.get("data_sources"))
    for source in sources if isinstance(sources, list) else []:
        params = source.get("parameters") if isinstance(source, dict) else None
        if source.get("type") == "AzureComputerVision" and isinstance(params, dict) and all(
                isinstance(params.get(k), str) and params[k].strip() for k in ("endpoint", "key")):
            return True
    return False


def azure_max_images() -> int:
    """:func:`helpers.azure.azure_max_images`, a bad setting reported as the server's 500 error."""
    try:
        return _azure.azure_max_images()
    except ConfigurationError as err:
        raise ApiError(500, str(err), type="server_error", code="offline_setting") from None


def _check_detail_for_model(part: ImagePart, model: str) -> None:
    """``detail: "original"`` only where OpenAI's guide documents it (gpt-5.4, gpt-5.5, gpt-5.6; checked 2026-12-02).

    What the real service answers for ``original`` on other models is not documented: we ASSUME its generic
    invalid-value error, listing the levels that model takes (docs/FACTS.md, section 2).
    """
    takes = tokens.model_cost(model).details
    if part.detail not in takes:
        raise invalid_value(f"messages[{part.message_index}].content[{part.part_index}].image_url.detail",
                            part.detail, takes)


def parse_chat_request(payload: dict[str, Any], route: Route) -> ChatRequest:
    """Validate a chat completion body in the API's order; raise :class:`ApiError` on the first problem."""
    if route.api == "openai" and payload.get("model") is None:
        raise ApiError(400, "you must provide a model parameter")
    image_parts = check_messages(payload)
    max_tokens, stream, include_usage = _check_options(payload)
    ocr, grounding = _enhancement_flags(payload, route, stream)
    output = parse_output(payload)
    model, echo = resolve_model(payload, route)
    if payload.get("max_tokens") is not None and models.is_reasoning_model(model):
        # What the real service answers for o-series / gpt-5+ models (the 2023-2024 seeds used max_tokens).
        raise ApiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                            "Use 'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")
    for part in image_parts:
        _check_detail_for_model(part, model)
    limit = azure_max_images() if route.api == "azure" else MAX_IMAGES_OPENAI
    if len(image_parts) > limit:
        if route.api == "azure":
            raise ApiError(400, f"Too many images in request. Max is {limit}.", type=None, code="BadRequest")
        raise ApiError(400, f"Too many images in request: {len(image_parts)} were provided, the maximum is {limit}.",
                       param="messages", code="too_many_images")
    return ChatRequest(route=route, model=model, echo_model=echo, messages=payload["messages"],
                       image_parts=image_parts, max_tokens=max_tokens, stream=stream,
                       include_usage=include_usage, ocr=ocr, grounding=grounding, output=output)
