"""The ``openai`` SDK's exceptions, turned into course exceptions that say what to do, for each provider.

Keeps the HTTP ``status`` and the server's error ``code``; never includes a key (messages are redacted).
Used by every request path (helpers.client, helpers.chat).

>>> import openai, httpx                                                  # doctest: +SKIP
>>> translate_error(openai.APIConnectionError(request=httpx.Request("POST", "http://x")))  # doctest: +SKIP
NetworkError('Could not reach http://x ...')

Taught in notebooks/00_setup.ipynb (reading errors) and notebooks/09_conversations.ipynb (failed turns).
"""

from __future__ import annotations

from typing import Any

import openai

from helpers import errors
from helpers.config import Settings
from helpers.redaction import host_of, redact

__all__ = ["translate_error"]


# --- translation -------------------------------------------------------------------------------------

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
