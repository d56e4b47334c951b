"""A conversation with history: :class:`Conversation` keeps the messages, per-turn usage and saves itself.

Built on the one request path of :mod:`helpers.chat` (every turn is a :func:`helpers.chat.send`), and on
its save file (below). It records per-turn token usage, can stop re-sending old
images (``drop_old_images``), saves/loads itself as JSON (URL passwords redacted; malformed files give a
:class:`~helpers.errors.ConversationFileError` naming what is wrong) and renders itself as Markdown.

Taught in notebooks/09_conversations.ipynb (and used in notebooks/03_multiple_images.ipynb and
notebooks/04_detail_levels.ipynb).

>>> chat = Conversation("Answer in one sentence.", drop_old_images=True)
>>> chat
Conversation(turns=0, messages=1, model=None, detail='auto', drop_old_images=True)

**Conversation file** (until issue 20 ``helpers.conversation_file``). A conversation's save file: its JSON format, the atomic write, and a reader that checks every part.

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
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from helpers.chat import (
    ImageInfo,
    as_sources,
    check_max_tokens,
    check_text,
    data_url_size,
    image_content,
    nothing_to_send,
    redacted_body,
    request_body,
    send,
    source_name,
    target_for,
    user_message,
)
from helpers.config import Settings
from helpers.errors import ConversationFileError
from helpers.redaction import redact_url
from helpers.tokens import DETAILS, check_detail

__all__ = ['Conversation', 'ConversationFileError', 'FORMAT_NAME', 'FORMAT_VERSION', 'ImageInfo', 'SavedConversation', 'Turn', 'check_save_data', 'read_save_file', 'write_save_file']


# ====================================================================================================
# conversation file (formerly helpers/conversation_file.py)
# ====================================================================================================

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

# ====================================================================================================
# conversation
# ====================================================================================================

class Conversation:
    """A chat with history: each :meth:`ask` sends the earlier turns plus the new one and returns the reply.

    * A turn is added to :attr:`messages` only when the request succeeds; after any error the history is
      exactly what it was, so you can fix the problem and ask again.
    * :attr:`last_request` is the body of the latest request (URL passwords shown as ``***``); :attr:`turns`
      has per-turn token usage.
    * ``drop_old_images=True`` stops paying for old images again: only the images of the newest turn that has
      any are sent; older ones become a short text note ``[image sent earlier: NAME, W×H, omitted to save
      tokens]``. (A text-only follow-up keeps the previous turn's images, since it is usually about them.)
    * :meth:`save` writes JSON atomically (URL passwords redacted, so such an image cannot be re-sent after
      :meth:`load`); :meth:`load` restores it, or raises ConversationFileError naming what is wrong;
      :meth:`as_markdown` renders it.

    >>> chat = Conversation("Answer in one sentence.", drop_old_images=True)   # doctest: +SKIP
    >>> chat.ask("What is written here?", images=["../images/handwriting_en.jpg"])  # doctest: +SKIP
    >>> chat.ask("And who might have written it?")                               # doctest: +SKIP

    Taught in notebooks/09_conversations.ipynb.
    """

    def __init__(self, system: str | None = None, *, model: str | None = None, detail: str = "auto",
                 max_tokens: int = 1000, drop_old_images: bool = False, settings: Settings | None = None) -> None:
        if system is not None:
            check_text(system, "system")
        self.system = system
        self.model = model
        #: Whom to ask: None = the settings setup() resolved; e.g. ``offline_settings()`` for a local-only demo.
        self.settings = settings
        self.detail = check_detail(detail)
        self.max_tokens = check_max_tokens(max_tokens)
        self.drop_old_images = bool(drop_old_images)
        self.messages: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
        self.turns: list[Turn] = []
        self.last_request: dict[str, Any] | None = None
        self.last_response: Any = None

    def __repr__(self) -> str:
        return (f"Conversation(turns={len(self.turns)}, messages={len(self.messages)}, model={self.model!r}, "
                f"detail={self.detail!r}, drop_old_images={self.drop_old_images})")

    # -- asking --------------------------------------------------------------------------------

    def ask(self, text: str, images: Any = (), detail: str | None = None, max_tokens: int | None = None) -> str:
        """Send the history plus this question (and images); return the reply and add the turn to the history.

        ``images``: one or several paths, URLs, bytes or PIL images. ``detail``/``max_tokens`` override the
        conversation's defaults for this turn only.

        >>> chat.ask("Describe it.", images="../images/landscape_summer_palace.jpg", detail="low")   # doctest: +SKIP
        """
        text = check_text(text)
        detail = check_detail(self.detail if detail is None else detail)
        max_tokens = check_max_tokens(self.max_tokens if max_tokens is None else max_tokens)
        sources = as_sources(images)
        if not text.strip() and not sources:
            raise nothing_to_send()
        target = target_for(self.model, self.settings)
        prepared = [image_content(src, detail, target.cost_model, i) for i, src in enumerate(sources)]
        user = user_message(text, [part for part, _ in prepared])
        infos = tuple(info for _, info in prepared)
        outgoing, omitted = self._outgoing(user, has_images=bool(infos))
        body = request_body(target, outgoing, max_tokens)
        self.last_request = redacted_body(body)
        done = send(target, body)
        # Success: only now does the history change.
        self.messages.append(user)
        self.messages.append({"role": "assistant", "content": done.reply})
        self.turns.append(Turn(user_index=len(self.messages) - 2, images=infos, prompt_tokens=done.prompt_tokens,
                               completion_tokens=done.completion_tokens, finish_reason=done.finish_reason,
                               model=done.model, images_omitted=omitted))
        self.last_response = done.response
        return done.reply

    def _image_info(self, message_index: int, ordinal: int, part: dict[str, Any]) -> ImageInfo:
        for turn in self.turns:
            if turn.user_index == message_index and ordinal < len(turn.images):
                return turn.images[ordinal]
        url = str(part.get("image_url", {}).get("url", ""))
        width, height = data_url_size(url)
        return ImageInfo(source_name(url, ordinal) if not url.startswith("data:") else f"image {ordinal + 1}",
                         width, height)

    def _outgoing(self, user: dict[str, Any], *, has_images: bool) -> tuple[list[dict[str, Any]], int]:
        """The messages to send for a new ``user`` turn, and how many old images were replaced by notes."""
        history = list(self.messages)
        if not self.drop_old_images:
            return history + [user], 0
        keep = -1  # index of the latest user message whose images stay, when the new turn has none
        if not has_images:
            for index in range(len(history) - 1, -1, -1):
                if _image_parts(history[index]):
                    keep = index
                    break
        outgoing: list[dict[str, Any]] = []
        omitted = 0
        for index, message in enumerate(history):
            if index == keep or not _image_parts(message):
                outgoing.append(message)
                continue
            content = []
            ordinal = 0
            for part in message["content"]:
                if isinstance(part, dict) and part.get("type") == "image_url":
                    info = self._image_info(index, ordinal, part)
                    content.append({"type": "text",
                                    "text": f"[image sent earlier: {info.label()}, omitted to save tokens]"})
                    ordinal += 1
                    omitted += 1
                else:
                    content.append(part)
            outgoing.append({**message, "content": content})
        return outgoing + [user], omitted

    # -- usage ---------------------------------------------------------------------------------

    @property
    def usage(self) -> list[dict[str, Any]]:
        """Per-turn token usage: ``[{'turn': 1, 'prompt_tokens': ..., 'completion_tokens': ..., ...}, ...]``."""
        return [{"turn": n, "prompt_tokens": t.prompt_tokens, "completion_tokens": t.completion_tokens,
                 "total_tokens": t.total_tokens, "images_sent": len(t.images), "images_omitted": t.images_omitted,
                 "finish_reason": t.finish_reason}
                for n, t in enumerate(self.turns, start=1)]

    def total_tokens(self) -> int:
        """Prompt plus completion tokens over all turns (turns without usage count as 0)."""
        return sum(t.total_tokens or 0 for t in self.turns)

    # -- persistence ---------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The JSON-ready form :meth:`save` writes (with a format name and version; URL passwords redacted).

        >>> Conversation("Be brief.").to_dict()["messages"]
        [{'role': 'system', 'content': 'Be brief.'}]
        """
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "system": self.system,
            "model": self.model,
            "detail": self.detail,
            "max_tokens": self.max_tokens,
            "drop_old_images": self.drop_old_images,
            "messages": redacted_body(self.messages),
            "turns": redacted_body([asdict(t) for t in self.turns]),
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to ``path`` as JSON, atomically: a crash never leaves a half-written file.

        The JSON goes to a temporary file in the same folder, which then replaces ``path`` in one step.

        >>> chat.save("conversations/summer_palace.json")   # doctest: +SKIP
        """
        return write_save_file(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Conversation:
        """Restore a conversation written by :meth:`save`.

        >>> chat = Conversation.load("conversations/summer_palace.json")   # doctest: +SKIP
        """
        saved = read_save_file(path)
        chat = cls(saved.system, model=saved.model, detail=saved.detail, max_tokens=saved.max_tokens,
                   drop_old_images=saved.drop_old_images)
        chat.messages = saved.messages
        chat.turns = saved.turns
        return chat

    # -- rendering -----------------------------------------------------------------------------

    def as_markdown(self) -> str:
        """The conversation as Markdown (images appear as ``*[image: NAME, W×H]*``; no data, no paths).

        >>> from helpers.display import show_markdown
        >>> show_markdown(chat.as_markdown())   # doctest: +SKIP
        """
        blocks = []
        for index, message in enumerate(self.messages):
            role = message.get("role")
            who = {"system": "System", "user": "You", "assistant": "Assistant"}.get(role, str(role).title())
            content = message.get("content")
            if isinstance(content, str):
                body = content
            else:
                lines = []
                ordinal = 0
                for part in content or []:
                    if part.get("type") == "text":
                        lines.append(part.get("text", ""))
                    elif part.get("type") == "image_url":
                        lines.append(f"*[image: {self._image_info(index, ordinal, part).label()}]*")
                        ordinal += 1
                body = "\n\n".join(line for line in lines if line)
            blocks.append(f"**{who}:** {body}")
        return redact_url("\n\n".join(blocks))


def _image_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
