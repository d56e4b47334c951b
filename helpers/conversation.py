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
passwords are replaced by ``***`` before anything is written. Reading checks the file against pydantic models
(:class:`ConversationRecord` and the records inside it, strict: ``"1"`` is not ``1``), accepts exactly what
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
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

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

__all__ = [
    "Conversation", "ConversationFileError", "FORMAT_NAME", "FORMAT_VERSION", "ImageInfo",
    "SavedConversation", "Turn", "ConversationRecord", "ImageRecord", "MessageRecord", "TurnRecord",
    "check_save_data", "read_save_file", "write_save_file",
]


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
# The file is described by pydantic models (strict: "1" is not 1, "yes" is not true; unknown keys are ignored);
# every validation error becomes a ConversationFileError that names the part that is wrong.

def _type_name(value: Any) -> str:
    return {dict: "an object", list: "a list", str: "a string", bool: "true/false", type(None): "null",
            int: "a whole number", float: "a number"}.get(type(value), type(value).__name__)


def _wrong(text: str, where: str = "") -> PydanticCustomError:
    """A problem a validator found; ``where`` is the path below the field being validated."""
    return PydanticCustomError("conversation_file", "{text}", {"text": text, "where": where})


def _sendable(text: str) -> str:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as err:
        raise _wrong(f"holds {ascii(text[err.start])}, a lone UTF-16 surrogate that cannot be sent") from None
    return text


def _unsendable(value: Any, where: str = "") -> tuple[str, str] | None:
    """The first string anywhere inside ``value`` that cannot be sent: (where, what is wrong)."""
    if isinstance(value, str):
        try:
            _sendable(value)
        except PydanticCustomError as err:
            return where, str(err)
    elif isinstance(value, dict):
        for key, item in value.items():
            found = _unsendable(key, f"{where} (a key)") or _unsendable(item, f"{where}.{key}")
            if found:
                return found
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found = _unsendable(item, f"{where}[{index}]")
            if found:
                return found
    return None


Sendable = Annotated[str, AfterValidator(_sendable)]
Count = Annotated[int, Field(ge=0)]


