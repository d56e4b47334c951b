"""Asking a vision model about images: the source notebook's two functions, and a Conversation with history.

The two functions keep the names, arguments and return shapes of the course's source notebook, so its cells
still run, but fixed: one cached client (not one per call), the image's real MIME type and a prepared (oriented,
resized, metadata-stripped) image via :func:`helpers.images.image_part` instead of ``image/jpeg`` for every file,
exceptions instead of error strings, and the caller's history list is never modified.

>>> from helpers.chat import query_image_description, query_base64_image_description
>>> text = query_image_description(course_image_url("landscape_summer_palace.jpg"))             # doctest: +SKIP
>>> data = query_base64_image_description("../images/handwriting_en.jpg")           # doctest: +SKIP
>>> data = query_base64_image_description("", "And the second line?", data["messages"], data["current_reply"])  # doctest: +SKIP

:class:`Conversation` keeps the history for you, records per-turn token usage, can stop re-sending old images,
and saves/loads itself as JSON.

Every request goes through :func:`complete`: it checks the model is not retired, sends the body with the cached
client (the SDK retries 429/5xx/timeouts, honouring Retry-After), turns SDK exceptions into the course's
(:func:`helpers.client.translate_error`) and shows a notice when the answer was cut at ``max_tokens``.

Taught in notebooks/01_image_urls.ipynb, notebooks/02_local_images_base64.ipynb and notebooks/09_conversations.ipynb.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from helpers import models
from helpers.client import active_settings, get_client, translate_error
from helpers.config import Settings, check_model
from helpers.display import notify_truncated
from helpers.errors import BadRequestError, CourseError, ServiceError
from helpers.tokens import check_detail, is_known_model

__all__ = [
    "Completion",
    "Conversation",
    "ConversationFileError",
    "ImageInfo",
    "Turn",
    "complete",
    "last_request",
    "token_limit_field",
    "query_base64_image_description",
    "query_image_description",
    "translate_error",
]

DEFAULT_URL_PROMPT = "Describe this image."
DEFAULT_IMAGE_PROMPT = "What does this image show? Can you analyse it?"
FORMAT_NAME = "gpt-vision-course/conversation"
FORMAT_VERSION = 1

_LAST_REQUEST: dict[str, Any] | None = None


class ConversationFileError(CourseError, ValueError):
    """A saved conversation file that cannot be read (not JSON, another format, a newer version)."""


# --- small value types --------------------------------------------------------------------------

@dataclass(frozen=True)
class ImageInfo:
    """What the course remembers about an image it sent: a display name and the size the model received."""

    name: str
    width: int | None = None
    height: int | None = None

    def label(self) -> str:
        size = f", {self.width}×{self.height}" if self.width and self.height else ""
        return f"{self.name}{size}"


@dataclass(frozen=True)
class Turn:
    """One successful question and answer: where it sits in ``messages``, its images and its token usage."""

    user_index: int
    images: tuple[ImageInfo, ...] = ()
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    finish_reason: str | None = None
    model: str | None = None
    images_omitted: int = 0

    @property
    def total_tokens(self) -> int | None:
        if self.prompt_tokens is None or self.completion_tokens is None:
            return None
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Completion:
    """What :func:`complete` returns: the reply and the facts a notebook may want to show."""

    reply: str
    finish_reason: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    model: str
    request: dict[str, Any] = field(repr=False)
    response: Any = field(repr=False, default=None)


# --- validation ---------------------------------------------------------------------------------

def _check_max_tokens(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise BadRequestError(f"max_tokens must be a positive whole number, got {value!r}.", code="invalid_max_tokens",
                              fix="pass e.g. max_tokens=300 (the longest answer you want, in tokens).")
    return value


_check_detail = check_detail


def _check_text(text: Any, what: str = "text") -> str:
    if not isinstance(text, str):
        raise BadRequestError(f"{what} must be a string, got {type(text).__name__}.", code="invalid_text",
                              fix=f"pass the question as a str, e.g. {what}='What is in this image?'.")
    return text


def _nothing_to_send() -> BadRequestError:
    return BadRequestError("Nothing to send: the question is empty and there is no image.", code="empty_message",
                           fix="ask a question, attach an image, or both.")


def _as_sources(images: Any) -> list[Any]:
    """One image or several: a single path/URL/bytes/PIL image is not iterated character by character."""
    if images is None:
        return []
    if isinstance(images, (str, bytes, bytearray, os.PathLike)) or not isinstance(images, Iterable) \
            or hasattr(images, "__array_interface__"):
        return [images]
    try:
        from PIL import Image

        if isinstance(images, Image.Image):
            return [images]
    except ImportError:  # pragma: no cover - Pillow is a course dependency
        pass
    return list(images)


# --- images -------------------------------------------------------------------------------------

def _source_name(source: Any, index: int) -> str:
    if isinstance(source, (str, os.PathLike)):
        text = os.fspath(source)
        if text.startswith(("http://", "https://")):
            return unquote(urlsplit(text).path.rsplit("/", 1)[-1]) or urlsplit(text).netloc
        if not text.startswith("data:"):
            return Path(text).name
    name = getattr(source, "source_name", None) or getattr(source, "filename", None)
    return Path(str(name)).name if name else f"image {index + 1}"


def _data_url_size(url: str) -> tuple[int | None, int | None]:
    if not url.startswith("data:"):
        return None, None
    from PIL import Image

    from helpers.images import decode_data_url

    try:
        _, data = decode_data_url(url)
        with Image.open(io.BytesIO(data)) as picture:  # reads the header only
            return picture.size
    except Exception:  # noqa: BLE001 - only a label; the server judges the image itself
        return None, None


def _image_part(source: Any, detail: str, cost_model: str | None, index: int) -> tuple[dict[str, Any], ImageInfo]:
    """The content part for one image (via helpers.images.image_part) and what to remember about it."""
    from helpers.images import image_part, is_http_url, prepare_image

    name = _source_name(source, index)
    if isinstance(source, str) and is_http_url(source):  # the provider downloads it: size unknown here
        return image_part(source, detail=detail), ImageInfo(name, None, None)
    prepared = prepare_image(source, detail=detail, model=cost_model)  # once; its size comes with it
    return image_part(prepared, detail=detail), ImageInfo(name, prepared.width, prepared.height)


def _user_message(text: str, parts: Sequence[dict[str, Any]]) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text or not parts else []
    return {"role": "user", "content": content + list(parts)}


# --- the one request path -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Target:
    settings: Settings
    client: Any
    request_model: str        # what goes in "model": the deployment name on Azure
    model: str                # the model behind it (decides the token-limit field)
    cost_model: str | None    # ``model`` if the cost tables know it


def _target(model: str | None, settings: Settings | None = None) -> _Target:
    settings = settings if settings is not None else active_settings()
    client = get_client(settings)
    request_model = check_model(model) if model else settings.request_model
    behind = models.model_behind(request_model)    # the configured Azure deployment -> its model
    return _Target(settings, client, request_model, behind, behind if is_known_model(behind) else None)


def token_limit_field(model: str, provider: str = "openai") -> str:
    """The request field for the answer's length limit; see :func:`helpers.models.token_limit_field`.

    >>> token_limit_field("gpt-5.4-mini", "compatible"), token_limit_field("llava", "compatible")
    ('max_completion_tokens', 'max_tokens')
    """
    return models.token_limit_field(model, provider)


def _body(target: _Target, messages: list[dict[str, Any]], max_tokens: int) -> dict[str, Any]:
    return {"model": target.request_model, "messages": messages,
            token_limit_field(target.model, target.settings.provider): max_tokens}


def last_request() -> dict[str, Any] | None:
    """A copy of the exact body of the most recent request sent by this module (or None).

    >>> query_image_description("https://example.com/cat.png")   # doctest: +SKIP
    >>> last_request()["messages"][0]["content"][1]["image_url"]["url"]  # doctest: +SKIP
    'https://example.com/cat.png'
    """
    return copy.deepcopy(_LAST_REQUEST)


_NOT_CHAT_COMPLETIONS = ("check that the endpoint speaks the Chat Completions API (OPENAI_BASE_URL / "
                         "AZURE_OPENAI_ENDPOINT; a compatible engine's URL usually ends with /v1).")


def _send(target: _Target, body: dict[str, Any]) -> Completion:
    global _LAST_REQUEST
    _LAST_REQUEST = copy.deepcopy(body)
    try:
        response = target.client.chat.completions.create(**body)
    except json.JSONDecodeError as err:  # a 200 whose body is not JSON: not a Chat Completions endpoint
        raise ServiceError(f"The provider answered with a body that is not valid JSON ({err.msg}).", status=None,
                           code="invalid_json", fix=_NOT_CHAT_COMPLETIONS) from None
    except Exception as err:  # noqa: BLE001 - every SDK error becomes a course error; others pass through
        translated = translate_error(err, target.settings)
        if translated is err:
            raise
        raise translated from None
    choices = getattr(response, "choices", None)
    if not choices or not isinstance(choices, list):
        raise ServiceError("The provider answered without any choice.", status=None, code="no_choices",
                           fix=_NOT_CHAT_COMPLETIONS)
    choice = choices[0]
    content = getattr(getattr(choice, "message", None), "content", None)
    if getattr(choice, "message", None) is None or not (content is None or isinstance(content, str)):
        raise ServiceError("The provider's answer has no message in its first choice.", status=None,
                           code="malformed_response", fix=_NOT_CHAT_COMPLETIONS)
    usage = getattr(response, "usage", None)
    completion = Completion(
        reply=content or "",
        finish_reason=choice.finish_reason,
        prompt_tokens=getattr(usage, "prompt_tokens", None),
        completion_tokens=getattr(usage, "completion_tokens", None),
        model=body["model"],
        request=body,
        response=response,
    )
    if completion.finish_reason == "length":
        limit = body.get("max_completion_tokens", body.get("max_tokens"))
        notify_truncated(limit, empty=not completion.reply.strip())
    return completion


def complete(messages: Sequence[dict[str, Any]], *, max_tokens: int = 1000, model: str | None = None) -> Completion:
    """Send ``messages`` as one Chat Completions request and return the :class:`Completion`.

    ``model=None`` uses the configured model (the deployment on Azure). Raises a
    :class:`~helpers.errors.RequestError` subclass on failure (after the SDK's retries), a
    :class:`~helpers.errors.RetiredModelError` before sending a retired model name.

    >>> done = complete([{"role": "user", "content": "Hello"}], max_tokens=20)   # doctest: +SKIP
    >>> done.reply, done.finish_reason                                          # doctest: +SKIP

    Taught in notebooks/01_image_urls.ipynb.
    """
    max_tokens = _check_max_tokens(max_tokens)
    if not messages:
        raise _nothing_to_send()
    target = _target(model)
    body = _body(target, list(messages), max_tokens)
    return _send(target, body)


# --- the source notebook's functions ------------------------------------------------------------

def query_image_description(url: str, prompt: str = DEFAULT_URL_PROMPT, max_tokens: int = 300, *,
                            model: str | None = None, detail: str = "auto") -> str:
    """Ask about one image given by URL (or a local path) and return the answer text.

    An ``http(s)`` URL is passed through for the provider to fetch (offline: use
    :func:`helpers.client.course_image_url`); a local path or data URL is sent inline with its real type.

    >>> query_image_description(course_image_url("landscape_summer_palace.jpg"), "What is this?")   # doctest: +SKIP
    'No language model runs offline...'

    Taught in notebooks/01_image_urls.ipynb.
    """
    prompt = _check_text(prompt, "prompt")
    _check_detail(detail)
    max_tokens = _check_max_tokens(max_tokens)
    if not url:
        raise BadRequestError("No image URL given.", code="missing_image",
                              fix="pass an https:// URL, course_image_url('NAME'), or a local file path.")
    target = _target(model)
    part, _ = _image_part(url, detail, target.cost_model, 0)
    body = _body(target, [_user_message(prompt, [part])], max_tokens)
    return _send(target, body).reply


def query_base64_image_description(image_path: str | os.PathLike[str] | None,
                                   prompt: str = DEFAULT_IMAGE_PROMPT,
                                   history_message: list[dict[str, Any]] | None = None,
                                   last_reply: str | None = None,
                                   max_tokens: int = 1000, *,
                                   model: str | None = None, detail: str = "auto") -> dict[str, Any]:
    """Ask about a local image (sent inline as a data URL), optionally continuing an earlier exchange.

    ``image_path=""`` sends a text-only follow-up. ``history_message`` and ``last_reply`` are the
    ``messages`` and ``current_reply`` of the previous call; they are copied, never modified. Returns
    ``{'messages': <the messages sent>, 'current_reply': <the answer>}`` exactly like the source notebook.

    >>> data = query_base64_image_description("../images/gdp_chart.png")                      # doctest: +SKIP
    >>> data = query_base64_image_description("", "What is missing?", data["messages"], data["current_reply"])  # doctest: +SKIP

    Taught in notebooks/02_local_images_base64.ipynb.
    """
    prompt = _check_text(prompt, "prompt")
    _check_detail(detail)
    max_tokens = _check_max_tokens(max_tokens)
    has_image = image_path is not None and os.fspath(image_path) != ""
    if not has_image and not prompt.strip():
        raise _nothing_to_send()
    if history_message is not None and not isinstance(history_message, list):
        raise BadRequestError("history_message must be the list of messages returned by the previous call.",
                              code="invalid_history", fix="pass data['messages'] from the previous result.")
    target = _target(model)
    parts = [_image_part(image_path, detail, target.cost_model, 0)[0]] if has_image else []
    messages: list[dict[str, Any]] = copy.deepcopy(history_message) if history_message else []
    if last_reply is not None:
        messages.append({"role": "assistant", "content": last_reply})
    messages.append(_user_message(prompt, parts))
    body = _body(target, messages, max_tokens)
    reply = _send(target, body).reply
    return {"messages": copy.deepcopy(messages), "current_reply": reply}


# --- conversations ------------------------------------------------------------------------------

def _remove_stale_temp_files(target: Path, *, older_than: float = 3600.0) -> None:
    """Delete temp files of earlier saves of ``target`` that a killed process left behind (an hour old)."""
    import time

    cutoff = time.time() - older_than
    for leftover in target.parent.glob(f".{target.name}.*.tmp"):
        with contextlib.suppress(OSError):
            if leftover.stat().st_mtime < cutoff:
                leftover.unlink()


class Conversation:
    """A chat with history: each :meth:`ask` sends the earlier turns plus the new one and returns the reply.

    * A turn is added to :attr:`messages` only when the request succeeds; after any error the history is
      exactly what it was, so you can fix the problem and ask again.
    * :attr:`last_request` is the exact body of the latest request; :attr:`turns` has per-turn token usage.
    * ``drop_old_images=True`` stops paying for old images again: only the images of the newest turn that has
      any are sent; older ones become a short text note ``[image sent earlier: NAME, W×H, omitted to save
      tokens]``. (A text-only follow-up keeps the previous turn's images, since it is usually about them.)
    * :meth:`save` writes JSON atomically; :meth:`load` restores it; :meth:`as_markdown` renders it.

    >>> chat = Conversation("Answer in one sentence.", drop_old_images=True)   # doctest: +SKIP
    >>> chat.ask("What is written here?", images=["../images/handwriting_en.jpg"])  # doctest: +SKIP
    >>> chat.ask("And who might have written it?")                               # doctest: +SKIP

    Taught in notebooks/09_conversations.ipynb.
    """

    def __init__(self, system: str | None = None, *, model: str | None = None, detail: str = "auto",
                 max_tokens: int = 1000, drop_old_images: bool = False, settings: Settings | None = None) -> None:
        if system is not None:
            _check_text(system, "system")
        self.system = system
        self.model = model
        #: Whom to ask: None = the settings setup() resolved; e.g. ``offline_settings()`` for a local-only demo.
        self.settings = settings
        self.detail = _check_detail(detail)
        self.max_tokens = _check_max_tokens(max_tokens)
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
        text = _check_text(text)
        detail = _check_detail(self.detail if detail is None else detail)
        max_tokens = _check_max_tokens(self.max_tokens if max_tokens is None else max_tokens)
        sources = _as_sources(images)
        if not text.strip() and not sources:
            raise _nothing_to_send()
        target = _target(self.model, self.settings)
        prepared = [_image_part(src, detail, target.cost_model, i) for i, src in enumerate(sources)]
        user = _user_message(text, [part for part, _ in prepared])
        infos = tuple(info for _, info in prepared)
        outgoing, omitted = self._outgoing(user, has_images=bool(infos))
        body = _body(target, outgoing, max_tokens)
        self.last_request = copy.deepcopy(body)
        done = _send(target, body)
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
        width, height = _data_url_size(url)
        return ImageInfo(_source_name(url, ordinal) if not url.startswith("data:") else f"image {ordinal + 1}",
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
        """The JSON-ready form :meth:`save` writes (with a format name and version)."""
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "system": self.system,
            "model": self.model,
            "detail": self.detail,
            "max_tokens": self.max_tokens,
            "drop_old_images": self.drop_old_images,
            "messages": copy.deepcopy(self.messages),
            "turns": [asdict(t) for t in self.turns],
        }

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the conversation to ``path`` as JSON, atomically: a crash never leaves a half-written file.

        The JSON goes to a temporary file in the same folder, which then replaces ``path`` in one step.

        >>> chat.save("conversations/summer_palace.json")   # doctest: +SKIP
        """
        target = Path(path)
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as stream:
                json.dump(self.to_dict(), stream, ensure_ascii=False, indent=1)
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

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Conversation:
        """Restore a conversation written by :meth:`save`.

        >>> chat = Conversation.load("conversations/summer_palace.json")   # doctest: +SKIP
        """
        source = Path(path)
        if not source.is_file():
            raise ConversationFileError(f"There is no saved conversation at {source.name!r}.",
                                        fix="check the path; Conversation.save(path) writes one.")
        try:
            data = json.loads(source.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as err:
            raise ConversationFileError(f"{source.name!r} is not valid JSON ({err.msg if hasattr(err, 'msg') else err}).",
                                        fix="load a file written by Conversation.save().") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise ConversationFileError(f"{source.name!r} is not a saved Conversation.",
                                        fix="load a file written by Conversation.save().")
        version = data.get("version")
        if not isinstance(version, int) or version > FORMAT_VERSION or version < 1:
            raise ConversationFileError(
                f"{source.name!r} uses conversation format version {version!r}; this course reads up to "
                f"{FORMAT_VERSION}.", fix="update the course helpers (git pull) or re-create the conversation.")
        chat = cls(data.get("system"), model=data.get("model"), detail=data.get("detail", "auto"),
                   max_tokens=data.get("max_tokens", 1000), drop_old_images=data.get("drop_old_images", False))
        messages = data.get("messages", [])
        if not isinstance(messages, list) or not all(isinstance(m, dict) and "role" in m for m in messages):
            raise ConversationFileError(f"{source.name!r} has no valid message list.",
                                        fix="load a file written by Conversation.save().")
        chat.messages = messages
        chat.turns = [Turn(user_index=t["user_index"], images=tuple(ImageInfo(**i) for i in t.get("images", ())),
                           prompt_tokens=t.get("prompt_tokens"), completion_tokens=t.get("completion_tokens"),
                           finish_reason=t.get("finish_reason"), model=t.get("model"),
                           images_omitted=t.get("images_omitted", 0))
                      for t in data.get("turns", [])]
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
        return "\n\n".join(blocks)


def _image_parts(message: dict[str, Any]) -> list[dict[str, Any]]:
    content = message.get("content")
    if message.get("role") != "user" or not isinstance(content, list):
        return []
    return [p for p in content if isinstance(p, dict) and p.get("type") == "image_url"]
