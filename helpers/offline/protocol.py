"""Chat Completions requests: validated against the SDK's own parameter types, failing in OpenAI's words.

The shape of a request is the SDK's: ``openai.types.chat.completion_create_params`` (a TypedDict per message
role and per content part). :func:`check_value` walks those annotations and turns the first mismatch into the
API's error (``Invalid type for 'messages[0].content[1].text': expected a string, but got an integer instead.``,
``Missing required parameter: ...``, ``Invalid value: ...``) with the JSON path as ``param``. On top of the
types come the rules the service adds (ranges, images only in user messages, limits; ``response_format``, tools,
``stop`` and ``n``, below) and the model check. The module has three parts: the SDK's types walked, the shape of
an answer, the request.

>>> req = parse_chat_request({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}]}, Route("openai"))
>>> req.model, req.stream
('gpt-4o', False)

The SDK's request types, walked: a JSON value checked against an ``openai.types`` TypedDict annotation, and
the first mismatch turned into the API's error, with its wording and the JSON path as ``param``.

>>> from openai.types.chat import ChatCompletionStreamOptionsParam
>>> check_value({"include_usage": "yes"}, ChatCompletionStreamOptionsParam, "stream_options")
Traceback (most recent call last):
helpers.offline.protocol.ApiError: Invalid type for 'stream_options.include_usage': expected a boolean, but got a string instead.

What shape an answer must take: ``response_format``, ``tools`` / ``tool_choice``, ``stop`` and ``n``, checked
the way the API checks them (after the SDK types have been walked).

=====================================  =========================================================================
request                                offline answer
=====================================  =========================================================================
no ``response_format`` / ``text``      the usual Markdown answer (:mod:`helpers.offline.answers`)
``json_object``                        a JSON object of the local analysis (``messages`` must say "json")
``json_schema`` (strict or not)        JSON valid against the schema, filled by :mod:`helpers.offline.fill`
``tool_choice`` ``required`` / named   one call of the (first / named) function, arguments filled the same way
``tool_choice`` ``auto`` / ``none``    a plain answer (no language model decides to call a tool)
``stop`` (a string or up to 4)         the content is cut before the first stop sequence
``n`` (1-128)                          ``n`` choices; the backend is deterministic, so they are identical
=====================================  =========================================================================

>>> spec = parse_output({"messages": [{"role": "user", "content": "Reply in JSON"}],
...                      "response_format": {"type": "json_object"}})
>>> spec.kind, spec.n, spec.stop
('json_object', 1, ())
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from openai.types.chat import ChatCompletionMessageParam, completion_create_params
from typing_extensions import NotRequired, Required, is_typeddict

from helpers import azure as _azure
from helpers import models, tokens
from helpers.errors import ConfigurationError

# --- schema ----------------------------------------------------------------------------------------------

class ApiError(Exception):
    """An error response: HTTP status + OpenAI-shaped body ``{"error": {message, type, param, code}}``.

    >>> ApiError(400, "Invalid value: 'medium'.", param="detail", code="invalid_value").body()["error"]["code"]
    'invalid_value'
    """

    def __init__(self, status: int, message: str, *, type: str | None = "invalid_request_error",
                 param: str | None = None, code: str | None = None, headers: dict[str, str] | None = None,
                 close: bool = False) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.param, self.code = status, message, type, param, code
        self.headers = dict(headers or {})
        self.close = close

    def body(self) -> dict[str, Any]:
        """The JSON body the client receives."""
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def json_type(value: Any) -> str:
    """How the API names a JSON value's type in its messages ("a string", "an integer"...)."""
    if value is None:
        return "null"
    for kind, name in ((bool, "a boolean"), (int, "an integer"), (float, "a decimal"), (str, "a string"),
                       (list, "an array")):
        if isinstance(value, kind):
            return name
    return "an object"


def invalid_type(param: str, expected: str, value: Any) -> ApiError:
    return ApiError(400, f"Invalid type for '{param}': expected {expected}, but got {json_type(value)} instead.",
                    param=param, code="invalid_type")


