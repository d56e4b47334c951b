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
``OPENAI_BASE_URL`` -> compatible, ``OPENAI_API_KEY`` -> openai, nothing -> offline; but nothing inside a
JupyterHub session whose hub runs the course backend as a service (``VISION_HUB_SERVICE_URL``, set by the hub's
configuration, and the session's ``JUPYTERHUB_API_TOKEN``) -> the class's backend, reached as ``compatible``
with the learner's hub token as the key (:func:`hub_service`). A learner's own settings always win.

The first part of this module reads each variable (the process environment over ``.env``) and checks it; the second
holds the offline backend's own settings (``VISION_OFFLINE_*``) as one frozen :class:`ServerSettings`, which
whoever starts the server passes to it; the third assembles everything into one frozen :class:`Settings`, which
``helpers.client.setup()`` resolves once per run and passes down. The environment is read here and nowhere else:
the server receives its settings and never imports this module's readers for itself.

Secrets never appear in a repr, a printed line or an error message: they are masked as ``sk-...abcd``.

>>> s = load_settings({"VISION_DOTENV": "off"})
>>> s.provider
'offline'

Taught in notebooks/00_setup.ipynb.

**Env** (until issue 20 ``helpers.env``). Reading the course's variables: the process environment over ``.env``, each value checked on its own.

``.env`` is parsed with python-dotenv (found from the current directory upwards, else the repository root) and
merged *under* the process environment, which always wins. ``os.environ`` is never modified, so a ``.env`` file
cannot leak into other code or tests. ``VISION_DOTENV=off`` skips the file (the test session sets it).
Every check raises :class:`~helpers.errors.ConfigurationError` naming the variable and what to put in it;
then they are assembled into one ``Settings`` object.

>>> read_environment({"VISION_DOTENV": "off", "VISION_MODEL": " m "})["VISION_MODEL"]
'm'

Taught in notebooks/00_setup.ipynb.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from helpers import models
from helpers.errors import ConfigurationError, RetiredModelError
from helpers.local import REPO_ROOT, is_loopback
from helpers.recordings import load_recording
from helpers.redaction import NO_KEY_PLACEHOLDER, OFFLINE_API_KEY, host_of, mask_secret, redact
from helpers.tokens import is_known_model

__all__ = [
    "ENV_VARS", "NO_KEY_PLACEHOLDER", "OFFLINE_API_KEY", "OFF_VALUES", "PROVIDERS", "REPO_ROOT", "ServerSettings",
    "Settings",
    "check_api_version", "check_deployment", "check_key_shape", "check_model", "describe",
    "dotenv_enabled", "find_dotenv_file", "host_of", "http_url", "HUB_SERVICE_VARIABLE", "hub_service",
    "infer_provider", "load_settings",
    "mask_secret", "number", "offline_settings", "read_environment", "redact", "reject_placeholders",
    "require",
]


# ====================================================================================================
# env (formerly helpers/env.py)
# ====================================================================================================

#: Every variable the course reads, with what it is for (``.env.example`` documents the same list).
ENV_VARS: dict[str, str] = {
    "VISION_PROVIDER": "offline | openai | azure | compatible (unset: inferred from what is configured)",
    "VISION_MODEL": "model name (default: the course default in helpers/models.py); on Azure, the model behind "
                    "the deployment",
    "OPENAI_API_KEY": "OpenAI key (sk-...); optional for a compatible engine",
    "OPENAI_BASE_URL": "base URL of an OpenAI-compatible engine, e.g. http://localhost:11434/v1",
    "AZURE_OPENAI_ENDPOINT": "https://YOUR-RESOURCE.openai.azure.com",
    "AZURE_OPENAI_API_KEY": "key of that Azure OpenAI resource",
    "AZURE_OPENAI_API_VERSION": "Azure OpenAI REST API version, e.g. 2024-10-21",
    "AZURE_OPENAI_DEPLOYMENT": "name of your vision-capable deployment",
    "COURSE_IMAGES_BASE_URL": "optional: your public http(s) copy of images/, used instead of the public copies "
                              "and data URLs of images/public_copies.json (real providers only)",
    "VISION_TIMEOUT": "seconds per request before giving up (default 60)",
    "VISION_MAX_RETRIES": "retries for 429, 5xx, timeouts and connection errors (default 2)",
    "VISION_OFFLINE_PORT": "port of the offline backend (0 = any free port, the default)",
    "VISION_RECORDING": "a teacher's recording (JSON from `python -m helpers.course record`) the offline backend "
                        "answers matching requests from, e.g. recordings/class.json",
    "VISION_DOTENV": "off = do not read .env",
    "VISION_CATALOG_DATE": "compare retirement dates with this day (YYYY-MM-DD) instead of today",
    "VISION_OFFLINE_DOWNLOADS": "off = the offline backend never downloads images from the internet",
    "VISION_OFFLINE_CACHE": "folder for the offline backend's image analyses on disk (off = memory only)",
    "VISION_OFFLINE_AZURE_MAX_IMAGES": "images per request on the offline Azure route (default 50, the quotas page; 10 = the how-to)",
}

#: What switches a setting off (any case): ``VISION_DOTENV`` and every ``VISION_OFFLINE_*`` that can be switched off.
OFF_VALUES = frozenset({"off", "0", "false", "no", "none"})

# --- reading the environment --------------------------------------------------------------------

def dotenv_enabled(environ: Mapping[str, str | None]) -> bool:
    """False when ``VISION_DOTENV`` is ``off`` (or 0/false/no)."""
    return (environ.get("VISION_DOTENV") or "").strip().lower() not in OFF_VALUES


def find_dotenv_file(start: str | os.PathLike[str] | None = None) -> Path | None:
    """The ``.env`` to read: the first one from ``start`` (default: the cwd) upwards, else ``<repo>/.env``.

    >>> find_dotenv_file("/")  # doctest: +SKIP
    """
    here = Path(start) if start is not None else Path.cwd()
    for folder in (here, *here.parents):
        candidate = folder / ".env"
        if candidate.is_file():
            return candidate
    candidate = REPO_ROOT / ".env"
    return candidate if candidate.is_file() else None


def read_environment(environ: Mapping[str, str] | None = None,
                     dotenv_path: str | os.PathLike[str] | None = None) -> dict[str, str]:
    """The merged configuration: ``.env`` values overridden by the process environment.

    Empty values count as unset. ``os.environ`` is only read, never written.

    >>> read_environment({"VISION_DOTENV": "off", "VISION_MODEL": " m "})["VISION_MODEL"]
    'm'
    """
    env: Mapping[str, str | None] = os.environ if environ is None else environ
    merged: dict[str, str | None] = {}
    if dotenv_enabled(env):
        path = Path(dotenv_path) if dotenv_path is not None else find_dotenv_file()
        if path is not None and path.is_file():
            from dotenv import dotenv_values  # lazy: only when a file is read

            merged.update(dotenv_values(path, interpolate=False))
    merged.update(env)
    return {k: v.strip() for k, v in merged.items() if isinstance(v, str) and v.strip() != ""}


def infer_provider(values: Mapping[str, str]) -> str:
    """The provider implied by what is configured (used when VISION_PROVIDER is unset).

    >>> infer_provider({"OPENAI_API_KEY": "sk-..."})
    'openai'
    """
    if values.get("AZURE_OPENAI_ENDPOINT"):
        return "azure"
    if values.get("OPENAI_BASE_URL"):
        return "compatible"
    if values.get("OPENAI_API_KEY"):
        return "openai"
    return "offline"


_PLACEHOLDERS = ("sk-...", "YOUR-", "YYYY-MM-DD", "OWNER/REPO")


def reject_placeholders(values: Mapping[str, str]) -> None:
    """Catch example values copied from .env.example or the docs without being filled in."""
    for name in ENV_VARS:
        value = values.get(name, "")
        if any(marker in value for marker in _PLACEHOLDERS):
            raise ConfigurationError(
                f"{name} still holds an example placeholder" + ("." if "KEY" in name else f" ({value!r})."),
                fix=f"replace it with your real value ({ENV_VARS[name]}), or leave {name} empty.",
            )


def require(values: Mapping[str, str], name: str, provider: str) -> str:
    value = values.get(name)
    if not value:
        raise ConfigurationError(
            f"VISION_PROVIDER is {provider!r} but {name} is not set.",
            fix=f"add {name}=... to .env ({ENV_VARS[name]}), or unset VISION_PROVIDER to use the offline backend.",
        )
    return value


def http_url(name: str, value: str, *, https_only: bool = False, example: str) -> str:
    """Validate a URL from the environment and return it without a trailing slash."""
    parts = urlsplit(value)
    shown = redact(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigurationError(f"{name} is {shown!r}, which is not an http(s) URL.",
                                 fix=f"set {name} to a full URL such as {example}")
    if https_only and parts.scheme != "https" and not is_loopback(parts.hostname):
        raise ConfigurationError(f"{name} is {shown!r}, but Azure OpenAI endpoints use https://.",
                                 fix=f"set {name} to {example} (copy it from the Azure portal: Keys and Endpoint).")
    return value.rstrip("/")


def number(values: Mapping[str, str], name: str, default: float, *, integer: bool, minimum: float,
            maximum: float = math.inf, fix: str | None = None) -> float:
    """``values[name]`` as a number within bounds (blank or unset: ``default``); a :class:`ConfigurationError`
    naming the variable and what to put in it (``fix``, else the bounds) otherwise."""
    raw = (values.get(name) or "").strip()
    if not raw:
        return default
    try:
        number = int(raw) if integer else float(raw)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not minimum <= number <= maximum:
        kind = "a whole number" if integer else "a number of seconds"
        bound = f" between {minimum:g} and {maximum:g}" if math.isfinite(maximum) else f" >= {minimum:g}"
        raise ConfigurationError(f"{name} is {raw!r}, which is not {kind}{bound}.",
                                 fix=fix or f"set {name} to {kind}{bound}, or remove it to use the default "
                                            f"({default:g}).")
    return number


# Azure OpenAI api-version values: dated GA or preview versions ("2024-10-21", "2025-04-01-preview"), and the
# v1 API's "preview" / "latest" ("API version lifecycle", https://learn.microsoft.com/azure/ai-foundry/openai/
# api-version-lifecycle, checked 2026-11-21).
_API_VERSION = re.compile(r"^(?:\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?:-preview)?|preview|latest)$")
# Deployment names: letters, digits, '-', '_' and '.', up to 64 characters (Azure portal rules, checked 2026-11-21).
_DEPLOYMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def check_api_version(version: str) -> str:
    if not _API_VERSION.match(version):
        raise ConfigurationError(
            f"AZURE_OPENAI_API_VERSION is {version!r}, which is not an Azure OpenAI API version.",
            fix="set AZURE_OPENAI_API_VERSION to a dated version such as 2024-10-21 (GA) or 2025-04-01-preview; "
                "the list is on Azure's 'API version lifecycle' page.",
        )
    return version


def check_deployment(name: str) -> str:
    if not _DEPLOYMENT.match(name):
        raise ConfigurationError(
            f"AZURE_OPENAI_DEPLOYMENT is {name!r}, which is not a deployment name (letters, digits, '-', '_', '.').",
            fix="copy the name from the Azure portal (Deployments); it is the name you chose, e.g. my-vision, "
                "not a URL or a path.",
        )
    return name


def check_key_shape(name: str, key: str, *, must_look_like_openai: bool = True) -> None:
    """Reject keys that cannot be sent in a header; warn (masked) about ones that do not look like OpenAI keys.

    A wrong-looking key is only a warning: proxies and new key formats exist, and the server gives the final word.
    """
    if any(ch.isspace() for ch in key) or key[0] in "\"'" or not key.isprintable():
        raise ConfigurationError(
            f"{name} ({mask_secret(key)}) contains spaces, quotes or control characters.",
            fix=f"copy the key again and put it in .env as {name}=... with nothing else on the line.",
        )
    if must_look_like_openai and not key.startswith("sk-"):
        warnings.warn(
            f"{name} ({mask_secret(key)}) does not start with 'sk-' like OpenAI keys do; requests may fail with 401. "
            "If you use a proxy or another engine, set OPENAI_BASE_URL too (provider 'compatible').",
            UserWarning,
            stacklevel=3,
        )

# ====================================================================================================
# the offline backend's settings (formerly helpers/offline/settings.py)
# ====================================================================================================

DEFAULT_HOLD_SECONDS = 30.0      # the "timeout" fault holds the connection this long
MIB = 1024 * 1024
#: A classroom server's byte budgets (helpers/offline/stores.py), our own numbers for a teacher's laptop serving a
#: room of about 30: at most 256 MiB of uploaded files and 256 MiB of stored responses in all (half a gigabyte at
#: worst); for one learner 64 MiB of files (a few large photos) and 32 MiB of stored responses (hundreds of turns
#: with small images; a conversation's shared turns count once).
FILE_STORE_MIB, FILE_STORE_MIB_PER_LEARNER = 256, 64
RESPONSE_STORE_MIB, RESPONSE_STORE_MIB_PER_LEARNER = 256, 32


@dataclass(frozen=True)
class ServerSettings:
    """Everything the offline backend takes from the environment, read once, passed to the server.

    ``port`` (``VISION_OFFLINE_PORT``; 0 = any free port), ``recording`` (``VISION_RECORDING``: a teacher's
    recording to replay), ``fault`` (a fault every request gets, ``--fault``), ``hold_seconds``
    (``VISION_OFFLINE_TIMEOUT_SECONDS``: how long the ``timeout`` fault holds a connection), ``analysis_cache``
    (``VISION_OFFLINE_CACHE``, else ``$XDG_CACHE_HOME/gpt-vision-course`` or ``~/.cache/gpt-vision-course``; None
    = analyses kept in memory only), and ``switches``: where the two run-time switches are looked up on every
    request, ``VISION_OFFLINE_FAULT`` and ``VISION_OFFLINE_DOWNLOADS`` (``off``: never download from the
    internet). Lesson 09 switches a fault on and off in its own kernel, so :func:`load_settings` passes the live
    ``os.environ``; None = no switches.

    A classroom server's memory for learners' files and stored responses, in bytes (set in MiB;
    :mod:`helpers.offline.stores`): ``file_store_bytes`` (``VISION_OFFLINE_FILES_MB``, default 256) and
    ``file_store_bytes_per_learner`` (``VISION_OFFLINE_FILES_MB_PER_LEARNER``, 64) for uploaded files,
    ``response_store_bytes`` (``VISION_OFFLINE_RESPONSES_MB``, 256) and ``response_store_bytes_per_learner``
    (``VISION_OFFLINE_RESPONSES_MB_PER_LEARNER``, 32) for stored responses; a learner's budget may not exceed
    the whole store's.

    >>> ServerSettings.from_environ({"VISION_OFFLINE_PORT": "8000", "VISION_OFFLINE_CACHE": "off"}).port
    8000
    >>> ServerSettings(switches={"VISION_OFFLINE_DOWNLOADS": "Off"}).downloads_allowed()
    False
    """

    port: int = 0
    recording: str | None = None
    fault: str | None = None
    hold_seconds: float = DEFAULT_HOLD_SECONDS
    analysis_cache: Path | None = None
    file_store_bytes: int = FILE_STORE_MIB * MIB
    file_store_bytes_per_learner: int = FILE_STORE_MIB_PER_LEARNER * MIB
    response_store_bytes: int = RESPONSE_STORE_MIB * MIB
    response_store_bytes_per_learner: int = RESPONSE_STORE_MIB_PER_LEARNER * MIB
    switches: Mapping[str, str] | None = field(default=None, repr=False, compare=False)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], *, recording: str | None = None,
                     switches: Mapping[str, str] | None = None) -> ServerSettings:
        """Read the ``VISION_OFFLINE_*`` variables of ``environ`` (``os.environ``, or the course's merged
        environment and ``.env``); a :class:`ConfigurationError` naming the variable for a bad value.
        ``recording``: a checked path (``VISION_RECORDING`` is resolved by :func:`load_settings`); ``switches``:
        where the run-time switches are looked up (default ``environ`` itself)."""
        port = number(environ, "VISION_OFFLINE_PORT", 0, integer=True, minimum=0, maximum=65535,
                      fix="set VISION_OFFLINE_PORT to a number between 1024 and 65535, or 0 (any free port).")
        hold = number(environ, "VISION_OFFLINE_TIMEOUT_SECONDS", DEFAULT_HOLD_SECONDS, integer=False, minimum=0,
                      maximum=3600, fix="set VISION_OFFLINE_TIMEOUT_SECONDS to a number of seconds, e.g. "
                                        f"{DEFAULT_HOLD_SECONDS:g}, or unset it.")
        raw = environ.get("VISION_OFFLINE_CACHE", "").strip()
        if raw.lower() in OFF_VALUES:
            cache = None
        elif raw:
            cache = Path(raw).expanduser()
        else:
            cache = Path(environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "gpt-vision-course"
        budgets: dict[str, int] = {}
        for name, key, default in (
                ("VISION_OFFLINE_FILES_MB", "files", FILE_STORE_MIB),
                ("VISION_OFFLINE_FILES_MB_PER_LEARNER", "files_one", FILE_STORE_MIB_PER_LEARNER),
                ("VISION_OFFLINE_RESPONSES_MB", "responses", RESPONSE_STORE_MIB),
                ("VISION_OFFLINE_RESPONSES_MB_PER_LEARNER", "responses_one", RESPONSE_STORE_MIB_PER_LEARNER)):
            budgets[key] = int(number(environ, name, default, integer=True, minimum=1, maximum=1024 * 1024,
                                      fix=f"set {name} to a number of MiB, e.g. {default}, or unset it.")) * MIB
        for room in ("FILES", "RESPONSES"):
            whole, one = budgets[room.lower()], budgets[room.lower() + "_one"]
            if one > whole:
                raise ConfigurationError(
                    f"VISION_OFFLINE_{room}_MB_PER_LEARNER ({one // MIB} MiB) is more than VISION_OFFLINE_{room}_MB "
                    f"({whole // MIB} MiB), the whole store.",
                    fix=f"lower VISION_OFFLINE_{room}_MB_PER_LEARNER or raise VISION_OFFLINE_{room}_MB.")
        return cls(port=int(port), recording=recording, hold_seconds=hold, analysis_cache=cache,
                   switches=environ if switches is None else switches,
                   file_store_bytes=budgets["files"], file_store_bytes_per_learner=budgets["files_one"],
                   response_store_bytes=budgets["responses"], response_store_bytes_per_learner=budgets["responses_one"])

    @classmethod
    def defaults(cls) -> ServerSettings:
        """The defaults, with the run-time switches looked up in this process's ``os.environ`` (what a server
        made without settings uses, e.g. a test's)."""
        return cls(switches=os.environ)

    def fault_switch(self) -> str | None:
        """``VISION_OFFLINE_FAULT`` as it is now (None without switches)."""
        return (self.switches or {}).get("VISION_OFFLINE_FAULT") or None

    def downloads_allowed(self) -> bool:
        """False when ``VISION_OFFLINE_DOWNLOADS`` is off now (the server's own ``/images/`` stay allowed)."""
        return (self.switches or {}).get("VISION_OFFLINE_DOWNLOADS", "on").strip().lower() not in OFF_VALUES


# ====================================================================================================
# config
# ====================================================================================================

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
    #: The offline backend's settings (VISION_OFFLINE_*). Not in the repr: it holds a folder under the user's home.
    offline: ServerSettings = field(default_factory=ServerSettings.defaults, repr=False)
    inferred: bool = False                 # True when VISION_PROVIDER was not set
    model_assumed: bool = False            # True when the model behind an Azure deployment is assumed, not told
    recording: str | None = None           # offline only: a teacher's recording to replay (VISION_RECORDING)
    #: compatible: the class's backend on a JupyterHub (hub_service()); in the repr only when True.
    hub: bool = field(default=False, repr=False)

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
            if not f.repr:
                continue
            value = getattr(self, f.name)
            if f.name == "api_key" and value:
                shown = repr(mask_secret(value))
            elif isinstance(value, str):
                shown = repr(redact(value, self.api_key))   # a key pasted into a URL stays hidden too
            else:
                shown = repr(value)
            parts.append(f"{f.name}={shown}")
        if self.hub:
            parts.append("hub=True")
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


#: Set by a hub's configuration (jupyterhub_config.py) in every learner's server: the course backend's address.
HUB_SERVICE_VARIABLE = "VISION_HUB_SERVICE_URL"


def hub_service(values: Mapping[str, str]) -> tuple[str, str] | None:
    """``(base URL, hub token)`` of the class's backend when running inside a JupyterHub session whose hub serves
    it (``VISION_HUB_SERVICE_URL`` and ``JUPYTERHUB_API_TOKEN`` both set), else None.

    >>> hub_service({"VISION_HUB_SERVICE_URL": "http://127.0.0.1:8765/", "JUPYTERHUB_API_TOKEN": "abc"})
    ('http://127.0.0.1:8765/v1', 'abc')
    >>> hub_service({"JUPYTERHUB_API_TOKEN": "abc"}) is None
    True
    """
    url, token = values.get(HUB_SERVICE_VARIABLE), values.get("JUPYTERHUB_API_TOKEN")
    if not url or not token:
        return None
    url = http_url(HUB_SERVICE_VARIABLE, url, example="http://127.0.0.1:8765 (the service's url in "
                   "jupyterhub_config.py)")
    return (url if url.endswith("/v1") else url + "/v1"), token


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
    shared: dict[str, Any] = common          # one type for the Settings(**shared) calls below

    vision_model = values.get("VISION_MODEL")
    if vision_model:
        check_model(vision_model)

    hub = hub_service(values) if provider == "offline" and not explicit and not values.get("VISION_RECORDING") \
        else None
    if hub is not None:       # nothing of the learner's own: the class's backend on this JupyterHub
        check_key_shape("JUPYTERHUB_API_TOKEN", hub[1], must_look_like_openai=False)
        return Settings(provider="compatible", model=vision_model or models.DEFAULT_MODEL, api_key=hub[1],
                        base_url=hub[0], hub=True, **shared)

    if provider == "offline":
        recording, recorded_model = _recording(values.get("VISION_RECORDING"))
        common["offline"] = replace(offline, recording=recording)
        return Settings(provider="offline", model=vision_model or recorded_model or models.DEFAULT_MODEL,
                        api_key=OFFLINE_API_KEY, recording=recording, **shared)

    if provider == "openai":
        key = require(values, "OPENAI_API_KEY", provider)
        check_key_shape("OPENAI_API_KEY", key)
        return Settings(provider="openai", model=vision_model or models.DEFAULT_MODEL, api_key=key,
                        base_url=OPENAI_BASE_URL_DEFAULT, **shared)

    if provider == "compatible":
        base_url = http_url("OPENAI_BASE_URL", require(values, "OPENAI_BASE_URL", provider),
                             example="http://localhost:11434/v1 (Ollama) or http://localhost:8000/v1 (vLLM)")
        optional_key = values.get("OPENAI_API_KEY")
        if optional_key:
            check_key_shape("OPENAI_API_KEY", optional_key, must_look_like_openai=False)
        return Settings(provider="compatible", model=vision_model or models.DEFAULT_MODEL, api_key=optional_key,
                        base_url=base_url, **shared)

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
                    azure_api_version=version, azure_deployment=deployment, model_assumed=assumed, **shared)


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
    elif settings.hub:
        label = "the class's backend (this JupyterHub's course service, signed in with your hub account)"
    line = f"Provider: {label} · model: {settings.model} · endpoint: {host or 'not started'}"
    if settings.model_assumed:
        line += (f"\nAssumed: deployment {settings.azure_deployment!r} runs {settings.model} (the course default), "
                 "for token counts, costs and the token-limit field. Set VISION_MODEL to the model you deployed.")
    return line
