"""The SDK's request types, walked: a JSON value checked against an ``openai.types`` TypedDict annotation, and
the first mismatch turned into the API's error, with its wording and the JSON path as ``param``.

>>> from openai.types.chat import ChatCompletionStreamOptionsParam
>>> check_value({"include_usage": "yes"}, ChatCompletionStreamOptionsParam, "stream_options")
Traceback (most recent call last):
helpers.offline.schema.ApiError: Invalid type for 'stream_options.include_usage': expected a boolean, but got a string instead.
"""

from __future__ import annotations

import functools
import json
import re
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

from typing_extensions import NotRequired, Required, is_typeddict


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
            if required:
                raise missing(where)
            continue
        check_value(value[name], hint, where)