def missing(param: str) -> ApiError:
    return ApiError(400, f"Missing required parameter: '{param}'.", param=param, code="missing_required_parameter")


def invalid_value(param: str, value: Any, allowed: Sequence[Any]) -> ApiError:
    quoted = [f"'{a}'" for a in allowed]
    listed = ", ".join(quoted[:-1]) + f", and {quoted[-1]}" if len(quoted) > 1 else quoted[0]
    return ApiError(400, f"Invalid value: {json.dumps(value)[:80]}. Supported values are: {listed}.",
                    param=param, code="invalid_value")


@functools.cache
def fields(cls: type) -> tuple[tuple[str, Any, bool], ...]:
    """``(name, annotation, required)`` of an SDK TypedDict, in declaration order."""
    hints = get_type_hints(cls, include_extras=True)
    result = []
    for name, hint in hints.items():
        required = get_origin(hint) is Required
        if get_origin(hint) in (Required, NotRequired):
            hint = get_args(hint)[0]
        result.append((name, hint, required))
    return tuple(result)


@functools.cache
def _table(cls: type) -> dict[str, tuple[Any, bool]]:
    return {name: (hint, required) for name, hint, required in fields(cls)}


def arms(annotation: Any) -> list[Any]:
    return [a for a in get_args(annotation) if a is not type(None)]


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, types.UnionType)


def is_sequence(annotation: Any) -> bool:
    return get_origin(annotation) in (list, Iterable, Sequence, typing.Iterable, typing.Sequence, list)


def _describe(annotation: Any) -> str:
    """The API's words for a type: "a string", "an array of objects", "one of a string or array of objects"."""
    if _is_union(annotation):
        words = list(dict.fromkeys(_describe(arm) for arm in arms(annotation)))
        rest = [re.sub(r"^an? ", "", w) for w in words[1:]]
        return words[0] if len(words) == 1 else "one of " + " or ".join([words[0], *rest])
    if get_origin(annotation) is Literal:
        return _describe(type(get_args(annotation)[0]))
    if is_sequence(annotation):
        inner = get_args(annotation)[0] if get_args(annotation) else Any
        return "an array of " + re.sub(r"^(?:an?|one of) ", "", _describe(inner)) + "s"
    names = {str: "a string", int: "an integer", float: "a decimal", bool: "a boolean"}
    return names.get(annotation, "an object")


def _matches(value: Any, annotation: Any) -> bool:
    """Whether ``value`` has the JSON kind of ``annotation`` (the arm of a union it belongs to)."""
    if get_origin(annotation) is Literal:
        return value in get_args(annotation)
    if is_sequence(annotation):
        return isinstance(value, list)
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if annotation is str:
        return isinstance(value, str)
    if is_typeddict(annotation) or get_origin(annotation) in (dict, Mapping, dict):
        return isinstance(value, dict)
    return True


def discriminator(options: list[Any]) -> tuple[str, dict[Any, Any]] | None:
    """For a union of TypedDicts told apart by one Literal field ("type", "role"): that field and its map."""
    for key in ("type", "role"):
        table: dict[Any, Any] = {}
        for arm in options:
            hint = dict((n, a) for n, a, _ in fields(arm)).get(key) if is_typeddict(arm) else None
            if hint is None or get_origin(hint) is not Literal:
                break
            table.update({value: arm for value in get_args(hint)})
        else:
            return key, table
    return None


