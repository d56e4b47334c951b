"""What shape an answer must take: ``response_format``, ``tools`` / ``tool_choice``, ``stop`` and ``n``, checked
the way the API checks them (after the SDK types have been walked by :mod:`helpers.offline.schema`).

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

import json
import re
from dataclasses import dataclass, field
from typing import Any

from helpers.offline.schema import ApiError, invalid_type

__all__ = ["MAX_N", "OutputSpec", "apply_stop", "parse_output"]

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
    schema = spec.get("schema") if spec.get("schema") is not None else {}
    strict = bool(spec.get("strict"))
    if strict:
        if schema.get("type") != "object":
            raise ApiError(400, f"Invalid schema for response_format '{name}': schema must be a JSON Schema of "
                                f"'type: \"object\"', got 'type: \"{schema.get('type')}\"'.",
                           param="response_format", code="invalid_json_schema")
        try:
            problem = _strict_problem(schema)
        except RecursionError:
            problem = "the schema nests too deeply."
        if problem:
            raise ApiError(400, f"Invalid schema for response_format '{name}': {problem}",
                           param="response_format", code="invalid_json_schema")
    return OutputSpec("json_schema", schema, name, strict)


def _tools(payload: dict[str, Any]) -> tuple[dict[str, dict[str, Any]], Any]:
    tools = payload.get("tools") or []
    functions = {}
    for i, tool in enumerate(tools):
        if tool.get("type") == "function":
            functions[tool["function"]["name"]] = tool["function"]
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
    common = {"stop": tuple(s for s in stops if s), "n": n or 1}
    functions, choice = _tools(payload)
    forced = None
    if choice == "required" and functions:
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
