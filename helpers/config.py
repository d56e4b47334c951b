"""Which provider and which model the course talks to, read from the environment and ``.env``.

Four providers speak the same Chat Completions protocol, so every notebook runs unchanged on each:

============  ==============================================================  =========================
provider      what it is                                                      variables it needs
============  ==============================================================  =========================
offline       the embedded local backend (``helpers.offline``), no key        none
openai        api.openai.com                                                  OPENAI_API_KEY
azure         an Azure OpenAI resource                                        AZURE_OPENAI_ENDPOINT,
                                                                              AZURE_OPENAI_API_KEY,
                                                                              AZURE_OPENAI_API_VERSION,
                                                                              AZURE_OPENAI_DEPLOYMENT
compatible    any OpenAI-compatible base URL: Ollama, vLLM, LM Studio, proxy  OPENAI_BASE_URL (key optional)
============  ==============================================================  =========================

``VISION_PROVIDER`` picks one. Unset, it is inferred: ``AZURE_OPENAI_ENDPOINT`` -> azure,
``OPENAI_BASE_URL`` -> compatible, ``OPENAI_API_KEY`` -> openai, nothing -> offline.

:mod:`helpers.env` reads each variable (the process environment over ``.env``) and checks it; this module
assembles them into one frozen :class:`Settings`, which ``helpers.client.setup()`` resolves once per run and
passes down.

Secrets never appear in a repr, a printed line or an error message: they are masked as ``sk-...abcd``.

>>> s = load_settings({"VISION_DOTENV": "off"})
>>> s.provider
'offline'

Taught in notebooks/00_setup.ipynb.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from urllib.parse import urlsplit

from helpers import models
from helpers.env import (
    ENV_VARS,
    check_api_version,
    check_deployment,
    check_key_shape,
    find_dotenv_file,
    http_url,
    infer_provider,
    number,
    read_environment,
    reject_placeholders,
    require,
)
from helpers.errors import ConfigurationError, RetiredModelError
from helpers.local import REPO_ROOT
from helpers.offline import ServerSettings, load_recording
from helpers.redaction import NO_KEY_PLACEHOLDER, OFFLINE_API_KEY, host_of, mask_secret, redact
from helpers.tokens import is_known_model

__all__ = ["ENV_VARS", "NO_KEY_PLACEHOLDER", "OFFLINE_API_KEY", "PROVIDERS", "REPO_ROOT", "Settings", "check_model",
           "describe", "find_dotenv_file", "host_of", "infer_provider", "load_settings", "mask_secret",
           "offline_settings", "read_environment", "redact"]

PROVIDERS: tuple[str, ...] = ("offline", "openai", "azure", "compatible")

OPENAI_BASE_URL_DEFAULT = "https://api.openai.com/v1"

DEFAULT_TIMEOUT = 60.0
DEFAULT_MAX_RETRIES = 2

# --- the settings object ------------------------------------------------------------------------

@dataclass(frozen=True, repr=False)
class Settings:
    """Everything needed to build a client. Frozen and hashable: one cached client per distinct Settings.

    ``model`` names the underlying model (used for token and cost maths). ``request_model`` is what goes in the
    request's ``model`` field: the deployment name on Azure, ``model`` everywhere else.

    >>> s = Settings(provider="openai", model="m", api_key="sk-" + "x" * 40)
    >>> "xxxxxxxx" in repr(s)
    False
    """

    provider: str
    model: str
    api_key: str | None = None
    base_url: str | None = None            # openai / compatible; None for offline (known once the server runs)
    azure_endpoint: str | None = None
    azure_api_version: str | None = None
    azure_deployment: str | None = None
    images_base_url: str | None = None
    timeout: float = DEFAULT_TIMEOUT
    max_retries: int = DEFAULT_MAX_RETRIES
    #: The offline backend's settings (VISION_OFFLINE_*; its run-time switches are looked up in os.environ).
    offline: ServerSettings = field(default_factory=ServerSettings.defaults)
    inferred: bool = False                 # True when VISION_PROVIDER was not set
    model_assumed: bool = False            # True when the model behind an Azure deployment is assumed, not told
    recording: str | None = None           # offline only: a teacher's recording to replay (VISION_RECORDING)

    @property
    def offline_port(self) -> int:
        """``VISION_OFFLINE_PORT`` (0 = any free port)."""
        return self.offline.port

    @property
    def request_model(self) -> str:
        """The ``model`` value to send: the deployment name on Azure, otherwise ``model``."""
        if self.provider == "azure" and self.azure_deployment:
            return self.azure_deployment
        return self.model

    @property
    def endpoint_host(self) -> str | None:
        """``host[:port]`` of the endpoint, for the one-line summary (None for offline before it starts)."""
        url = self.azure_endpoint if self.provider == "azure" else self.base_url
        return host_of(url) if url else None

    def secrets(self) -> tuple[str, ...]:
        """The secret values this object holds (for :func:`redact`)."""
        return tuple(s for s in (self.api_key,) if s)

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "api_key" and value:
                shown = repr(mask_secret(value))
            elif isinstance(value, str):
                shown = repr(redact(value, self.api_key))   # a key pasted into a URL stays hidden too
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        return f"Settings({', '.join(parts)})"

    __str__ = __repr__


def check_model(name: str) -> str:
    """Raise :class:`RetiredModelError` (with the replacement) if ``name`` has been shut down; else return it.

    Called before any request is sent, so a retired name never costs a round trip.

    >>> check_model("gpt-4-vision-preview")  # doctest: +SKIP
    Traceback (most recent call last):
    helpers.errors.RetiredModelError: The model 'gpt-4-vision-preview' was retired on ...
    """
    retired = models.retired_model(name)
    if retired is not None:
        raise RetiredModelError(name, replacement=retired.replacement, retired_on=retired.retired_on,
                                source=retired.source)
    return name


def load_settings(environ: Mapping[str, str] | None = None,
                  dotenv_path: str | os.PathLike[str] | None = None) -> Settings:
    """Read and validate the configuration; raise :class:`ConfigurationError` naming what to fix.

    ``environ`` defaults to ``os.environ``; ``dotenv_path`` defaults to the ``.env`` found by
    :func:`find_dotenv_file`. A retired ``VISION_MODEL`` raises :class:`RetiredModelError` here, before any request.

    >>> load_settings({"VISION_DOTENV": "off", "OPENAI_API_KEY": "sk-" + "a" * 40}).provider
    'openai'

    Taught in notebooks/00_setup.ipynb.
    """
    values = read_environment(environ, dotenv_path)
    reject_placeholders(values)
    explicit = values.get("VISION_PROVIDER", "").lower()
    if explicit and explicit not in PROVIDERS:
        raise ConfigurationError(
            f"VISION_PROVIDER is {values['VISION_PROVIDER']!r}, which is not a provider the course knows.",
            fix=f"set VISION_PROVIDER to one of {', '.join(PROVIDERS)} (or remove it to infer from your settings).",
        )
    provider = explicit or infer_provider(values)

    timeout = float(number(values, "VISION_TIMEOUT", DEFAULT_TIMEOUT, integer=False, minimum=0.001))
    max_retries = int(number(values, "VISION_MAX_RETRIES", DEFAULT_MAX_RETRIES, integer=True, minimum=0,
                              maximum=20))
    offline = ServerSettings.from_environ(values, switches=os.environ)
    images_base_url = values.get("COURSE_IMAGES_BASE_URL")
    if images_base_url:
        images_base_url = http_url("COURSE_IMAGES_BASE_URL", images_base_url,
                                    example="https://raw.githubusercontent.com/OWNER/REPO/main/images") + "/"
    common = dict(timeout=timeout, max_retries=max_retries, offline=offline,
                  images_base_url=images_base_url, inferred=not explicit)

    vision_model = values.get("VISION_MODEL")
    if vision_model:
        check_model(vision_model)

    if provider == "offline":
        recording, recorded_model = _recording(values.get("VISION_RECORDING"))
        common["offline"] = replace(offline, recording=recording)
        return Settings(provider="offline", model=vision_model or recorded_model or models.DEFAULT_MODEL,
                        api_key=OFFLINE_API_KEY, recording=recording, **common)

    if provider == "openai":
        key = require(values, "OPENAI_API_KEY", provider)
        check_key_shape("OPENAI_API_KEY", key)
        return Settings(provider="openai", model=vision_model or models.DEFAULT_MODEL, api_key=key,
                        base_url=OPENAI_BASE_URL_DEFAULT, **common)

    if provider == "compatible":
        base_url = http_url("OPENAI_BASE_URL", require(values, "OPENAI_BASE_URL", provider),
                             example="http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)")
        key = values.get("OPENAI_API_KEY")
        if key:
            check_key_shape("OPENAI_API_KEY", key, must_look_like_openai=False)
        return Settings(provider="compatible", model=vision_model or models.DEFAULT_MODEL, api_key=key,
                        base_url=base_url, **common)

    # azure
    endpoint = http_url("AZURE_OPENAI_ENDPOINT", require(values, "AZURE_OPENAI_ENDPOINT", provider),
                         https_only=True, example="https://YOUR-RESOURCE.openai.azure.com")
    if "/openai" in urlsplit(endpoint).path:
        raise ConfigurationError(
            f"AZURE_OPENAI_ENDPOINT is {redact(endpoint)!r}, which includes a path.",
            fix="set AZURE_OPENAI_ENDPOINT to the resource URL only, e.g. https://YOUR-RESOURCE.openai.azure.com; "
                "put the deployment name in AZURE_OPENAI_DEPLOYMENT.",
        )
    key = require(values, "AZURE_OPENAI_API_KEY", provider)
    check_key_shape("AZURE_OPENAI_API_KEY", key, must_look_like_openai=False)
    version = check_api_version(require(values, "AZURE_OPENAI_API_VERSION", provider))
    deployment = check_deployment(require(values, "AZURE_OPENAI_DEPLOYMENT", provider))
    check_model(deployment)
    # A deployment is named by whoever created it ("my-vision"), so it usually says nothing about the model.
    # VISION_MODEL says which model runs behind it; unset, a deployment named after a model is taken at its
    # word, and otherwise the course default is assumed, and setup() says so (describe()).
    assumed = False
    if vision_model:
        model = vision_model
    elif is_known_model(deployment):
        model = deployment
    else:
        model, assumed = models.DEFAULT_MODEL, True
    return Settings(provider="azure", model=model, api_key=key, azure_endpoint=endpoint,
                    azure_api_version=version, azure_deployment=deployment, model_assumed=assumed, **common)


def _recording(value: str | None) -> tuple[str | None, str | None]:
    """``(absolute path, model)`` of the recording ``VISION_RECORDING`` names, checked by loading it; a
    :class:`ConfigurationError` naming the variable if it is missing or not a recording. Without
    ``VISION_MODEL``, the recording's model is the model in use, so its requests match."""
    if not value:
        return None, None
    recording = load_recording(value)
    model = recording.model if recording.model and models.retired_model(recording.model) is None else None
    return str(recording.path), model


