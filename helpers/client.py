"""One official-SDK client for whichever provider is configured, and the translation of SDK errors.

>>> from helpers.client import setup
>>> client, model = setup()                                              # doctest: +SKIP
Provider: offline (local analysis, no language model) · model: ... · endpoint: 127.0.0.1:PORT

``get_client()`` builds ``openai.OpenAI`` (offline, openai, compatible) or ``openai.AzureOpenAI`` (azure), or their
``Async`` variants, with the timeout and retry budget from ``VISION_TIMEOUT`` / ``VISION_MAX_RETRIES``. The SDK
itself retries 408/409/429/5xx, timeouts and connection errors with exponential backoff and honours
``Retry-After`` (up to 2 minutes; openai-python ``_base_client.py``, checked 2025-11-21 against openai 3.52).
Clients are cached: one per distinct :class:`~helpers.config.Settings`, never one per call.

Taught in notebooks/00_setup.ipynb.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from helpers import errors
from helpers.config import (
    NO_KEY_PLACEHOLDER,
    OFFLINE_API_KEY,
    REPO_ROOT,
    Settings,
    check_model,
    describe,
    host_of,
    load_settings,
    redact,
)

if TYPE_CHECKING:
    import openai

    AnyClient = openai.OpenAI | openai.AzureOpenAI | openai.AsyncOpenAI | openai.AsyncAzureOpenAI
else:
    AnyClient = Any

#: The folder ``course_image_url`` serves from (the offline backend serves the same folder at ``/images/``).
IMAGES_DIR = REPO_ROOT / "images"

_CLIENTS: dict[tuple[Settings, bool, str], Any] = {}
_LOCK = threading.Lock()


def offline_server_url(port: int | None = None) -> str:
    """Start the embedded backend once per process and return its base URL, ``http://127.0.0.1:PORT``.

    ``port`` (from ``VISION_OFFLINE_PORT``, which may come from ``.env``; 0 = any free port) only matters for
    the first start in a process.
    """
    from helpers.offline import ensure_server

    return ensure_server(port).rstrip("/")


def resolved_base_url(settings: Settings) -> str:
    """The URL the client will call: ``.../v1`` for OpenAI-style providers, the resource URL for Azure.

    For the offline provider this starts the embedded server (once per process).
    """
    if settings.provider == "offline":
        return offline_server_url(settings.offline_port) + "/v1"
    if settings.provider == "azure":
        return settings.azure_endpoint or ""
    return settings.base_url or ""


def _build(settings: Settings, asynchronous: bool, url: str) -> AnyClient:
    import openai

    common: dict[str, Any] = {"timeout": settings.timeout, "max_retries": settings.max_retries}
    if settings.provider == "azure":
        cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        # No azure_deployment here: the SDK routes by the request's `model`, which we set to the deployment name,
        # so model=... can still pick another deployment of the same resource.
        return cls(azure_endpoint=url, api_key=settings.api_key, api_version=settings.azure_api_version, **common)
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    key = settings.api_key or NO_KEY_PLACEHOLDER
    if settings.provider == "offline":
        key = OFFLINE_API_KEY
    # base_url is always explicit, so an OPENAI_BASE_URL left in os.environ cannot redirect the openai provider.
    return cls(api_key=key, base_url=url, **common)


def get_client(settings: Settings | None = None, *, asynchronous: bool = False) -> AnyClient:
    """A ready client for the configured provider; the same object for the same settings.

    ``asynchronous=True`` gives ``AsyncOpenAI`` / ``AsyncAzureOpenAI``. Raises
    :class:`~helpers.errors.ConfigurationError` (or :class:`~helpers.errors.RetiredModelError`) before any
    request if the configuration is incomplete or names a retired model.

    >>> client = get_client()          # doctest: +SKIP
    >>> client is get_client()         # doctest: +SKIP
    True

    Taught in notebooks/00_setup.ipynb.
    """
    settings = settings if settings is not None else load_settings()
    check_model(settings.model)
    check_model(settings.request_model)
    url = resolved_base_url(settings)
    key = (settings, bool(asynchronous), url)
    with _LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            try:
                client = _build(settings, bool(asynchronous), url)
            except Exception as err:  # the SDK's own validation (never expected; keeps keys out of messages)
                raise translate_error(err, settings) from None
            _CLIENTS[key] = client
    return client


def clear_clients() -> None:
    """Forget the cached clients (closing the synchronous ones). For tests and after changing ``.env``."""
    with _LOCK:
        cached = list(_CLIENTS.values())
        _CLIENTS.clear()
    for client in cached:
        close = getattr(client, "close", None)
        if close is not None and not _is_coroutine_function(close):
            close()


def _is_coroutine_function(func: Any) -> bool:
    import inspect

    return inspect.iscoroutinefunction(func)


def setup(*, verbose: bool = True) -> tuple[AnyClient, str]:
    """The first cell of every notebook: ``client, model = setup()``. Prints one line saying what is used.

    Returns the cached client and the value to pass as ``model=`` (the deployment name on Azure).

    >>> client, model = setup()        # doctest: +SKIP
    Provider: openai · model: gpt-4o · endpoint: api.openai.com

    Taught in notebooks/00_setup.ipynb.
    """
    settings = load_settings()
    client = get_client(settings)
    if verbose:
        print(describe(settings, resolved_base_url(settings)))
        notice = shutdown_notice(settings.model)
        if notice:
            from helpers.display import notify

            notify(notice, category=FutureWarning)
    return client, settings.request_model


def shutdown_notice(model: str) -> str | None:
    """A sentence about ``model``'s announced shutdown (from ``helpers.models``), or None if none is announced.

    >>> shutdown_notice("gpt-4o")        # doctest: +SKIP
    'gpt-4o is scheduled to shut down on 2027-01-14: plan to switch to ... (set VISION_MODEL). Source: ...'
    """
    from helpers import models

    scheduled = getattr(models, "scheduled_shutdown", None)
    record = scheduled(model) if scheduled is not None else None
    if record is None:
        return None
    return (f"{model} is scheduled to shut down on {record.retired_on}: plan to switch to {record.replacement} "
            f"(set VISION_MODEL). Source: {record.source}.")


def course_image_url(name: str, settings: Settings | None = None) -> str:
    """A URL a provider can fetch for ``images/<name>``.

    Offline: served by the embedded backend (``http://127.0.0.1:PORT/images/NAME``). Real providers cannot reach
    your machine, so they need ``COURSE_IMAGES_BASE_URL`` (a public copy of the folder).

    >>> course_image_url("landscape_summer_palace.jpg")          # doctest: +SKIP
    'http://127.0.0.1:PORT/images/landscape_summer_palace.jpg'

    Taught in notebooks/01_image_urls.ipynb.
    """
    if not name or Path(name).name != name or name in (".", ".."):
        raise errors.ImageNotFoundError(
            f"{name!r} is not a file name in the course images/ folder.",
            source=str(name), fix="pass just the file name, e.g. course_image_url('landscape_summer_palace.jpg').",
        )
    path = Path(IMAGES_DIR) / name
    if not path.is_file():
        available = sorted(p.name for p in Path(IMAGES_DIR).glob("*") if p.is_file() and not p.name.startswith("."))
        shown = ", ".join(available[:12]) + (" ..." if len(available) > 12 else "")
        raise errors.ImageNotFoundError(
            f"There is no {name!r} in the course images/ folder.",
            source=name, fix=f"use one of: {shown or '(the folder is empty)'}.",
        )
    settings = settings if settings is not None else load_settings()
    if settings.provider == "offline":
        return f"{offline_server_url(settings.offline_port)}/images/{quote(name)}"
    if not settings.images_base_url:
        raise errors.ConfigurationError(
            f"The {settings.provider} provider cannot fetch images from your machine, and COURSE_IMAGES_BASE_URL "
            "is not set.",
            fix="set COURSE_IMAGES_BASE_URL to a public copy of the images/ folder (e.g. the raw GitHub URL of this "
                "repository's images/), or send the file itself with the base64 helpers "
                "(query_base64_image_description, Conversation.ask(images=[...])).",
        )
    return settings.images_base_url + quote(name)


# --- errors -------------------------------------------------------------------------------------

def _server_message(err: Any) -> str:
    body = getattr(err, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
        if isinstance(inner, str):
            return inner
    if isinstance(body, str) and body.strip():
        return body.strip()[:500]
    return str(getattr(err, "message", "") or err)


def _key_variable(settings: Settings | None) -> str:
    if settings is not None and settings.provider == "azure":
        return "AZURE_OPENAI_API_KEY"
    return "OPENAI_API_KEY"


def translate_error(err: BaseException, settings: Settings | None = None) -> BaseException:
    """Turn an ``openai`` SDK exception into the course exception that says what to do. Used everywhere.

    Keeps the HTTP ``status`` and the server's error ``code``; never includes a key (messages are redacted).
    Exceptions that are not from the SDK are returned unchanged.

    >>> import openai, httpx2                                              # doctest: +SKIP
    >>> translate_error(openai.APIConnectionError(request=httpx2.Request("POST", "http://x")))  # doctest: +SKIP
    NetworkError('Could not reach http://x ...')
    """
    import openai

    if isinstance(err, errors.CourseError) or not isinstance(err, openai.OpenAIError):
        return err
    secrets = settings.secrets() if settings is not None else ()
    provider = settings.provider if settings is not None else None
    retries = settings.max_retries if settings is not None else None
    after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""

    def clean(text: str) -> str:
        return redact(text, *secrets)

    if isinstance(err, openai.APIConnectionError):  # includes APITimeoutError
        request = getattr(err, "request", None)
        where = f"{request.url.scheme}://{host_of(str(request.url))}" if request is not None else "the endpoint"
        if provider == "offline":
            fix = "is the offline server running? Re-run setup() (it starts the server), or start it with " \
                  "`python -m helpers.offline`."
        elif provider == "compatible":
            fix = "is the endpoint reachable? Check OPENAI_BASE_URL and that the engine (Ollama, vLLM...) is running."
        elif provider == "azure":
            fix = "is the endpoint reachable? Check AZURE_OPENAI_ENDPOINT and your network."
        else:
            fix = "is the endpoint reachable? Check your network connection (and any proxy)."
        if isinstance(err, openai.APITimeoutError):
            limit = f" ({settings.timeout:g} s each)" if settings is not None else ""
            problem = f"No answer from {where} before the timeout{limit}{after}."
            fix += " For big images or long answers, raise VISION_TIMEOUT."
        else:
            problem = f"Could not connect to {where}{after}."
        result: errors.RequestError = errors.NetworkError(clean(problem), status=None, code=None, fix=fix)
    elif isinstance(err, openai.APIStatusError):
        status = err.status_code
        code = err.code
        message = clean(_server_message(err)).rstrip(". ")
        said = f"The server answered {status}" + (f" ({code})" if code else "") + f": {message}"
        if status in (401, 403):
            var = _key_variable(settings)
            result = errors.AuthenticationError(
                f"{said}.", status=status, code=code,
                fix=f"check {var}: it must be a valid key for this endpoint (copy it again into .env)."
                    + (" On Azure the key must belong to the AZURE_OPENAI_ENDPOINT resource." if var.startswith("AZ")
                       else ""))
        elif status == 404:
            if provider == "azure":
                fix = "check the deployment name: AZURE_OPENAI_DEPLOYMENT (or model=...) must be a deployment that " \
                      "exists in the AZURE_OPENAI_ENDPOINT resource, and AZURE_OPENAI_API_VERSION must be valid."
            elif provider == "compatible":
                fix = "check VISION_MODEL / the model name: the engine must have it (e.g. `ollama pull llava`), " \
                      "and OPENAI_BASE_URL usually ends with /v1."
            else:
                fix = "check VISION_MODEL / the deployment name (or model=...): the model may be misspelt, retired, " \
                      "or not available to your account."
            result = errors.ModelNotFoundError(f"{said}.", status=status, code=code, fix=fix)
        elif status == 429:
            if code == "insufficient_quota":
                fix = "your account has no quota left: add credit or raise the limit in your provider's billing page."
            else:
                fix = "wait a minute and run the cell again, send smaller images (detail='low') or fewer tokens; " \
                      "VISION_MAX_RETRIES sets how often the course retries."
            result = errors.RateLimitError(f"{said} (still rate limited{after}).", status=status, code=code, fix=fix)
        elif status >= 500:
            result = errors.ServiceError(
                f"{said} (still failing{after}).", status=status, code=code,
                fix="the provider is having trouble; try again later (VISION_MAX_RETRIES sets how often the "
                    "course retries).")
        else:
            result = errors.BadRequestError(
                f"{said}.", status=status, code=code,
                fix="the request itself was refused: read the server's message above (image format or size, "
                    "a parameter the model does not take, too many images...).")
        result.request_id = getattr(err, "request_id", None)  # type: ignore[attr-defined]
    elif isinstance(err, openai.APIError):  # e.g. a response that does not match the schema
        result = errors.ServiceError(clean(f"Unexpected response from the provider: {err.message}"),
                                     status=getattr(err, "status_code", None),
                                     fix="check that the endpoint speaks the Chat Completions API.")
    else:  # OpenAIError raised by the SDK before sending (credentials, options)
        return errors.ConfigurationError(clean(f"The openai SDK refused the configuration: {err}"),
                                         fix="check the provider variables in .env (see .env.example).")
    return result
