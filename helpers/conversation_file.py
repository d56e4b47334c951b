"""A conversation's save file: its JSON format, the atomic write, and a reader that checks every part.

:class:`helpers.conversation.Conversation` saves and loads through this module. Writing goes to a temporary file
in the same folder that then replaces the target in one step, so a crash never leaves half a file; URL
passwords are replaced by ``***`` before anything is written. Reading accepts exactly what
:func:`write_save_file` writes and turns everything else (not JSON, cut short, another format, a newer version,
a hand-edited message or turn record of the wrong shape) into a :class:`~helpers.errors.ConversationFileError`
that names the part that is wrong, never a raw ``KeyError`` or ``TypeError``.

Taught in notebooks/09_conversations.ipynb.

>>> check_save_data({"format": FORMAT_NAME, "version": 1, "messages": [{"role": "user"}]}, "x.json")
Traceback (most recent call last):
...
helpers.errors.ConversationFileError: 'x.json' is not a conversation this course can load: messages[0] has no "content". What to do: ...
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers.chat_parts import ImageInfo, redacted_body
from helpers.errors import ConversationFileError
from helpers.tokens import DETAILS

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "SavedConversation", "Turn", "check_save_data", "read_save_file",
           "write_save_file"]

FORMAT_NAME = "gpt-vision-course/conversation"
FORMAT_VERSION = 1

_ROLES = ("system", "developer", "user", "assistant", "tool")
_FIX = "correct that part of the file, or load a file written by Conversation.save()."


@dataclass(frozen=True)
class Turn:
    """One successful question and answer: where it sits in ``messages``, its images and its token usage.

    >>> Turn(user_index=1, prompt_tokens=120, completion_tokens=30).total_tokens
    150
    """

    user_index: int
    images: tuple[ImageInfo, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    model: str | None = None
    images_omitted: int = 0

    @property
    def total_tokens(self) -> int | None:
        """Prompt plus completion tokens, or None when the provider did not report usage."""
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class SavedConversation:
    """The checked contents of a save file, ready to become a Conversation."""

    system: str | None
    model: str | None
    detail: str
    max_tokens: int
    drop_old_images: bool
    messages: list[dict[str, Any]]
    turns: list[Turn]


# --- writing ------------------------------------------------------------------------------------

def _remove_stale_temp_files(target: Path, *, older_than: float = 3600.0) -> None:
    """Delete temp files of earlier saves of ``target`` that a killed process left behind (an hour old)."""
    cutoff = time.time() - older_than
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


def write_save_file(path: str | os.PathLike[str], data: dict[str, Any]) -> Path:
    """Write ``data`` (URL passwords redacted) as JSON to ``path``, atomically; return the path.

    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "chat.json"
    >>> write_save_file(target, {"url": "https://ann:pw@example.com/x.png"}).read_text()
    '{\\n "url": "https://ann:***@example.com/x.png"\\n}\\n'
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            json.dump(redacted_body(data), stream, ensure_ascii=False, indent=1)
            stream.write("\n")
            stream.flush()
            os.fsync(stream.fileno())
        os.replace(temp_name, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp_name)
        raise
    _remove_stale_temp_files(target)
    return target


# --- reading ------------------------------------------------------------------------------------

class _Wrong(Exception):
    """Internal: the part of the file that is wrong, and how."""


def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a whole number", float: "a number"}.get(type(value), type(value).__name__)


def _expect(value: Any, kinds: tuple[type, ...], where: str, wanted: str) -> Any:
    is_bool = isinstance(value, bool)
    if not isinstance(value, kinds) or (is_bool and bool not in kinds):
        raise _Wrong(f"{where} is {_type_name(value)}, not {wanted}")
    return value


