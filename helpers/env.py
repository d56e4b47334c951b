"""Reading the course's variables: the process environment over ``.env``, each value checked on its own.

``.env`` is parsed with python-dotenv (found from the current directory upwards, else the repository root) and
merged *under* the process environment, which always wins. ``os.environ`` is never modified, so a ``.env`` file
cannot leak into other code or tests. ``VISION_DOTENV=off`` skips the file (the test session sets it).
Every check raises :class:`~helpers.errors.ConfigurationError` naming the variable and what to put in it;
:mod:`helpers.config` assembles the checked values into one ``Settings`` object.

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
from pathlib import Path
from urllib.parse import urlsplit

from helpers.errors import ConfigurationError
from helpers.local import REPO_ROOT, is_loopback
from helpers.redaction import mask_secret, redact

__all__ = ["ENV_VARS", "check_api_version", "check_deployment", "check_key_shape", "dotenv_enabled", "find_dotenv_file",
           "http_url", "infer_provider", "number", "read_environment", "reject_placeholders", "require"]

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

_OFF_VALUES = {"off", "0", "false", "no", "none"}


# --- reading the environment --------------------------------------------------------------------

def dotenv_enabled(environ: Mapping[str, str | None]) -> bool:
    """False when ``VISION_DOTENV`` is ``off`` (or 0/false/no)."""
    return (environ.get("VISION_DOTENV") or "").strip().lower() not in _OFF_VALUES


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
            maximum: float = math.inf) -> float:
    raw = values.get(name)
    if raw is None:
        return default
    try:
        number = int(raw) if integer else float(raw)
    except ValueError:
        number = None
    if number is None or not math.isfinite(number) or not minimum <= number <= maximum:
        kind = "a whole number" if integer else "a number of seconds"
        bound = f" between {minimum:g} and {maximum:g}" if math.isfinite(maximum) else f" >= {minimum:g}"
        raise ConfigurationError(f"{name} is {raw!r}, which is not {kind}{bound}.",
                                 fix=f"set {name} to {kind}{bound}, or remove it to use the default ({default:g}).")
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
