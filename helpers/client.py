"""The settings in use, one official-SDK client for them, and what raw HTTP and the URL lessons need.

``setup()`` resolves the settings once (re-running it re-reads ``.env``) and :func:`activate` hands them to the
layers below; ``get_client()`` builds the client; :func:`course_image_url`, :func:`http_endpoint` and
:func:`azure_target` adapt the lessons to whichever provider is configured. SDK errors are translated by
:func:`translate_error` (below).

>>> from helpers.client import setup
>>> client, model = setup()                                              # doctest: +SKIP
Provider: offline (local analysis, no language model) · model: ... · endpoint: 127.0.0.1:PORT

``get_client()`` builds ``openai.OpenAI`` (offline, openai, compatible) or ``openai.AzureOpenAI`` (azure), or their
``Async`` variants, with the timeout and retry budget from ``VISION_TIMEOUT`` / ``VISION_MAX_RETRIES``. The SDK
itself retries 408/409/429/5xx, timeouts and connection errors with exponential backoff and honours
``Retry-After`` (up to 2 minutes; openai-python ``_base_client.py``, checked 2025-11-21 against openai 3.52).
Clients are cached: one per distinct :class:`~helpers.config.Settings`, never one per call.

Taught in notebooks/00_setup.ipynb.

**Provider errors** (until issue 20 ``helpers.provider_errors``). The ``openai`` SDK's exceptions, turned into course exceptions that say what to do, for each provider.

Keeps the HTTP ``status`` and the server's error ``code``; never includes a key (messages are redacted).
Used by every request path (helpers.client, helpers.chat).

>>> import openai, httpx                                                  # doctest: +SKIP
>>> translate_error(openai.APIConnectionError(request=httpx.Request("POST", "http://x")))  # doctest: +SKIP
NetworkError('Could not reach http://x ...')

Taught in notebooks/00_setup.ipynb (reading errors) and notebooks/09_conversations.ipynb (failed turns).
"""

from __future__ import annotations

import sys
import threading
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import openai

from helpers import errors, models
from helpers.config import ServerSettings, Settings, check_model, describe, load_settings
from helpers.course_images import IMAGES_DIR, course_image_path, public_copy
from helpers.images import to_data_url
from helpers.notices import notify
from helpers.offline import ensure_server
from helpers.recordings import load_recording, version_warning
from helpers.redaction import NO_KEY_PLACEHOLDER, OFFLINE_API_KEY, host_of, mask_secret, redact

__all__ = [
    "AnyClient", "AzureTarget", "HttpEndpoint", "IMAGES_DIR", "activate", "active_settings",
    "azure_simulator", "azure_target", "clear_clients", "course_image_url", "get_client", "http_endpoint",
    "setup", "translate_error",
]


# ====================================================================================================
# provider errors (formerly helpers/provider_errors.py)
# ====================================================================================================

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


def _clean_body(body: object, clean: Any) -> object:
    """The SDK error's ``body`` with every string in it redacted like the message (keys, URL passwords)."""
    if isinstance(body, str):
        return clean(body)
    if isinstance(body, dict):
        return {key: _clean_body(value, clean) for key, value in body.items()}
    if isinstance(body, list):
        return [_clean_body(value, clean) for value in body]
    return body


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
                f"{said}.", status=status, code=code, response=err.response, body=_clean_body(err.body, clean),
                fix=("your hub session's token was refused: restart your server from the hub's control panel "
                     "(File > Hub Control Panel: Stop My Server, then Start), then run setup() again."
                     if settings is not None and settings.hub else
                     f"check {var}: it must be a valid key for this endpoint (copy it again into .env)."
                     + (" On Azure the key must belong to the AZURE_OPENAI_ENDPOINT resource." if var.startswith("AZ")
                        else "")))
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
            result = errors.RateLimitError(f"{said} (still rate limited{after}).", status=status, code=code, fix=fix,
                                           response=err.response, body=_clean_body(err.body, clean))
        elif status >= 500:
            result = errors.ServiceError(
                f"{said} (still failing{after}).", status=status, code=code,
                fix="the provider is having trouble; try again later (VISION_MAX_RETRIES sets how often the "
                    "course retries).")
        else:
            result = errors.BadRequestError(
                f"{said}.", status=status, code=code, response=err.response, body=_clean_body(err.body, clean),
                fix="the request itself was refused: read the server's message above (image format or size, "
                    "a parameter the model does not take, too many images...).")
        result.request_id = getattr(err, "request_id", None)
    elif isinstance(err, openai.APIError):  # e.g. a response that does not match the schema
        result = errors.ServiceError(clean(f"Unexpected response from the provider: {err.message}"),
                                     status=getattr(err, "status_code", None),
                                     fix="check that the endpoint speaks the Chat Completions API.")
    else:  # OpenAIError raised by the SDK before sending (credentials, options)
        return errors.ConfigurationError(clean(f"The openai SDK refused the configuration: {err}"),
                                         fix="check the provider variables in .env (see .env.example).")
    return result

