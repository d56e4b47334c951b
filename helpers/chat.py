"""Asking a vision model about images: the one request path, and the source notebook's two functions.

The two functions keep the names, arguments and return shapes of the course's source notebook, so its cells
still run, but fixed: one cached client (not one per call), the image's real MIME type and a prepared (oriented,
resized, metadata-stripped) image via :func:`helpers.images.image_part` instead of ``image/jpeg`` for every file,
exceptions instead of error strings, and the caller's history list is never modified.

>>> from helpers.chat import query_image_description, query_base64_image_description
>>> text = query_image_description(course_image_url("landscape_summer_palace.jpg"))             # doctest: +SKIP
>>> data = query_base64_image_description("../images/handwriting_en.jpg")           # doctest: +SKIP
>>> data = query_base64_image_description("", "And the second line?", data["messages"], data["current_reply"])  # doctest: +SKIP

Every request goes through :func:`complete` (and :class:`helpers.conversation.Conversation`, one layer up, uses
the same path): it checks the model is not retired and the text is sendable (no lone surrogates), sends the
body with the cached client (the SDK retries 429/5xx/timeouts, honouring Retry-After), turns SDK exceptions into
the course's (:func:`helpers.client.translate_error`, URL passwords redacted) and shows a notice when the answer
was cut at ``max_tokens``. :func:`last_request` returns the body sent, with URL passwords redacted.

Taught in notebooks/01_image_urls.ipynb and notebooks/02_local_images_base64.ipynb.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from helpers import models
from helpers.chat_parts import (
    ImageInfo,
    check_max_tokens,
    check_sendable,
    check_text,
    image_content,
    nothing_to_send,
    redacted_body,
    user_message,
)
from helpers.client import active_settings, get_client, translate_error
from helpers.config import Settings, check_model
from helpers.errors import BadRequestError, ConversationFileError, CourseError, ServiceError
from helpers.notices import notify_truncated
from helpers.redaction import redact_url
from helpers.tokens import check_detail, is_known_model

__all__ = [
    "Completion",
    "ConversationFileError",
    "ImageInfo",
    "complete",
    "last_request",
    "token_limit_field",
    "query_base64_image_description",
    "query_image_description",
    "translate_error",
]

DEFAULT_URL_PROMPT = "Describe this image."
DEFAULT_IMAGE_PROMPT = "What does this image show? Can you analyse it?"

_LAST_REQUEST: dict[str, Any] | None = None


@dataclass(frozen=True)
class Completion:
    """What :func:`complete` returns: the reply and the facts a notebook may want to show."""

    reply: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str
    request: dict[str, Any] = field(repr=False)
    response: Any = field(repr=False, default=None)


# --- the one request path -----------------------------------------------------------------------

@dataclass(frozen=True)
class Target:
    """Whom a request goes to: the settings, the cached client, the model names."""

    settings: Settings
    client: Any
    request_model: str        # what goes in "model": the deployment name on Azure
    model: str                # the model behind it (decides the token-limit field)
    cost_model: str | None    # ``model`` if the cost tables know it


def target_for(model: str | None, settings: Settings | None = None) -> Target:
    """The target for ``model`` (None: the configured one) with ``settings`` (None: those setup() resolved)."""
    settings = settings if settings is not None else active_settings()
    client = get_client(settings)
    request_model = check_model(model) if model else settings.request_model
    behind = models.model_behind(request_model)    # the configured Azure deployment -> its model
    return Target(settings, client, request_model, behind, behind if is_known_model(behind) else None)


def token_limit_field(model: str, provider: str = "openai") -> str:
    """The request field for the answer's length limit; see :func:`helpers.models.token_limit_field`.

    >>> token_limit_field("gpt-5.4-mini", "compatible"), token_limit_field("llava", "compatible")
    ('max_completion_tokens', 'max_tokens')
    """
    return models.token_limit_field(model, provider)


def request_body(target: Target, messages: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    """The Chat Completions body: model (the deployment on Azure), messages, and the model's token-limit field."""
    return {"model": target.request_model, "messages": messages,
            token_limit_field(target.model, target.settings.provider): max_tokens}


def _redact_error(err: BaseException) -> BaseException:
    """``err`` with any URL password in its message (and a course error's problem and fix) hidden."""
    err.args = tuple(redact_url(arg) if isinstance(arg, str) else arg for arg in err.args)
    if isinstance(err, CourseError):
        err.problem = redact_url(err.problem)
        err.fix = redact_url(err.fix) if err.fix else err.fix
    return err


def last_request() -> dict[str, Any] | None:
    """A copy of the body of the most recent request sent by this module (or None), exactly as sent except
    that URL passwords show as ``***`` (:class:`Completion.request` has the body untouched).

    >>> query_image_description("https://example.com/cat.png")   # doctest: +SKIP
    >>> last_request()["messages"][0]["content"][1]["image_url"]["url"]  # doctest: +SKIP
    'https://example.com/cat.png'
    """
    return copy.deepcopy(_LAST_REQUEST)


_NOT_CHAT_COMPLETIONS = ("check that the endpoint speaks the Chat Completions API (OPENAI_BASE_URL / "
                         "AZURE_OPENAI_ENDPOINT; a compatible engine's URL usually ends with /v1).")