def _text(value: Any, where: str, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    text = _expect(value, (str,), where, "a string" + (" or null" if optional else ""))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _Wrong(f"{where} holds {ascii(text[err.start])}, a lone UTF-16 surrogate that cannot be sent") from None
    return text


def _count(value: Any, where: str, *, optional: bool = False, minimum: int = 0) -> int | None:
    if value is None and optional:
        return None
    number = _expect(value, (int,), where, "a whole number" + (" or null" if optional else ""))
    if number < minimum:
        raise _Wrong(f"{where} is {number}, less than {minimum}")
    return number


def _part(part: Any, where: str) -> None:
    _expect(part, (dict,), where, 'an object such as {"type": "text", "text": "..."}')
    kind = _text(part.get("type"), f"{where}.type") if "type" in part else None
    if kind is None:
        raise _Wrong(f'{where} has no "type"')
    if kind == "text":
        _text(part.get("text"), f"{where}.text")
    elif kind == "image_url":
        image = _expect(part.get("image_url"), (dict,), f"{where}.image_url", 'an object with a "url"')
        _text(image.get("url"), f"{where}.image_url.url")
        if "detail" in image:
            _text(image["detail"], f"{where}.image_url.detail")
    _check_strings(part, where)


def _check_strings(value: Any, where: str) -> None:
    """Any other string anywhere inside must be sendable (no lone surrogates)."""
    if isinstance(value, str):
        _text(value, where)
    elif isinstance(value, dict):
        for key, item in value.items():
            _text(key, f"{where} (a key)")
            _check_strings(item, f"{where}.{key}")
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_strings(item, f"{where}[{index}]")


def _message(message: Any, where: str) -> dict[str, Any]:
    _expect(message, (dict,), where, 'an object such as {"role": "user", "content": "..."}')
    if "role" not in message:
        raise _Wrong(f'{where} has no "role"')
    role = _text(message["role"], f"{where}.role")
    if role not in _ROLES:
        raise _Wrong(f"{where}.role is {role!r}, not one of {', '.join(_ROLES)}")
    if "content" not in message:
        raise _Wrong(f'{where} has no "content"')
    content = message["content"]
    if isinstance(content, list):
        for index, part in enumerate(content):
            _part(part, f"{where}.content[{index}]")
    elif not (content is None and role == "assistant"):
        _text(content, f"{where}.content")
    _check_strings(message, where)
    return message


def _image_info(value: Any, where: str) -> ImageInfo:
    _expect(value, (dict,), where, 'an object such as {"name": "cat.png", "width": 512, "height": 384}')
    name = _text(value.get("name"), f"{where}.name")
    assert name is not None
    return ImageInfo(name, _count(value.get("width"), f"{where}.width", optional=True),
                     _count(value.get("height"), f"{where}.height", optional=True))


def _turn(value: Any, where: str, messages: list[dict[str, Any]]) -> Turn:
    _expect(value, (dict,), where, 'an object such as {"user_index": 1, ...}')
    if "user_index" not in value:
        raise _Wrong(f'{where} has no "user_index"')
    index = _count(value["user_index"], f"{where}.user_index")
    assert index is not None
    if index >= len(messages) or messages[index].get("role") != "user":
        raise _Wrong(f"{where}.user_index is {index}, which is not the index of a user message")
    images = _expect(value.get("images", []), (list,), f"{where}.images", "a list")
    return Turn(user_index=index,
                images=tuple(_image_info(image, f"{where}.images[{i}]") for i, image in enumerate(images)),
                prompt_tokens=_count(value.get("prompt_tokens"), f"{where}.prompt_tokens", optional=True),
                completion_tokens=_count(value.get("completion_tokens"), f"{where}.completion_tokens", optional=True),
                finish_reason=_text(value.get("finish_reason"), f"{where}.finish_reason", optional=True),
                model=_text(value.get("model"), f"{where}.model", optional=True),
                images_omitted=_count(value.get("images_omitted", 0), f"{where}.images_omitted") or 0)


def _settings(data: dict[str, Any]) -> tuple[str | None, str | None, str, int, bool]:
    system = _text(data.get("system"), "system", optional=True)
    model = _text(data.get("model"), "model", optional=True)
    detail = _text(data.get("detail", "auto"), "detail")
    if detail not in DETAILS:
        raise _Wrong(f"detail is {detail!r}, not one of {', '.join(map(repr, DETAILS))}")
    max_tokens = _count(data.get("max_tokens", 1000), "max_tokens", minimum=1)
    drop = _expect(data.get("drop_old_images", False), (bool,), "drop_old_images", "true or false")
    assert detail is not None and max_tokens is not None
    return system, model, detail, max_tokens, drop


def check_save_data(data: Any, name: str) -> SavedConversation:
    """Check the parsed JSON of a save file named ``name``; every problem is a ConversationFileError.

    >>> check_save_data({"format": FORMAT_NAME, "version": 1, "messages": []}, "x.json").detail
    'auto'
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        what = f"its top level is {_type_name(data)}" if not isinstance(data, dict) else \
            f'its "format" is {data.get("format")!r}, not {FORMAT_NAME!r}'
        raise ConversationFileError(f"{name!r} is not a saved Conversation ({what}).",
                                    fix="load a file written by Conversation.save().")
    version = data.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
        raise ConversationFileError(
            f"{name!r} uses conversation format version {version!r}; this course reads up to {FORMAT_VERSION}.",
            fix="update the course helpers (git pull) or re-create the conversation.")
    try:
        system, model, detail, max_tokens, drop = _settings(data)
        if "messages" not in data:
            raise _Wrong('there is no "messages" list')
        messages = _expect(data["messages"], (list,), "messages", "a list of messages")
        messages = [_message(m, f"messages[{i}]") for i, m in enumerate(messages)]
        turns = _expect(data.get("turns", []), (list,), "turns", "a list of turn records")
        turns = [_turn(t, f"turns[{i}]", messages) for i, t in enumerate(turns)]
    except _Wrong as wrong:
        raise ConversationFileError(f"{name!r} is not a conversation this course can load: {wrong}.",
                                    fix=_FIX) from None
    return SavedConversation(system, model, detail, max_tokens, drop, messages, turns)


def read_save_file(path: str | os.PathLike[str]) -> SavedConversation:
    """Read and check a file written by :func:`write_save_file`.

    >>> read_save_file("no_such_chat.json")
    Traceback (most recent call last):
    ...
    helpers.errors.ConversationFileError: There is no saved conversation at 'no_such_chat.json'. What to do: check the path; Conversation.save(path) writes one.
    """
    source = Path(path)
    if not source.is_file():
        raise ConversationFileError(f"There is no saved conversation at {source.name!r}.",
                                    fix="check the path; Conversation.save(path) writes one.")
    try:
        data = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        cut = err.pos >= len(err.doc.rstrip()) or err.msg.startswith("Unterminated string")
        where = "it ends too early: the file was cut short" if cut else f"line {err.lineno}, column {err.colno}"
        raise ConversationFileError(f"{source.name!r} is not valid JSON ({err.msg}; {where}).",
                                    fix="load a file written by Conversation.save().") from None
    except UnicodeDecodeError as err:
        raise ConversationFileError(f"{source.name!r} is not valid JSON ({err}).",
                                    fix="load a file written by Conversation.save().") from None
    except RecursionError:
        raise ConversationFileError(f"{source.name!r} is not valid JSON (it is nested too deeply to read).",
                                    fix="load a file written by Conversation.save().") from None
    except OSError as err:
        raise ConversationFileError(f"{source.name!r} cannot be read ({err.strerror or err}).",
                                    fix="check the file's permissions, or copy it somewhere you own.") from None
    return check_save_data(data, source.name)
