"""A conversation with history: :class:`Conversation` keeps the messages, per-turn usage and saves itself.

Built on the one request path of :mod:`helpers.chat` (every turn is a :func:`helpers.chat.send`), and on
:mod:`helpers.conversation_file` for the save file. It records per-turn token usage, can stop re-sending old
images (``drop_old_images``), saves/loads itself as JSON (URL passwords redacted; malformed files give a
:class:`~helpers.errors.ConversationFileError` naming what is wrong) and renders itself as Markdown.

Taught in notebooks/09_conversations.ipynb (and used in notebooks/03_multiple_images.ipynb and
notebooks/04_detail_levels.ipynb).

>>> chat = Conversation("Answer in one sentence.", drop_old_images=True)
>>> chat
Conversation(turns=0, messages=1, model=None, detail='auto', drop_old_images=True)
"""

from __future__ import annotations

import os
from dataclasses import asdict
from pathlib import Path
from typing import Any

from helpers.chat import request_body, send, target_for
from helpers.chat_parts import (
    ImageInfo,
    as_sources,
    check_max_tokens,
    check_text,
    data_url_size,
    image_content,
    nothing_to_send,
    redacted_body,
    source_name,
    user_message,
)
from helpers.config import Settings
from helpers.conversation_file import FORMAT_NAME, FORMAT_VERSION, Turn, read_save_file, write_save_file
from helpers.errors import ConversationFileError
from helpers.redaction import redact_url
from helpers.tokens import check_detail

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "Conversation", "ConversationFileError", "ImageInfo", "Turn"]


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