def check_value(value: Any, annotation: Any, param: str) -> None:
    """Raise the API's :class:`ApiError` for the first place where ``value`` does not fit the SDK annotation."""
    if value is None and (annotation is type(None) or type(None) in get_args(annotation)):
        return
    if _is_union(annotation):
        options = arms(annotation)
        dicts = [a for a in options if is_typeddict(a)]
        if isinstance(value, dict) and len(dicts) > 1 and (found := discriminator(dicts)):
            key, table = found
            if key not in value:
                raise missing(f"{param}.{key}")
            if not isinstance(value[key], str) or value[key] not in table:
                raise invalid_value(f"{param}.{key}", value[key], list(table))
            return check_value(value, table[value[key]], param)
        for arm in options:
            if _matches(value, arm):
                return check_value(value, arm, param)
        raise invalid_type(param, _describe(annotation), value)
    if get_origin(annotation) is Literal:
        if value not in get_args(annotation):
            raise invalid_value(param, value, get_args(annotation))
    elif is_sequence(annotation):
        if not isinstance(value, list):
            raise invalid_type(param, _describe(annotation), value)
        inner = get_args(annotation)[0] if get_args(annotation) else Any
        for i, item in enumerate(value):
            check_value(item, inner, f"{param}[{i}]")
    elif is_typeddict(annotation):
        if not isinstance(value, dict):
            raise invalid_type(param, "an object", value)
        check_fields(value, annotation, param)
    elif not _matches(value, annotation):
        raise invalid_type(param, _describe(annotation), value)


def check_fields(value: dict[str, Any], cls: type, param: str = "", *, only: Iterable[str] | None = None,
                 skip: Iterable[str] = ()) -> None:
    """Check the fields of a JSON object against an SDK TypedDict (``only``/``skip`` pick which, in order)."""
    table = _table(cls)
    names = list(only) if only is not None else [n for n in table if n not in set(skip)]
    for name in names:
        hint, required = table[name]
        where = f"{param}.{name}" if param else name
        if value.get(name) is None:
            if required and not (name in value and type(None) in get_args(hint)):   # Required[Optional[...]]: null
                raise missing(where)
            continue
        check_value(value[name], hint, where)


# --- formats ---------------------------------------------------------------------------------------------

__all__ = ["ApiError", "apply_stop", "ChatRequest", "ImagePart", "MAX_N", "OutputSpec", "parse_chat_request",
           "parse_json_body", "parse_output", "Route", "strict_function_error", "strict_schema_problem"]

#: Largest ``n`` the API accepts ("Expected a value <= 128").
MAX_N = 128
#: Stop sequences the API accepts ("Up to 4 sequences", API reference of ``stop``).
MAX_STOP = 4
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


@dataclass(frozen=True)
class OutputSpec:
    """The shape the answer must take."""

    kind: str = "text"                           # "text", "json_object", "json_schema" or "tool"
    schema: dict[str, Any] | None = None         # the JSON schema to fill (json_schema: the schema; tool: params)
    name: str | None = None                      # the schema's or the function's name
    strict: bool = False
    forced_tool: str = ""                        # "required" or "named" when kind == "tool"
    stop: tuple[str, ...] = ()
    n: int = 1
    tools: tuple[str, ...] = field(default=())   # function names offered


def _mentions_json(messages: list[dict[str, Any]]) -> bool:
    for message in messages:
        content = message.get("content")
        texts = [content] if isinstance(content, str) else [
            p.get("text", "") for p in content or [] if isinstance(p, dict) and isinstance(p.get("text"), str)]
        if any("json" in t.lower() for t in texts):
            return True
    return False


def _strict_problem(schema: Any, context: tuple[str, ...] = ()) -> str | None:
    """The first rule of strict mode (Structured Outputs guide, "Supported schemas") that ``schema`` breaks."""
    if not isinstance(schema, dict):
        return None
    where = "In context=(" + ", ".join(repr(c) for c in context) + ("," if len(context) == 1 else "") + "), "
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return where + "'additionalProperties' is required to be supplied and to be false."
        props = schema.get("properties") or {}
        missing = [k for k in props if k not in (schema.get("required") or [])]
        if missing:
            return where + ("'required' is required to be supplied and to be an array including every key in "
                            f"properties. Missing '{missing[0]}'.")
        for key, sub in props.items():
            found = _strict_problem(sub, (*context, "properties", key))
            if found:
                return found
    for key in ("items",):
        found = _strict_problem(schema.get(key), (*context, key))
        if found:
            return found
    for key in ("anyOf", "allOf", "oneOf"):
        for i, sub in enumerate(schema.get(key) or []):
            found = _strict_problem(sub, (*context, key, str(i)))
            if found:
                return found
    for key in ("$defs", "definitions"):
        for name, sub in (schema.get(key) or {}).items():
            found = _strict_problem(sub, (*context, key, name))
            if found:
                return found
    return None


