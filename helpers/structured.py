"""Structured data from images: a pydantic model in, a validated instance out, on every provider.

:func:`extract` sends the images and a prompt with ``response_format`` set to the model's strict JSON schema
(Structured Outputs, as ``client.chat.completions.parse()`` sends it), reads the answer and validates it with
the model. A provider that refuses ``json_schema`` (an older compatible engine or Azure api-version) is asked
again with ``json_object`` and the schema written into the prompt; the answer is validated the same way.

The request goes through the course's one request path (:mod:`helpers.chat`), so ``helpers.chat.last_request()``
shows the exact body sent. Offline, fields are filled from local analysis (OCR text and lines with their boxes,
faces, colours, size) and everything else is empty: see :mod:`helpers.offline.fill` and the ``x-offline-fill``
header. Boxes follow one convention everywhere in the course: ``[x_min, y_min, x_max, y_max]`` in pixels of the
image as sent, origin at the top-left; :func:`helpers.display.draw_boxes` draws them.

>>> class Label(BaseModel):                                                        # doctest: +SKIP
...     text: str
...     best_before: str | None
>>> extract(Label, "../images/product_label.png").text.splitlines()[0]          # doctest: +SKIP
'ALPINE OAT BAR'

Taught in notebooks/10_structured_output.ipynb.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from openai.lib._pydantic import to_strict_json_schema
from pydantic import BaseModel, ValidationError

from helpers.chat import (
    Completion,
    as_sources,
    check_max_tokens,
    check_text,
    image_content,
    nothing_to_send,
    request_body,
    send,
    target_for,
    user_message,
)
from helpers.errors import BadRequestError, ServiceError
from helpers.tokens import check_detail

__all__ = ["DEFAULT_PROMPT", "Extraction", "extract", "extraction", "response_format"]

M = TypeVar("M", bound=BaseModel)
DEFAULT_PROMPT = ("Extract the fields of the schema from the image. Use null (or an empty value) for anything the "
                  "image does not show; do not guess. Boxes are [x_min, y_min, x_max, y_max] in pixels of the image, "
                  "origin at the top-left.")


@dataclass(frozen=True)
class Extraction(Generic[M]):
    """What :func:`extraction` returns: the validated instance, the completion, and how it was asked."""

    value: M
    completion: Completion
    mode: str                 # "json_schema" or "json_object" (the fallback)


def response_format(schema: type[BaseModel], *, strict: bool = True) -> dict[str, Any]:
    """The ``response_format`` for a pydantic model, as the SDK's ``parse()`` builds it.

    >>> class Point(BaseModel):
    ...     x: int
    >>> response_format(Point)["json_schema"]["schema"]["required"]
    ['x']
    """
    return {"type": "json_schema", "json_schema": {"name": schema.__name__[:64] or "answer",
                                                   "schema": to_strict_json_schema(schema), "strict": strict}}


def _refuses_schema(err: BadRequestError) -> bool:
    text = str(err).lower()
    return "response_format" in text or "json_schema" in text or "structured output" in text


def _validated(schema: type[M], completion: Completion) -> M:
    if completion.finish_reason == "length":
        raise ServiceError("The answer was cut at the token limit, so its JSON is incomplete.", status=None,
                           code="length", fix="raise max_tokens, or ask for fewer fields.")
    refusal = getattr(getattr(completion.response.choices[0], "message", None), "refusal", None) \
        if completion.response is not None else None
    if refusal:
        raise BadRequestError(f"The model refused: {refusal}", code="refusal", fix="change the prompt or image.")
    try:
        return schema.model_validate_json(completion.reply)
    except ValidationError as err:
        raise ServiceError(f"The answer does not match {schema.__name__}: {err.errors()[0]['msg']} "
                           f"(answer starts {completion.reply[:80]!r}).", status=None, code="invalid_structured",
                           fix="use a model that supports Structured Outputs, or simplify the schema.") from None


def extraction(schema: type[M], images: Any, prompt: str = DEFAULT_PROMPT, *, model: str | None = None,
               detail: str = "auto", max_tokens: int = 2000) -> Extraction[M]:
    """Like :func:`extract`, but return the :class:`Extraction` (instance, completion and mode)."""
    if not (isinstance(schema, type) and issubclass(schema, BaseModel)):
        raise BadRequestError(f"schema must be a pydantic model class, not {schema!r}.", code="invalid_schema",
                              fix="define `class Answer(BaseModel): ...` and pass Answer.")
    prompt = check_text(prompt, "prompt")
    check_detail(detail)
    max_tokens = check_max_tokens(max_tokens)
    sources = as_sources(images)
    if not sources:
        raise nothing_to_send()
    target = target_for(model)
    parts = [image_content(source, detail, target.cost_model, i)[0] for i, source in enumerate(sources)]
    body = request_body(target, [user_message(prompt, parts)], max_tokens)
    try:
        completion = send(target, {**body, "response_format": response_format(schema)})
        return Extraction(_validated(schema, completion), completion, "json_schema")
    except BadRequestError as err:
        if not _refuses_schema(err):
            raise
    schema_text = json.dumps(schema.model_json_schema(), ensure_ascii=False)
    fallback = f"{prompt}\n\nReply with one JSON object that validates against this JSON schema:\n{schema_text}"
    body = request_body(target, [user_message(fallback, parts)], max_tokens)
    completion = send(target, {**body, "response_format": {"type": "json_object"}})
    return Extraction(_validated(schema, completion), completion, "json_object")


def extract(schema: type[M], images: Any, prompt: str = DEFAULT_PROMPT, *, model: str | None = None,
            detail: str = "auto", max_tokens: int = 2000) -> M:
    """Ask for ``schema`` (a pydantic model class) about ``images`` (a path, URL, PIL image or bytes, or a list
    of them) and return a validated instance.

    Raises :class:`~helpers.errors.ServiceError` when the answer is cut (``length``) or does not validate, and
    :class:`~helpers.errors.BadRequestError` for a refusal or a bad request (like :func:`helpers.chat.complete`).
    """
    return extraction(schema, images, prompt, model=model, detail=detail, max_tokens=max_tokens).value
