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

**Chat parts** (until issue 20 ``helpers.chat_parts``). Building a request's messages: checked text, image content parts, display names, and redaction for display.

Used by the request path above and by :mod:`helpers.conversation` (on :mod:`helpers.images` and
:mod:`helpers.tokens`; no settings or client here). Text is checked before anything is sent: a lone UTF-16
surrogate (a cut emoji, text read with ``errors='surrogateescape'``) is a
:class:`~helpers.errors.BadRequestError` saying what to do, not a ``UnicodeEncodeError`` from deep inside httpx.
:func:`redacted_body` is what the course shows or saves of a body: URL passwords as ``***``.

Taught in notebooks/01_image_urls.ipynb, notebooks/02_local_images_base64.ipynb and notebooks/09_conversations.ipynb.

>>> user_message("What is this?", [image_content("https://example.com/cat.png", "low", None, 0)[0]])["content"][1]
{'type': 'image_url', 'image_url': {'url': 'https://example.com/cat.png', 'detail': 'low'}}
"""

from __future__ import annotations

import copy
import io
import json
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from PIL import Image

from helpers import models
from helpers.client import active_settings, get_client, translate_error
from helpers.config import Settings, check_model
from helpers.errors import BadRequestError, ConversationFileError, CourseError, ServiceError
from helpers.images import decode_data_url, image_part, is_http_url, prepare_image
from helpers.notices import notify_truncated
from helpers.redaction import host_of, redact_url
from helpers.tokens import check_detail, is_known_model

__all__ = [
    "Completion", "ConversationFileError", "ImageInfo", "as_sources", "check_max_tokens",
    "check_sendable", "check_text", "complete", "data_url_size", "image_content", "last_request",
    "nothing_to_send", "query_base64_image_description", "query_image_description", "redacted_body",
    "source_name", "token_limit_field", "translate_error", "user_message",
]


# ====================================================================================================
# chat parts (formerly helpers/chat_parts.py)
# ====================================================================================================

# --- small value types --------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageInfo:
    """What the course remembers about an image it sent: a display name and the size the model received.

    >>> ImageInfo("cat.png", 512, 384).label()
    'cat.png, 512×384'
    """

    name: str
    width: int | None = None
    height: int | None = None

    def label(self) -> str:
        """The name, and the size when known."""
        size = f", {self.width}×{self.height}" if self.width and self.height else ""
        return f"{self.name}{size}"


# --- validation ---------------------------------------------------------------------------------

def check_max_tokens(value: Any) -> int:
    """``value`` if it is a positive int (not a bool), else a BadRequestError saying what to pass.

    >>> check_max_tokens(300)
    300
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequestError(f"max_tokens must be a positive whole number, got {value!r}.", code="invalid_max_tokens",
                              fix="pass e.g. max_tokens=300 (the longest answer you want, in tokens).")
    return value


# UTF-16 surrogate code points: never valid on their own in UTF-8, so no request carrying one can be sent.
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_FIX = ("the text was probably cut in the middle of an emoji, or read with errors='surrogateescape': "
                  "read it again with encoding='utf-8', or clean it with "
                  "text.encode('utf-16', 'surrogatepass').decode('utf-16', 'replace').")


def _surrogate_error(text: str, what: str) -> BadRequestError:
    found = _SURROGATE.search(text)
    assert found is not None
    return BadRequestError(
        f"{what} contains {ascii(found.group())} at character {found.start()}, a UTF-16 surrogate that is not a "
        "character on its own: it cannot be sent as UTF-8, so nothing was sent.", code="invalid_text",
        fix=_SURROGATE_FIX)


def check_text(text: Any, what: str = "text") -> str:
    """``text`` if it is a string that can be sent (no lone surrogates), else a BadRequestError.

    >>> check_text("What is this?")
    'What is this?'
    >>> check_text("cut emoji " + chr(0xD83D), "prompt")                             # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    helpers.errors.BadRequestError: prompt contains '\\ud83d' at character 10, a UTF-16 surrogate ...
    """
    if not isinstance(text, str):
        raise BadRequestError(f"{what} must be a string, got {type(text).__name__}.", code="invalid_text",
                              fix=f"pass the question as a str, e.g. {what}='What is in this image?'.")
    if _SURROGATE.search(text):
        raise _surrogate_error(text, what)
    return text