def strict_schema_problem(schema: Any) -> str | None:
    """Why ``schema`` cannot be used in strict mode (the Structured Outputs guide's "Supported schemas" rules, in
    the API's words), or ``None`` when it can.

    >>> strict_schema_problem({"type": "object", "properties": {}, "additionalProperties": False}) is None
    True
    >>> strict_schema_problem({"type": "object", "properties": {"a": {"type": "string"}}})
    "In context=(), 'additionalProperties' is required to be supplied and to be false."
    """
    try:
        return _strict_problem(schema)
    except RecursionError:
        return "the schema nests too deeply."


def strict_function_error(name: str, problem: str, param: str) -> ApiError:
    """The API's 400 for a function tool declared strict whose ``parameters`` strict mode cannot take."""
    return ApiError(400, f"Invalid schema for function '{name}': {problem}", param=param,
                    code="invalid_function_parameters")


def _json_schema(payload: dict[str, Any]) -> OutputSpec:
    spec = payload["response_format"].get("json_schema")
    if not isinstance(spec, dict):
        raise ApiError(400, "Missing required parameter: 'response_format.json_schema'.",
                       param="response_format.json_schema", code="missing_required_parameter")
    name = spec.get("name")
    if not isinstance(name, str):
        raise ApiError(400, "Missing required parameter: 'response_format.json_schema.name'.",
                       param="response_format.json_schema.name", code="missing_required_parameter")
    if not _NAME.match(name):
        raise ApiError(400, "Invalid 'response_format.json_schema.name': string does not match pattern. Expected a "
                            "string that matches the pattern '^[a-zA-Z0-9_-]+$' of at most 64 characters.",
                       param="response_format.json_schema.name", code="invalid_value")
    schema: dict[str, Any] = spec.get("schema") or {}
    strict = bool(spec.get("strict"))
    if strict:
        if schema.get("type") != "object":
            raise ApiError(400, f"Invalid schema for response_format '{name}': schema must be a JSON Schema of "
                                f"'type: \"object\"', got 'type: \"{schema.get('type')}\"'.",
                           param="response_format", code="invalid_json_schema")
        problem = strict_schema_problem(schema)
        if problem:
            raise ApiError(400, f"Invalid schema for response_format '{name}': {problem}",
                           param="response_format", code="invalid_json_schema")
    return OutputSpec("json_schema", schema, name, strict)


def _tools(payload: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], Any]:
    tools = payload.get("tools") or []
    functions = {}
    for i, tool in enumerate(tools):
        if tool.get("type") == "function":
            function = tool["function"]
            # Chat Completions: a function is strict only when it says so. OpenAI's OpenAPI spec, FunctionObject
            # ``strict``: "default: false" (openai/openai-openapi, as quoted by generated clients; read 2026-12-07);
            # the Responses API's default differs (helpers/offline/responses.py, ``_strict``).
            if function.get("strict") is True:
                # "Omitting `parameters` defines a function with an empty parameter list" (FunctionDefinition)
                parameters = function.get("parameters") or {"type": "object", "properties": {},
                                                            "additionalProperties": False}
                problem = strict_schema_problem(parameters)
                if problem:
                    raise strict_function_error(function["name"], problem, f"tools[{i}].function.parameters")
            functions[function["name"]] = function
        else:
            raise ApiError(400, f"The offline backend calls 'function' tools only, not '{tool.get('type')}'.",
                           param=f"tools[{i}].type", code="unsupported_value")
    choice = payload.get("tool_choice")
    if choice is not None and not tools:
        raise ApiError(400, "Invalid value for 'tool_choice': 'tool_choice' is only allowed when 'tools' are "
                            "specified.", param="tool_choice", code=None)
    return functions, choice