# ====================================================================================================
# client
# ====================================================================================================

#: Any of the SDK clients :func:`get_client` builds.
AnyClient = openai.OpenAI | openai.AzureOpenAI | openai.AsyncOpenAI | openai.AsyncAzureOpenAI


_CLIENTS: dict[tuple[Settings, bool, str], Any] = {}
_LOCK = threading.RLock()
_ACTIVE: list[Settings] = []        # the settings setup() resolved (at most one)
_EXPLAINED: set[tuple[str, str]] = set()   # course images whose way of sending was already explained


# --- the settings in use ------------------------------------------------------------------------

def activate(settings: Settings) -> Settings:
    """Make ``settings`` the ones every helper uses from now on (``setup()`` calls this once per run).

    Refuses a retired model before anything is sent, and tells :mod:`helpers.models` which model is in use
    (and, on Azure, which deployment name stands for it), so token and cost maths need no second look at
    the environment.
    """
    check_model(settings.model)
    check_model(settings.request_model)
    with _LOCK:
        models.use_model(settings.model, settings.azure_deployment if settings.provider == "azure" else None)
        _ACTIVE[:] = [settings]
    return settings


def active_settings() -> Settings:
    """The settings ``setup()`` resolved; if no ``setup()`` ran yet, they are resolved here, once.

    >>> active_settings().provider                                       # doctest: +SKIP
    'offline'
    """
    with _LOCK:
        if not _ACTIVE:
            activate(load_settings())
        return _ACTIVE[0]


def offline_server_url(settings: ServerSettings | None = None) -> str:
    """Start the embedded backend once per process and return its base URL, ``http://127.0.0.1:PORT``.

    ``settings`` (``Settings.offline``: ``VISION_OFFLINE_*``, which may come from ``.env``; None: read from the
    environment now) matter for the first start in a process, except the recording, which the running backend
    takes on. The server (and OCR) load only when the offline provider runs.
    """
    return ensure_server(settings).rstrip("/")


def resolved_base_url(settings: Settings) -> str:
    """The URL the client will call: ``.../v1`` for OpenAI-style providers, the resource URL for Azure.

    For the offline provider this starts the embedded server (once per process).
    """
    if settings.provider == "offline":
        return offline_server_url(settings.offline) + "/v1"
    if settings.provider == "azure":
        return settings.azure_endpoint or ""
    return settings.base_url or ""


def _build(settings: Settings, asynchronous: bool, url: str) -> AnyClient:
    common: dict[str, Any] = {"timeout": settings.timeout, "max_retries": settings.max_retries}
    if settings.provider == "azure":
        azure_cls = openai.AsyncAzureOpenAI if asynchronous else openai.AzureOpenAI
        # No azure_deployment here: the SDK routes by the request's `model`, which we set to the deployment name,
        # so model=... can still pick another deployment of the same resource.
        return azure_cls(azure_endpoint=url, api_key=settings.api_key, api_version=settings.azure_api_version, **common)
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
    settings = settings if settings is not None else active_settings()
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
    """Forget the cached clients and the active settings (the next call resolves them again).

    For tests, and after changing ``.env`` (re-running ``setup()`` does the same for the settings).
    """
    with _LOCK:
        cached = list(_CLIENTS.values())
        _CLIENTS.clear()
        _ACTIVE.clear()
        _EXPLAINED.clear()
        models.use_model(models.DEFAULT_MODEL)
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
    settings = activate(load_settings())    # re-read here, so editing .env and re-running setup() takes effect
    client = get_client(settings)
    if verbose:
        print(describe(settings, resolved_base_url(settings)))
        if settings.recording:
            _announce_recording(settings.recording)
        notice = shutdown_notice(settings.model)
        if notice:
            notify(notice, category=FutureWarning)
    return client, settings.request_model


def _announce_recording(path: str) -> None:
    """One line about the recording being replayed; a warning naming both versions if it is of another one."""
    recording = load_recording(path)
    print(recording.label)
    warning = version_warning(recording)
    if warning:
        notify(warning)


