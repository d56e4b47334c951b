"""The recording file: a teacher's recorded answers, in the one format the recording proxy writes and the offline
backend's replay reads.

A recording (written by ``python -m helpers.teacher record``, :mod:`helpers.teacher.recording`) is a plain JSON
file: per request, the request *normalised* (model, messages with every image replaced by the SHA-256 of its
bytes, the parameters that change an answer) and the provider's answer, plus the model, the date and the course
version. This module is that format: :func:`normalise` and :func:`image_ref` (what a request is keyed by),
:func:`course_version`, and :func:`load_recording` (the file checked with pydantic); the server's
:mod:`helpers.offline.replay` answers from a loaded :class:`Recording`. Its own module, below both the teacher's
proxy and the server, so that neither imports the other for it.

>>> normalise({"model": "gpt-4o", "messages": [{"role": "user", "content": "Hi"}], "stream": True})["request"]
{'model': 'gpt-4o', 'messages': [{'role': 'user', 'content': 'Hi'}], 'params': {}}

An image is the same image whichever way it is sent: by the offline backend's ``/images/NAME`` URL, by its public
copy's URL (``images/public_copies.json``), under ``COURSE_IMAGES_BASE_URL``, or as a data URL: each resolves to
the bytes of the course file (a data URL to its own bytes). Any other URL is keyed by the SHA-256 of the URL,
and only its address without the query is written down (a signed URL's token is not).
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import unquote, urlsplit

from openai.types.completion_usage import CompletionUsage
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr, StringConstraints, ValidationError

from helpers import course_images, images
from helpers.errors import ConfigurationError, ImageError
from helpers.local import IMAGES_DIR, REPO_ROOT, is_loopback
from helpers.redaction import redact_url

__all__ = ["FORMAT", "IGNORED_PARAMS", "Recording", "answer_label", "course_image_names", "course_version",
           "image_ref", "load_recording", "normalise", "request_key", "strip_label", "version_warning"]

FORMAT = "gpt-vision-course-recording/1"
#: Request fields that do not change what a model answers (how it is delivered, who asked, billing tags).
IGNORED_PARAMS = frozenset({"model", "messages", "stream", "stream_options", "user", "metadata", "store",
                            "service_tier", "prompt_cache_key", "safety_identifier", "parallel_tool_calls",
                            "timeout", "extra_headers", "enhancements", "data_sources"})
_LABEL = re.compile(r"\A\*Recorded answer of [^\n]*, replayed offline\.\*\n\n")


# --- the course version -----------------------------------------------------------------------------

def _package_version(root: Path) -> str:
    match = re.search(r'(?m)^version\s*=\s*"([^"]+)"', (root / "pyproject.toml").read_text(encoding="utf-8"))
    return match.group(1) if match else "unknown"


def course_version(notebooks: list[str], root: Path = REPO_ROOT) -> str:
    """``<pyproject version>+nb.<12 hex>``: the package version and a hash of the code cells of ``notebooks``.

    Works from a zip of the repository as well as from a git clone (no ``git describe``); editing a code cell
    of a recorded notebook changes it, editing its Markdown does not. A missing notebook hashes as missing.

    >>> course_version(["00_setup.ipynb"]).startswith(_package_version(REPO_ROOT) + "+nb.")
    True
    """
    digest = hashlib.sha256()
    for name in sorted(notebooks):
        digest.update(name.encode() + b"\0")
        path = root / "notebooks" / name
        if not path.is_file():
            digest.update(b"(missing)\0")
            continue
        cells = json.loads(path.read_text(encoding="utf-8")).get("cells", [])
        for cell in cells:
            if cell.get("cell_type") == "code":
                source = cell.get("source", "")
                digest.update(("".join(source) if isinstance(source, list) else str(source)).encode() + b"\0")
    return f"{_package_version(root)}+nb.{digest.hexdigest()[:12]}"


# --- normalising a request ----------------------------------------------------------------------------

def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@functools.lru_cache(maxsize=128)
def _file_sha(path: Path, mtime: float) -> str:
    return _sha(path.read_bytes())


@functools.lru_cache(maxsize=1)
def course_image_names() -> dict[str, str]:
    """SHA-256 -> file name of every course image (so an image is named the same however it was sent)."""
    return {_sha(p.read_bytes()): p.name for p in sorted(IMAGES_DIR.iterdir())
            if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp", ".gif")}


def _course_file(url: str, images_base_url: str | None) -> Path | None:
    """The course image a URL stands for: the offline ``/images/NAME`` route, a public copy, or a
    ``COURSE_IMAGES_BASE_URL`` address."""
    parts = urlsplit(url)
    name = None
    if parts.scheme in ("http", "https") and is_loopback(parts.hostname) and parts.path.startswith("/images/"):
        name = unquote(parts.path[len("/images/"):])
    elif images_base_url and url.startswith(images_base_url):
        name = unquote(url[len(images_base_url):].split("?", 1)[0])
    else:
        found = course_images.local_copy_of(url)
        if found is not None:
            return found
    if name and Path(name).name == name and (IMAGES_DIR / name).is_file():
        return IMAGES_DIR / name
    return None


def image_ref(url: str, *, images_base_url: str | None = None, aliases: Mapping[str, str] | None = None,
              digests: Mapping[str, str] | None = None) -> dict[str, str]:
    """What stands for an image in a normalised request: ``{"sha256": ...}`` of its bytes (plus ``name`` for a
    course image), or ``{"url_sha256", "url"}`` for an image elsewhere on the web (the URL without its query).
    ``digests`` maps data URLs to the SHA-256 of their bytes where it is known already (the server's)."""
    url = url.strip()
    if url.startswith("data:"):
        try:
            digest = (digests or {}).get(url) or _sha(images.decode_data_url(url)[1])
        except (ValueError, ImageError):
            return {"sha256": _sha(url.encode()), "note": "undecodable data URL"}
        digest = (aliases or {}).get(digest, digest)
        name = course_image_names().get(digest)
        return {"sha256": digest, "name": name} if name else {"sha256": digest}
    path = _course_file(url, images_base_url)
    if path is not None:
        return {"sha256": _file_sha(path, path.stat().st_mtime), "name": path.name}
    parts = urlsplit(url)
    shown = redact_url(f"{parts.scheme}://{parts.netloc}{parts.path}" if parts.scheme else url[:200])
    return {"url_sha256": _sha(url.encode()), "url": shown}


def answer_label(model: str, recorded: str) -> str:
    """The first line replay puts in front of a recorded answer (:func:`strip_label` takes it off again).

    >>> answer_label("m", "2026-12-02")
    '*Recorded answer of m on 2026-12-02, replayed offline.*\\n\\n'
    """
    return f"*Recorded answer of {model} on {recorded}, replayed offline.*\n\n"


def strip_label(text: str) -> str:
    """An assistant message as the model wrote it: without the label replay puts in front (:func:`answer_label`).

    >>> strip_label("*Recorded answer of m on 2026-12-02, replayed offline.*\\n\\nHello")
    'Hello'
    """
    return _LABEL.sub("", text, count=1)


def _content(content: Any, role: str, **image_options: Any) -> Any:
    if isinstance(content, str):
        return strip_label(content) if role == "assistant" else content
    if not isinstance(content, list):
        return content
    parts = []
    for part in content:
        if isinstance(part, dict) and part.get("type") == "image_url":
            image = part.get("image_url") or {}
            image = {"url": image} if isinstance(image, str) else image
            parts.append({"type": "image", "detail": image.get("detail") or "auto",
                          **image_ref(str(image.get("url", "")), **image_options)})
        elif isinstance(part, dict) and part.get("type") == "text" and role == "assistant":
            parts.append({**part, "text": strip_label(str(part.get("text", "")))})
        else:
            parts.append(part)
    return parts


def _message(message: Any, **image_options: Any) -> Any:
    if not isinstance(message, dict):
        return message
    role = str(message.get("role", ""))
    kept: dict[str, Any] = {"role": role}
    if message.get("content") is not None:
        kept["content"] = _content(message["content"], role, **image_options)
    if message.get("name"):
        kept["name"] = message["name"]
    calls = message.get("tool_calls") or []
    if calls:   # ids differ between a real answer and its replay: only what was called counts
        kept["tool_calls"] = [(c.get("function") or {}) for c in calls if isinstance(c, dict)]
    return kept


def normalise(payload: Mapping[str, Any], *, model: str | None = None, images_base_url: str | None = None,
              aliases: Mapping[str, str] | None = None, digests: Mapping[str, str] | None = None) -> dict[str, Any]:
    """``{"key": sha256, "request": {"model", "messages", "params"}}`` for a Chat Completions body.

    ``model`` overrides the body's (on Azure the body names a deployment; the recorder passes the model behind
    it). ``max_completion_tokens`` and ``max_tokens`` count as one parameter.
    """
    options = {"images_base_url": images_base_url, "aliases": aliases, "digests": digests}
    messages = [_message(m, **options) for m in payload.get("messages") or []]
    params = {k: v for k, v in payload.items() if k not in IGNORED_PARAMS and v is not None}
    if "max_completion_tokens" in params:
        params["max_tokens"] = params.pop("max_completion_tokens")
    request = {"model": str(model or payload.get("model") or ""), "messages": messages,
               "params": dict(sorted(params.items()))}
    return {"key": request_key(request), "request": request}


def request_key(request: Mapping[str, Any]) -> str:
    """SHA-256 of the normalised request as canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(request, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return _sha(text.encode("utf-8"))


# --- a recording ----------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Recording:
    """A loaded recording: what it was made with, and its answers by request key."""

    path: Path
    model: str
    recorded: str
    course_version: str
    notebooks: tuple[str, ...]
    provider: str
    answers: dict[str, dict[str, Any]] = field(repr=False)
    aliases: dict[str, str] = field(repr=False)

    @property
    def label(self) -> str:
        """One line for ``setup()``: ``Replaying recordings/class.json: gpt-4.1-mini, recorded 2026-12-02, ...``."""
        return (f"Replaying {self.path.name}: {len(self.answers)} answers of {self.model} recorded {self.recorded} "
                f"({', '.join(n.split('_')[0] for n in self.notebooks) or 'no notebooks'}); "
                "other requests: local analysis.")


def _bad(path: Path, problem: str) -> ConfigurationError:
    return ConfigurationError(f"VISION_RECORDING points to {path}, which {problem}.",
                              fix="record one with `python -m helpers.course record 05 --out recordings/class.json` "
                                  "(needs a provider with a key), or unset VISION_RECORDING.")


# The recording file's schema: every field the replay reads is checked at load time (a clean configuration error
# naming the field), so a damaged or hostile file never reaches a request as a traceback or a 500.
_NOTEBOOK = r"^[0-9A-Za-z][0-9A-Za-z_.-]{0,120}\.ipynb$"        # a file in notebooks/, never a path


class _Lenient(BaseModel):
    model_config = ConfigDict(extra="allow")


class _Function(_Lenient):
    name: StrictStr = ""
    arguments: StrictStr = ""


class _ToolCall(_Lenient):
    function: _Function | None = None


class _Message(_Lenient):
    content: StrictStr | None = None
    tool_calls: list[_ToolCall] | None = Field(default=None, max_length=128)


class _Choice(_Lenient):
    message: _Message | None = None
    finish_reason: StrictStr | None = None


class _Response(_Lenient):
    id: StrictStr | None = None
    created: StrictInt | None = None
    model: StrictStr | None = None
    choices: list[_Choice] = Field(default_factory=list, max_length=128)
    usage: CompletionUsage | None = None


class _Entry(_Lenient):
    key: StrictStr = Field(min_length=1, max_length=128)
    response: _Response


class _RecordingFile(_Lenient):
    format: StrictStr
    model: StrictStr = "?"
    recorded: StrictStr = "?"
    course_version: StrictStr = "?"
    provider: StrictStr = "?"
    notebooks: list[Annotated[StrictStr, StringConstraints(pattern=_NOTEBOOK)]] = Field(default_factory=list,
                                                                                         max_length=64)
    image_aliases: dict[StrictStr, StrictStr] = Field(default_factory=dict)
    entries: list[_Entry]


def _field_problem(err: ValidationError) -> str:
    first = err.errors(include_url=False)[0]
    where = ".".join(str(part) for part in first["loc"]) or "the top level"
    return f"is not a valid course recording: field {where}: {first['msg']} ({len(err.errors())} problem(s) in all)"


@functools.lru_cache(maxsize=8)
def _load(path: Path, mtime: float) -> Recording:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except RecursionError:
        raise _bad(path, "cannot be read as JSON (nested too deeply)") from None
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise _bad(path, f"cannot be read as JSON ({type(err).__name__})") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise _bad(path, f"is not a course recording (expected \"format\": \"{FORMAT}\" and a list of entries)")
    try:
        checked = _RecordingFile.model_validate(data)
    except ValidationError as err:
        raise _bad(path, _field_problem(err)) from None
    except RecursionError:
        raise _bad(path, "is not a valid course recording (nested too deeply)") from None
    answers: dict[str, dict[str, Any]] = {}
    for entry in data["entries"]:                 # the raw dictionaries (answers replayed byte for byte), checked
        answers.setdefault(entry["key"], entry)
    return Recording(path=path, model=checked.model, recorded=checked.recorded,
                     course_version=checked.course_version, notebooks=tuple(checked.notebooks),
                     provider=checked.provider, answers=answers, aliases=dict(checked.image_aliases))


def load_recording(path: str | Path) -> Recording:
    """Read a recording (cached until the file changes); :class:`ConfigurationError` naming
    ``VISION_RECORDING`` if it is missing or not a recording. A relative path is looked up from the current
    folder, then from the repository root (notebooks run in ``notebooks/``).

    >>> load_recording("recordings/nothing-here.json")       # doctest: +ELLIPSIS
    Traceback (most recent call last):
    helpers.errors.ConfigurationError: VISION_RECORDING points to ...
    """
    given = Path(path).expanduser()
    candidates = [given] if given.is_absolute() else [Path.cwd() / given, REPO_ROOT / given]
    for candidate in candidates:
        if candidate.is_file():
            resolved = candidate.resolve()
            return _load(resolved, resolved.stat().st_mtime)
    raise _bad(given, "does not exist" + ("" if given.is_absolute() else f" (looked in {Path.cwd()} and {REPO_ROOT})"))


def version_warning(recording: Recording, root: Path = REPO_ROOT) -> str | None:
    """A sentence naming both versions when the recording was made with other notebook code, else None."""
    here = course_version(list(recording.notebooks), root)
    if here == recording.course_version:
        return None
    return (f"{recording.path.name} was recorded with course version {recording.course_version}; this copy is "
            f"{here}. Requests whose cells changed will not match and get local answers: ask your teacher for a "
            "recording of this version.")