def parse_output(payload: dict[str, Any]) -> OutputSpec:
    """The :class:`OutputSpec` of a request whose fields have passed the SDK-type checks."""
    n = payload.get("n")
    if n is not None and n > MAX_N:
        raise ApiError(400, f"Invalid 'n': integer above maximum value. Expected a value <= {MAX_N}, but got {n} "
                            "instead.", param="n", code="integer_above_max_value")
    stop = payload.get("stop")
    stops = (stop,) if isinstance(stop, str) else tuple(stop or ())
    if len(stops) > MAX_STOP:
        raise ApiError(400, f"Invalid 'stop': array too long. Expected an array with maximum length {MAX_STOP}, "
                            f"but got an array with length {len(stops)} instead.", param="stop",
                       code="array_above_max_length")
    common: dict[str, Any] = {"stop": tuple(s for s in stops if s), "n": n or 1}
    functions, choice = _tools(payload)
    forced = None
    if choice == "required" and functions:
        forced, how = next(iter(functions)), "required"
    elif isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        spec: dict[str, Any] = choice["allowed_tools"] if isinstance(choice.get("allowed_tools"), dict) else {}
        names = [str((t.get("function") or t).get("name")) for t in spec.get("tools") or [] if isinstance(t, dict)]
        unknown = [n for n in names if n not in functions]
        if unknown:
            raise ApiError(400, f"Invalid value for 'tool_choice.allowed_tools.tools': function '{unknown[0]}' is not "
                                f"one of the tools ({', '.join(functions)}).", param="tool_choice.allowed_tools.tools",
                           code="invalid_value")
        functions = {n: functions[n] for n in names}
        if spec.get("mode") == "required" and functions:
            forced, how = next(iter(functions)), "required"
    elif isinstance(choice, dict):
        if choice.get("type") != "function" or not isinstance(choice.get("function"), dict):
            raise ApiError(400, "The offline backend understands tool_choice 'none', 'auto', 'required' or "
                                "{'type': 'function', 'function': {'name': ...}}.", param="tool_choice",
                           code="unsupported_value")
        forced, how = choice["function"].get("name"), "named"
        if forced not in functions:
            raise ApiError(400, f"Invalid value for 'tool_choice': function '{forced}' is not one of the tools "
                                f"({', '.join(functions)}).", param="tool_choice", code="invalid_value")
    if forced is not None:
        parameters = functions[forced].get("parameters") or {"type": "object", "properties": {}}
        return OutputSpec("tool", parameters, forced, bool(functions[forced].get("strict")), how,
                          tools=tuple(functions), **common)
    response_format = payload.get("response_format")
    kind = response_format.get("type") if isinstance(response_format, dict) else None
    if response_format is not None and not isinstance(response_format, dict):
        raise invalid_type("response_format", "an object", response_format)
    if kind == "json_object":
        if not _mentions_json(payload.get("messages") or []):
            raise ApiError(400, "'messages' must contain the word 'json' in some form, to use 'response_format' of "
                                "type 'json_object'.", param="messages", code=None)
        return OutputSpec("json_object", tools=tuple(functions), **common)
    if kind == "json_schema":
        found = _json_schema(payload)
        return OutputSpec(found.kind, found.schema, found.name, found.strict, tools=tuple(functions), **common)
    return OutputSpec(tools=tuple(functions), **common)


def apply_stop(text: str, stops: tuple[str, ...]) -> tuple[str, bool]:
    """``text`` cut before the first of ``stops`` (the stop sequence itself is not returned), and whether it was.

    >>> apply_stop("one. two. three.", (". t",))
    ('one', True)
    """
    cuts = [text.find(s) for s in stops if s in text]
    return (text[:min(cuts)], True) if cuts else (text, False)