def shutdown_notice(model: str) -> str | None:
    """A sentence about ``model``'s announced shutdown (from ``helpers.models``), or None if none is announced.

    >>> shutdown_notice("gpt-4o")        # doctest: +SKIP
    'gpt-4o is scheduled to shut down on 2027-01-14: plan to switch to ... (set VISION_MODEL). Source: ...'
    """
    record = models.scheduled_shutdown(model)
    if record is None:
        return None
    announced = (f"is {models.REPORTED} to shut down on" if models.REPORTED in record.source
                 else "is scheduled to shut down on")
    return (f"{model} {announced} {record.retired_on}: plan to switch to {record.replacement} "
            f"(set VISION_MODEL). Source: {record.source}.")


def course_image_url(name: str, settings: Settings | None = None) -> str:
    """A URL the configured provider can fetch for ``images/<name>``: what the URL lessons send.

    * offline: the embedded backend serves the folder (``http://127.0.0.1:PORT/images/NAME``); so does the class's
      backend on a JupyterHub;
    * ``COURSE_IMAGES_BASE_URL`` set: that public copy of the folder;
    * otherwise a real provider cannot reach your machine, so: the image's public copy where it has one
      (``images/public_copies.json``: the picture it was made from, with its checksum), else the file itself
      as a data URL. The first time per image, one line says which and why.

    >>> course_image_url("landscape_summer_palace.jpg")          # doctest: +SKIP
    'http://127.0.0.1:PORT/images/landscape_summer_palace.jpg'

    Taught in notebooks/01_image_urls.ipynb.
    """
    path = course_image_path(name)
    settings = settings if settings is not None else active_settings()
    if settings.provider == "offline":
        return f"{offline_server_url(settings.offline)}/images/{quote(name)}"
    if settings.hub and settings.base_url:          # the class's backend on a JupyterHub serves them too
        return f"{settings.base_url.removesuffix('/v1')}/images/{quote(name)}"
    if settings.images_base_url:
        return settings.images_base_url + quote(name)
    copy = public_copy(name)
    if copy is not None:
        _explain_once(name, "public", f"{name}: sent by the URL of its public copy ({host_of(copy.url)}), because "
                      f"{settings.provider} cannot reach files on this machine (COURSE_IMAGES_BASE_URL overrides).")
        return copy.url
    url = to_data_url(path, model=settings.model)
    _explain_once(name, "data", f"{name}: no public copy, so it is sent inline as a data URL ({len(url) // 1024} KB "
                  f"of base64), because {settings.provider} cannot reach files on this machine.")
    return url


def _explain_once(name: str, how: str, line: str) -> None:
    with _LOCK:
        if (name, how) in _EXPLAINED:
            return
        _EXPLAINED.add((name, how))
    print(line, file=sys.stdout)


# --- Azure, yours or the simulator ----------------------------------------------------------------

#: The Azure api-version the simulator uses for today's requests (a GA version; see docs/FACTS.md).
SIMULATOR_API_VERSION = "2024-10-21"
#: The deployment name the simulator answers for (any name works there; this one says what it is).
SIMULATOR_DEPLOYMENT = "my-vision-deployment"


@dataclass(frozen=True, repr=False)
class AzureTarget:
    """An ``AzureOpenAI`` client, the deployment to name in ``model=``, and what it is (for one printed line).

    ``simulated`` is True when it is the offline backend's Azure route, not a real Azure resource.
    """

    client: Any
    deployment: str
    endpoint: str
    api_version: str
    simulated: bool

    @property
    def v1_base_url(self) -> str:
        """Azure's v1 route on this resource: ``https://RESOURCE.openai.azure.com/openai/v1/`` (no api-version)."""
        return self.endpoint.rstrip("/") + "/openai/v1/"

    def v1_client(self) -> openai.OpenAI:
        """The plain ``OpenAI()`` client on this resource's v1 route (Microsoft Learn, "Azure OpenAI API version
        lifecycle": ``OpenAI(api_key=..., base_url="https://YOUR-RESOURCE-NAME.openai.azure.com/openai/v1/")``,
        the deployment name in ``model``), with the same key as :attr:`client`.

        >>> azure_simulator().v1_client().base_url                              # doctest: +SKIP
        URL('http://127.0.0.1:PORT/openai/v1/')

        Taught in notebooks/07_azure.ipynb.
        """
        return openai.OpenAI(api_key=self.client.api_key, base_url=self.v1_base_url,
                             max_retries=self.client.max_retries, timeout=self.client.timeout)

    def http_endpoint(self, path: str = "chat/completions") -> HttpEndpoint:
        """URL, ``api-key`` header and ``api-version`` query for a raw HTTP request to this deployment.

        >>> e = azure_simulator("2024-02-15-preview").http_endpoint()        # doctest: +SKIP
        >>> e.params                                                          # doctest: +SKIP
        {'api-version': '2024-02-15-preview'}

        Taught in notebooks/07_azure.ipynb.
        """
        return _azure_http(self.endpoint, self.deployment, self.api_version, self.client.api_key, path)

    def __repr__(self) -> str:
        where = "offline Azure simulator" if self.simulated else "your Azure resource"
        return (f"AzureTarget({where}: endpoint={host_of(self.endpoint)!r}, deployment={self.deployment!r}, "
                f"api_version={self.api_version!r})")

    __str__ = __repr__