def offline_settings(model: str | None = None) -> Settings:
    """Settings for the embedded offline backend whatever ``.env`` says: for demos that only make sense
    locally (fault injection, the retired Azure enhancements' simulator), so they never spend a paid request.

    >>> offline_settings().provider, offline_settings().api_key
    ('offline', 'offline')
    """
    return Settings(provider="offline", model=model or models.DEFAULT_MODEL, api_key=OFFLINE_API_KEY)


def describe(settings: Settings, endpoint: str | None = None) -> str:
    """The one-line summary :func:`helpers.client.setup` prints (no key, no path, no timing).

    >>> describe(Settings(provider="openai", model="m", base_url="https://api.openai.com/v1"))
    'Provider: openai · model: m · endpoint: api.openai.com'
    """
    host = host_of(endpoint) if endpoint else settings.endpoint_host
    label = settings.provider
    if settings.provider == "offline":
        label = "offline (local analysis, no language model)"
    elif settings.provider == "azure":
        label = f"azure (deployment {settings.azure_deployment})"
    line = f"Provider: {label} · model: {settings.model} · endpoint: {host or 'not started'}"
    if settings.model_assumed:
        line += (f"\nAssumed: deployment {settings.azure_deployment!r} runs {settings.model} (the course default), "
                 "for token counts, costs and the token-limit field. Set VISION_MODEL to the model you deployed.")
    return line