def dumps(value: Any) -> str:
    """The JSON text of a structured answer (compact separators with a space, as models write it)."""
    return json.dumps(value, ensure_ascii=False)


#: Images per request on the OpenAI route ("Up to 1500 individual image inputs per request", OpenAI "Images and
#: vision" guide, "Image input requirements", checked 2026-12-02; it was 500 in the 2024-2025 guide; FACTS section 5).
MAX_IMAGES_OPENAI = 1500
#: The offline backend reads these part types; others get a clear ``unsupported_value``.
READABLE_PARTS = ("text", "image_url", "refusal")

_BASE = completion_create_params.CompletionCreateParamsBase
#: The body fields the API defines (the SDK's ``CompletionCreateParams``): any other is "Unrecognized".
KNOWN_FIELDS = frozenset(_BASE.__annotations__) | {"stream"}
#: What Azure adds on its deployment routes (vision enhancements and their data sources).
AZURE_FIELDS = frozenset({"enhancements", "dataSources", "data_sources"})
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
    payload: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)   # the body, parsed once
    learner: str | None = None   # who asks, on a classroom server (helpers.offline.classroom); else None


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
        detail = str(spec.get("detail")) if spec.get("detail") is not None else "auto"
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
        known = name if tokens.resolve_model(name) is not None else models.DEFAULT_MODEL
        return known, known
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


def _check_sampling(payload: dict[str, Any], model: str) -> None:
    """What the service refuses for this model: ``temperature`` / ``top_p`` other than 1 on a reasoning model,
    ``reasoning_effort`` on another, and
    ``logprobs`` (the offline backend has no language model, hence no token probabilities)."""
    if models.is_reasoning_model(model):
        for name in ("temperature", "top_p"):
            value = payload.get(name)
            if value is not None and value != 1:
                raise ApiError(400, f"Unsupported value: '{name}' does not support {value} with this model. Only the "
                                    "default (1) value is supported.", param=name, code="unsupported_value")
    elif payload.get("reasoning_effort") is not None:
        raise ApiError(400, "Unsupported parameter: 'reasoning_effort' is not supported with this model.",
                       param="reasoning_effort", code="unsupported_parameter")
    for name in ("logprobs", "top_logprobs"):
        if payload.get(name):
            raise ApiError(400, f"Unsupported parameter: '{name}' is not supported with this model. (The offline "
                                "backend has no language model, so it has no token probabilities to report.)",
                           param=name, code="unsupported_parameter")


def parse_chat_request(payload: dict[str, Any], route: Route, learner: str | None = None) -> ChatRequest:
    """Validate a chat completion body in the API's order; raise :class:`ApiError` on the first problem.
    ``learner``: who asks, on a classroom server."""
    if route.api == "openai" and payload.get("model") is None:
        raise ApiError(400, "you must provide a model parameter")
    for name in payload:
        if name not in KNOWN_FIELDS and not (route.api == "azure" and name in AZURE_FIELDS):
            raise ApiError(400, f"Unrecognized request argument supplied: {name}", param=name)
    image_parts = check_messages(payload)
    max_tokens, stream, include_usage = _check_options(payload)
    ocr, grounding = _enhancement_flags(payload, route, stream)
    output = parse_output(payload)
    model, echo = resolve_model(payload, route)
    if payload.get("max_tokens") is not None and models.is_reasoning_model(model):
        # What the real service answers for o-series / gpt-5+ models (the 2023-2024 seeds used max_tokens).
        raise ApiError(400, "Unsupported parameter: 'max_tokens' is not supported with this model. "
                            "Use 'max_completion_tokens' instead.", param="max_tokens", code="unsupported_parameter")
    _check_sampling(payload, model)
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
                       include_usage=include_usage, ocr=ocr, grounding=grounding, output=output, payload=payload,
                       learner=learner)