def azure_target(settings: Settings | None = None) -> AzureTarget:
    """Your Azure deployment when the Azure provider is configured, else the offline backend's Azure route.

    Notebook 07 sends its present-day requests here, so with Azure settings in ``.env`` they reach your own
    deployment; with any other provider they go to the local simulator, which says so.

    >>> azure_target()                                                 # doctest: +SKIP
    AzureTarget(offline Azure simulator: endpoint='127.0.0.1:PORT', deployment='my-vision-deployment', ...)

    Taught in notebooks/07_azure.ipynb.
    """
    settings = settings if settings is not None else active_settings()
    if settings.provider == "azure":
        return AzureTarget(get_client(settings), settings.request_model, settings.azure_endpoint or "",
                           settings.azure_api_version or "", simulated=False)
    return azure_simulator()


def azure_simulator(api_version: str = SIMULATOR_API_VERSION) -> AzureTarget:
    """The offline backend's Azure route, always local: for what only exists there any more (the retired
    vision enhancements of 2024) and for demos that must not reach a paid service.

    Taught in notebooks/07_azure.ipynb.
    """
    endpoint = offline_server_url()
    client = openai.AzureOpenAI(azure_endpoint=endpoint, api_key=OFFLINE_API_KEY, api_version=api_version,
                                max_retries=0)
    return AzureTarget(client, SIMULATOR_DEPLOYMENT, endpoint, api_version, simulated=True)


# --- raw HTTP -----------------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class HttpEndpoint:
    """What a raw HTTP call (``requests.post``, curl) needs for the configured provider.

    ``url``, ``headers`` (with the key: never print them) and ``params`` (the query: Azure's ``api-version``).
    The repr masks the key.
    """

    url: str
    headers: dict[str, str] = field(default_factory=dict)
    params: dict[str, str] = field(default_factory=dict)
    provider: str = "offline"

    def __repr__(self) -> str:
        shown = {k: (mask_secret(v.removeprefix("Bearer ")) if k.lower() in ("authorization", "api-key") else v)
                 for k, v in self.headers.items()}
        return f"HttpEndpoint(url={self.url!r}, headers={shown!r}, params={self.params!r})"

    __str__ = __repr__


def http_endpoint(path: str = "chat/completions", settings: Settings | None = None) -> HttpEndpoint:
    """URL, headers and query for a raw HTTP request to the configured provider, built in this one place.

    OpenAI, a compatible engine and the offline backend: ``{base_url}/{path}`` with ``Authorization: Bearer``.
    Azure: ``{endpoint}/openai/deployments/{deployment}/{path}?api-version=...`` with an ``api-key`` header.

    >>> e = http_endpoint()                                              # doctest: +SKIP
    >>> requests.post(e.url, headers=e.headers, params=e.params, json=body)   # doctest: +SKIP

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    settings = settings if settings is not None else active_settings()
    if settings.provider == "azure":
        return _azure_http(resolved_base_url(settings), settings.azure_deployment or "",
                           settings.azure_api_version or "", settings.api_key or "", path)
    key = OFFLINE_API_KEY if settings.provider == "offline" else (settings.api_key or NO_KEY_PLACEHOLDER)
    return HttpEndpoint(f"{resolved_base_url(settings).rstrip('/')}/{path}",
                        {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}, {}, settings.provider)


def _azure_http(endpoint: str, deployment: str, api_version: str, key: str, path: str) -> HttpEndpoint:
    """Azure's deployment route: ``{endpoint}/openai/deployments/{deployment}/{path}?api-version=...``."""
    url = f"{endpoint.rstrip('/')}/openai/deployments/{quote(deployment, safe='')}/{path}"
    return HttpEndpoint(url, {"Content-Type": "application/json", "api-key": key}, {"api-version": api_version},
                        "azure")