def check_sendable(value: Any, where: str) -> None:
    """Every string in a request body (messages, history, names) must be encodable: no surrogates anywhere."""
    if isinstance(value, str):
        if _SURROGATE.search(value):
            raise _surrogate_error(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_sendable(key, f"{where} (a key)")
            check_sendable(item, f"{where}.{key}" if isinstance(key, str) else where)
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            check_sendable(item, f"{where}[{index}]")


def nothing_to_send() -> BadRequestError:
    """The error for a turn with neither text nor image."""
    return BadRequestError("Nothing to send: the question is empty and there is no image.", code="empty_message",
                           fix="ask a question, attach an image, or both.")


def as_sources(images: Any) -> list[Any]:
    """One image or several: a single path/URL/bytes/PIL image is not iterated character by character.

    >>> as_sources("cat.png"), as_sources(["a.png", "b.png"]), as_sources(None)
    (['cat.png'], ['a.png', 'b.png'], [])
    """
    if images is None:
        return []
    if isinstance(images, (str, bytes, bytearray, os.PathLike, Image.Image)) or not isinstance(images, Iterable) \
            or hasattr(images, "__array_interface__"):
        return [images]
    return list(images)


# --- images -------------------------------------------------------------------------------------

def source_name(source: Any, index: int) -> str:
    """A short display name for an image: the file name (of a path or URL), else ``image N``; never a password.

    >>> source_name("https://ann:pw@example.com/", 0), source_name("../images/cat.png", 1), source_name(b"", 2)
    ('example.com', 'cat.png', 'image 3')
    """
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(("http://", "https://")):
            try:
                return unquote(urlsplit(text).path.rsplit("/", 1)[-1]) or host_of(text)
            except ValueError:   # a malformed URL (e.g. "http://[::1/x.png"): only a label
                return redact_url(text)
        if not text.startswith("data:"):
            return Path(text).name
    name = getattr(source, "source_name", None) or getattr(source, "filename", None)
    return Path(str(name)).name if name else f"image {index + 1}"


def data_url_size(url: str) -> tuple[int | None, int | None]:
    """The pixel size of the image in a data URL (its header only), or (None, None).

    >>> data_url_size("https://example.com/cat.png")
    (None, None)
    """
    if not url.startswith("data:"):
        return None, None
    try:
        _, data = decode_data_url(url)
        with Image.open(io.BytesIO(data)) as picture:  # reads the header only
            return picture.size
    except Exception:  # noqa: BLE001 - only a label; the server judges the image itself
        return None, None


def image_content(source: Any, detail: str, cost_model: str | None, index: int) -> tuple[dict[str, Any], ImageInfo]:
    """The content part for one image (via helpers.images.image_part) and what to remember about it.

    >>> image_content("https://example.com/cat.png", "low", None, 0)[1]
    ImageInfo(name='cat.png', width=None, height=None)
    """
    name = source_name(source, index)
    if isinstance(source, str) and is_http_url(source):  # the provider downloads it: size unknown here
        return image_part(source, detail=detail), ImageInfo(name, None, None)
    prepared = prepare_image(source, detail=detail, model=cost_model)  # once; its size comes with it
    return image_part(prepared, detail=detail), ImageInfo(name, prepared.width, prepared.height)


def user_message(text: str, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """A user message: the text part (unless empty with images), then the image parts.

    >>> user_message("Hi", [])
    {'role': 'user', 'content': [{'type': 'text', 'text': 'Hi'}]}
    """
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not parts else []
    return {"role": "user", "content": content + list(parts)}


def redacted_body(body: Any) -> Any:
    """A deep copy of a request body with the password of every URL in it hidden (``user:***@``), for showing
    or saving; the body actually sent keeps the URL as the provider needs it.

    >>> redacted_body({"url": "https://ann:pw@example.com/cat.png"})
    {'url': 'https://ann:***@example.com/cat.png'}
    """
    if isinstance(body, str):
        return redact_url(body) if "@" in body else body
    if isinstance(body, dict):
        return {key: redacted_body(value) for key, value in body.items()}
    if isinstance(body, (list, tuple)):
        return [redacted_body(value) for value in body]
    return copy.deepcopy(body)

# ====================================================================================================
# chat
# ====================================================================================================

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