class _Record(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class ImageRecord(_Record):
    """An image of a turn, as saved: its display name and the size the model received."""

    name: Sendable
    width: Count | None = None
    height: Count | None = None


class TurnRecord(_Record):
    """One turn as saved (:class:`Turn`)."""

    user_index: Count
    images: list[ImageRecord] = []
    prompt_tokens: Count | None = None
    completion_tokens: Count | None = None
    finish_reason: Sendable | None = None
    model: Sendable | None = None
    images_omitted: Count = 0


def _part_problem(part: Any) -> tuple[str, str] | None:
    """What is wrong with one content part, as (path below the part, problem), or None."""
    if not isinstance(part, dict):
        return "", f'is {_type_name(part)}, not an object such as {{"type": "text", "text": "..."}}'
    kind = part.get("type")
    if kind is None:
        return "", 'has no "type"'
    if not isinstance(kind, str):
        return ".type", f"is {_type_name(kind)}, not a string"
    if kind == "text" and not isinstance(part.get("text"), str):
        return ".text", f"is {_type_name(part.get('text'))}, not a string"
    if kind == "image_url":
        image = part.get("image_url")
        if not isinstance(image, dict):
            return ".image_url", f'is {_type_name(image)}, not an object with a "url"'
        if not isinstance(image.get("url"), str):
            return ".image_url.url", f"is {_type_name(image.get('url'))}, not a string"
        if "detail" in image and not isinstance(image["detail"], str):
            return ".image_url.detail", f"is {_type_name(image['detail'])}, not a string"
    return None


class MessageRecord(_Record):
    """A Chat Completions message as saved: a known role and sendable content (text, content parts, or null for
    an assistant's tool call); other keys (``tool_calls``, ``name``...) are kept as they are."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)

    role: str
    content: Any

    @field_validator("role")
    @classmethod
    def _known_role(cls, role: str) -> str:
        if role not in _ROLES:
            raise _wrong(f"is {role!r}, not one of {', '.join(_ROLES)}")
        return role

    @field_validator("content")
    @classmethod
    def _sendable_content(cls, content: Any, info: ValidationInfo) -> Any:
        if isinstance(content, list):
            for index, part in enumerate(content):
                problem = _part_problem(part)
                if problem:
                    raise _wrong(problem[1], f"[{index}]{problem[0]}")
        elif not (content is None and info.data.get("role") == "assistant") and not isinstance(content, str):
            raise _wrong(f"is {_type_name(content)}, not a string")
        return content

    @model_validator(mode="after")
    def _every_string_sendable(self) -> MessageRecord:
        found = _unsendable(self.model_dump())
        if found:
            raise _wrong(found[1], found[0])
        return self


class ConversationRecord(_Record):
    """A save file's contents after its ``format`` and ``version`` are known (:func:`check_save_data`)."""

    format: Literal["gpt-vision-course/conversation"]
    version: Annotated[int, Field(ge=1, le=FORMAT_VERSION)]
    system: Sendable | None = None
    model: Sendable | None = None
    detail: Sendable = "auto"
    max_tokens: Annotated[int, Field(ge=1)] = 1000
    drop_old_images: bool = False
    messages: list[MessageRecord]
    turns: list[TurnRecord] = []

    @field_validator("detail")
    @classmethod
    def _known_detail(cls, detail: str) -> str:
        if detail not in DETAILS:
            raise _wrong(f"is {detail!r}, not one of {', '.join(map(repr, DETAILS))}")
        return detail

    @model_validator(mode="after")
    def _turns_point_at_questions(self) -> ConversationRecord:
        for number, turn in enumerate(self.turns):
            index = turn.user_index
            if index >= len(self.messages) or self.messages[index].role != "user":
                raise _wrong(f"is {index}, which is not the index of a user message", f"turns[{number}].user_index")
        return self


_WANTED = {"string_type": "a string", "int_type": "a whole number", "bool_type": "true or false",
           "list_type": "a list", "model_type": "an object", "dict_type": "an object",
           "model_attributes_type": "an object"}


def _path(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _explain(error: Any) -> str:
    """One pydantic error as the course says it: the part of the file, what it is, what it should be."""
    where, kind, value, ctx = _path(error["loc"]), error["type"], error.get("input"), error.get("ctx") or {}
    if kind == "conversation_file":
        below = ctx.get("where", "")
        where += below
        return f"{where} {ctx['text']}"
    if kind == "missing":
        parent, name = _path(error["loc"][:-1]), error["loc"][-1]
        return f'{parent} has no "{name}"' if parent else f'there is no "{name}"' + (" list" if name in
                                                                                    ("messages", "turns") else "")
    if kind in _WANTED:
        return f"{where} is {_type_name(value)}, not {_WANTED[kind]}"
    if kind in ("greater_than_equal", "less_than_equal"):
        return f"{where} is {value!r}, {'less' if kind == 'greater_than_equal' else 'more'} than " \
               f"{ctx.get('ge', ctx.get('le'))}"
    return f"{where}: {error['msg']}"


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
        record = ConversationRecord.model_validate(data)
    except ValidationError as err:
        raise ConversationFileError(f"{name!r} is not a conversation this course can load: "
                                    f"{_explain(err.errors()[0])}.", fix=_FIX) from None
    turns = [Turn(user_index=t.user_index, images=tuple(ImageInfo(i.name, i.width, i.height) for i in t.images),
                  prompt_tokens=t.prompt_tokens, completion_tokens=t.completion_tokens,
                  finish_reason=t.finish_reason, model=t.model, images_omitted=t.images_omitted)
             for t in record.turns]
    return SavedConversation(record.system, record.model, record.detail, record.max_tokens, record.drop_old_images,
                             list(data["messages"]), turns)


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
            who = {"system": "System", "user": "You", "assistant": "Assistant"}.get(str(role), str(role).title())
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