def send(target: Target, body: dict[str, Any]) -> Completion:
    """Send one body with the target's client; every failure becomes a course error (see :func:`complete`)."""
    global _LAST_REQUEST
    check_sendable(body.get("messages"), "messages")      # a surrogate would fail deep inside httpx
    _LAST_REQUEST = redacted_body(body)
    try:
        response = target.client.chat.completions.create(**body)
    except json.JSONDecodeError as err:  # a 200 whose body is not JSON: not a Chat Completions endpoint
        raise ServiceError(f"The provider answered with a body that is not valid JSON ({err.msg}).", status=None,
                           code="invalid_json", fix=_NOT_CHAT_COMPLETIONS) from None
    except Exception as err:  # noqa: BLE001 - every SDK error becomes a course error; others pass through
        translated = translate_error(err, target.settings)
        if translated is err:
            _redact_error(err)
            raise
        raise _redact_error(translated) from None
    choices = getattr(response, "choices", None)
    if not choices or not isinstance(choices, list):
        raise ServiceError("The provider answered without any choice.", status=None, code="no_choices",
                           fix=_NOT_CHAT_COMPLETIONS)
    choice = choices[0]
    content = getattr(getattr(choice, "message", None), "content", None)
    if getattr(choice, "message", None) is None or not (content is None or isinstance(content, str)):
        raise ServiceError("The provider's answer has no message in its first choice.", status=None,
                           code="malformed_response", fix=_NOT_CHAT_COMPLETIONS)
    usage = getattr(response, "usage", None)
    completion = Completion(
        reply=content or "",
        finish_reason=choice.finish_reason,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        model=body["model"],
        request=body,
        response=response,
    )
    if completion.finish_reason == "length":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        notify_truncated(limit, empty=not completion.reply.strip())
    return completion


def complete(messages: Sequence[dict[str, Any]], *, max_tokens: int = 1000, model: str | None = None) -> Completion:
    """Send ``messages`` as one Chat Completions request and return the :class:`Completion`.

    ``model=None`` uses the configured model (the deployment on Azure). Raises a
    :class:`~helpers.errors.RequestError` subclass on failure (after the SDK's retries), a
    :class:`~helpers.errors.RetiredModelError` before sending a retired model name.

    >>> done = complete([{"role": "user", "content": "Hello"}], max_tokens=20)   # doctest: +SKIP
    >>> done.reply, done.finish_reason                                          # doctest: +SKIP

    Taught in notebooks/01_image_urls.ipynb.
    """
    max_tokens = check_max_tokens(max_tokens)
    if not messages:
        raise nothing_to_send()
    target = target_for(model)
    body = request_body(target, list(messages), max_tokens)
    return send(target, body)


# --- the source notebook's functions ------------------------------------------------------------

def query_image_description(url: str, prompt: str = DEFAULT_URL_PROMPT, max_tokens: int = 300, *,
                            model: str | None = None, detail: str = "auto") -> str:
    """Ask about one image given by URL (or a local path) and return the answer text.

    An ``http(s)`` URL is passed through for the provider to fetch (offline: use
    :func:`helpers.client.course_image_url`); a local path or data URL is sent inline with its real type.

    >>> query_image_description(course_image_url("landscape_summer_palace.jpg"), "What is this?")   # doctest: +SKIP
    'No language model runs offline...'

    Taught in notebooks/01_image_urls.ipynb.
    """
    prompt = check_text(prompt, "prompt")
    check_detail(detail)
    max_tokens = check_max_tokens(max_tokens)
    if not url:
        raise BadRequestError("No image URL given.", code="missing_image",
                              fix="pass an https:// URL, course_image_url('NAME'), or a local file path.")
    target = target_for(model)
    part, _ = image_content(url, detail, target.cost_model, 0)
    body = request_body(target, [user_message(prompt, [part])], max_tokens)
    return send(target, body).reply


def query_base64_image_description(image_path: str | os.PathLike[str] | None,
                                   prompt: str = DEFAULT_IMAGE_PROMPT,
                                   history_message: list[dict[str, Any]] | None = None,
                                   last_reply: str | None = None,
                                   max_tokens: int = 1000, *,
                                   model: str | None = None, detail: str = "auto") -> dict[str, Any]:
    """Ask about a local image (sent inline as a data URL), optionally continuing an earlier exchange.

    ``image_path=""`` sends a text-only follow-up. ``history_message`` and ``last_reply`` are the
    ``messages`` and ``current_reply`` of the previous call; they are copied, never modified. Returns
    ``{'messages': <the messages sent>, 'current_reply': <the answer>}`` exactly like the source notebook.

    >>> data = query_base64_image_description("../images/gdp_chart.png")                      # doctest: +SKIP
    >>> data = query_base64_image_description("", "What is missing?", data["messages"], data["current_reply"])  # doctest: +SKIP

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    prompt = check_text(prompt, "prompt")
    check_detail(detail)
    max_tokens = check_max_tokens(max_tokens)
    has_image = image_path is not None and os.fspath(image_path) != ""
    if not has_image and not prompt.strip():
        raise nothing_to_send()
    if history_message is not None and not isinstance(history_message, list):
        raise BadRequestError("history_message must be the list of messages returned by the previous call.",
                              code="invalid_history", fix="pass data['messages'] from the previous result.")
    target = target_for(model)
    parts = [image_content(image_path, detail, target.cost_model, 0)[0]] if has_image else []
    messages: list[dict[str, Any]] = copy.deepcopy(history_message) if history_message else []
    if last_reply is not None:
        messages.append({"role": "assistant", "content": last_reply})
    messages.append(user_message(prompt, parts))
    body = request_body(target, messages, max_tokens)
    reply = send(target, body).reply
    return {"messages": copy.deepcopy(messages), "current_reply": reply}
