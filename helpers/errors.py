"""The course's exceptions: every one says what went wrong *and what to do next*.

Learners meet these instead of raw tracebacks from deep inside Pillow, httpx or the SDK. Each class
also derives from the built-in exception a Python programmer would expect (``FileNotFoundError``,
``ValueError``...), so ``except ValueError`` keeps working, and the ones named like the ``openai`` SDK's errors
(:class:`AuthenticationError`, :class:`BadRequestError`, :class:`RateLimitError`) are subclasses of the SDK's own,
so ``except openai.RateLimitError``, as OpenAI's documentation teaches, catches what the course raises; they carry
the SDK's fields too (``status_code``, ``response``, ``body``, ``request_id``).

>>> from helpers.errors import ConfigurationError
>>> raise ConfigurationError("AZURE_OPENAI_ENDPOINT is not set.", fix="Put it in .env, e.g. https://NAME.openai.azure.com")
Traceback (most recent call last):
...
helpers.errors.ConfigurationError: AZURE_OPENAI_ENDPOINT is not set. What to do: Put it in .env, e.g. https://NAME.openai.azure.com
"""

from __future__ import annotations

import importlib
from typing import Any, ClassVar

import openai

#: What to do with an image in a format the API does not take and the course cannot convert.
ADVICE_CONVERT = "Open it in an image editor (or Preview/Paint) and save it as PNG or JPEG, then pass that file."


def shorten(text: str, limit: int = 80) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (a file name or URL quoted in an error message).

    >>> shorten("abcdef", 4)
    'abc…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


class CourseError(Exception):
    """Base class. ``str(err)`` is the problem followed by ``What to do: ...``."""

    def __init__(self, message: str, *, fix: str | None = None) -> None:
        self.problem = message
        self.fix = fix
        super().__init__(f"{message} What to do: {fix}" if fix else message)


# --- configuration -----------------------------------------------------------------------------

class ConfigurationError(CourseError):
    """Missing or inconsistent settings (environment variables or ``.env``)."""


class RetiredModelError(ConfigurationError, ValueError):
    """The configured model has been shut down by its provider. Raised *before* any request is sent."""

    def __init__(self, model: str, *, replacement: str, retired_on: str, source: str) -> None:
        self.model = model
        self.replacement = replacement
        self.retired_on = retired_on
        self.source = source
        super().__init__(
            f"The model {model!r} was retired on {retired_on} ({source}).",
            fix=f"use {replacement!r} instead: set VISION_MODEL={replacement} in .env (or pass model=...).",
        )


class UnknownModelError(CourseError, ValueError):
    """A model name that the token-cost tables do not know."""


# --- images and video --------------------------------------------------------------------------

class ImageError(CourseError, ValueError):
    """Base class for a problem with one image. ``source`` names the file (or says what was passed)."""

    def __init__(self, message: str, *, source: str | None = None, fix: str | None = None) -> None:
        self.source = source
        super().__init__(message, fix=fix)


class ImageNotFoundError(ImageError, FileNotFoundError):
    """The path does not exist (or is a directory)."""


class UnsupportedImageError(ImageError):
    """Not an image, an empty or truncated file, or a format the API does not take and we cannot convert."""


class ImageTooLargeError(ImageError):
    """Over the per-image byte limit (20 MB) even after preparation, or too many pixels to open safely."""


class TooManyImagesError(CourseError, ValueError):
    """More images in one request than the provider accepts."""


class VideoError(CourseError, ValueError):
    """A video that cannot be opened or sampled as asked."""


# --- requests ----------------------------------------------------------------------------------

class RequestError(CourseError):
    """A request to the provider failed. ``status`` is the HTTP status (None for network errors)."""

    #: The provider's ``x-request-id`` of the failed request, when there was one (quote it to their support).
    request_id: str | None = None

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None,
                 fix: str | None = None) -> None:
        self.status = status
        self.code = code
        super().__init__(message, fix=fix)


def _sdk_http_library() -> Any:
    """The HTTP library the installed ``openai`` SDK is built on (httpx; openai 3.x: its successor httpx2), so a
    course error's ``.response`` is the same kind of object the SDK's own errors carry."""
    for base in openai.DefaultHttpxClient.__mro__:
        root = base.__module__.split(".")[0]
        if root != "openai" and root != "builtins":
            return importlib.import_module(root)
    return importlib.import_module("httpx")  # pragma: no cover - every openai 1.x-3.x client derives from one


_HTTP = _sdk_http_library()

#: The URL on the request of a course error raised *before* anything was sent (a bad ``detail``, empty text...):
#: ``.invalid`` is reserved for names that never resolve (RFC 2606), so it names no real host.
NOT_SENT_URL = "https://not-sent.invalid/v1/chat/completions"


class _SDKStatusError(RequestError):
    """A course error that is also the ``openai`` SDK's status error of the same name (the class's second base).

    Translated from the SDK (:func:`helpers.client.translate_error`), it keeps the server's real ``response`` and
    ``body``; raised by the course before sending, it gets an ``httpx`` response built with the status the API
    would have answered, on a request to :data:`NOT_SENT_URL`, and an OpenAI-shaped ``body``. ``status`` stays
    the course's: the HTTP status, or None when nothing was sent."""

    _sdk: ClassVar[type[openai.APIStatusError]]
    _would_answer: ClassVar[int]

    def __init__(self, message: str, *, status: int | None = None, code: str | None = None, fix: str | None = None,
                 response: Any = None, body: object | None = None) -> None:
        self.problem = message
        self.fix = fix
        text = f"{message} What to do: {fix}" if fix else message
        if response is None:
            body = {"message": text, "type": "invalid_request_error", "param": None, "code": code}
            response = _HTTP.Response(status or self._would_answer, json={"error": body},
                                      request=_HTTP.Request("POST", NOT_SENT_URL))
        self._sdk.__init__(self, text, response=response, body=body)  # type: ignore[arg-type]
        self.status = status
        self.code = code


class AuthenticationError(_SDKStatusError, openai.AuthenticationError):
    """401/403: the key is missing, wrong, or for another resource. Also an ``openai.AuthenticationError``."""

    _sdk = openai.AuthenticationError
    _would_answer = 401


class ModelNotFoundError(RequestError):
    """404 model_not_found / DeploymentNotFound: the model or deployment name is wrong or retired."""


class BadRequestError(_SDKStatusError, openai.BadRequestError, ValueError):
    """400 and other client errors: the request itself is wrong (bad image, bad parameter...). Also an
    ``openai.BadRequestError`` (and a ``ValueError``), whether the server refused it or the course did first."""

    _sdk = openai.BadRequestError
    _would_answer = 400


class InvalidDetailError(BadRequestError):
    """``detail`` is not one of the levels the API takes; raised before anything is sent."""


class RateLimitError(_SDKStatusError, openai.RateLimitError):
    """429 after all retries: too many requests or tokens per minute, or no quota left. Also an
    ``openai.RateLimitError``."""

    _sdk = openai.RateLimitError
    _would_answer = 429


class ServiceError(RequestError):
    """5xx after all retries: the provider is failing; try again later."""


class NetworkError(RequestError):
    """No answer at all after all retries: connection refused, DNS failure, or a timeout."""


class TruncatedAnswerWarning(UserWarning):
    """The answer stopped at ``max_tokens`` (``finish_reason == "length"``)."""


# --- saved conversations -------------------------------------------------------------------------

class ConversationFileError(CourseError, ValueError):
    """A saved conversation file that cannot be read: missing, not JSON, another format, a newer version, or a
    part that is not what :meth:`helpers.conversation.Conversation.save` writes (the message says which)."""
