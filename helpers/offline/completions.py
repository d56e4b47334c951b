"""Completions: the ``chat.completion`` object and the ``chat.completion.chunk`` stream, built with the SDK's models.

Token accounting (``usage``): ``prompt_tokens`` = for every message ``PER_MESSAGE_TOKENS`` (3) + tokens of its
role + tokens of its text parts + ``helpers.tokens.image_tokens(width, height, detail, model)`` for each image
(its decoded size) [+ ``PER_NAME_TOKENS`` + tokens of ``name``], plus ``REPLY_PRIMING_TOKENS`` (3) for the
assistant reply. The constants are those of OpenAI's cookbook "How to count tokens with tiktoken"
(https://cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken, checked 2026-11-21); text tokens are
``helpers.tokens.text_tokens``. ``completion_tokens`` = ``text_tokens(answer)``. ``max_tokens`` /
``max_completion_tokens`` cut the answer at a word boundary (a character boundary if one word is already too
long) and set ``finish_reason="length"``.

>>> prompt_tokens([{"role": "user", "content": "Hi"}], {}, "gpt-4o")
8
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.completion_usage import CompletionUsage

from helpers import tokens
from helpers.offline.enhancements import content_filter_results, prompt_filter_results
from helpers.tokens import PER_MESSAGE_TOKENS, PER_NAME_TOKENS, REPLY_PRIMING_TOKENS


def json_bytes(payload: Any) -> bytes:
    """UTF-8 JSON; escaped ASCII when the payload holds a lone surrogate (legal in a JSON request body, e.g.
    ``"\\ud800"``, and echoed back in error messages) that UTF-8 cannot encode."""
    try:
        return json.dumps(payload, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(payload).encode("ascii")


def prompt_tokens(messages: list[dict[str, Any]], image_sizes: dict[tuple[int, int], tuple[int, int, str]],
                  model: str) -> int:
    """``usage.prompt_tokens`` of a request; ``image_sizes`` maps (message, part) to (width, height, detail)."""
    total = REPLY_PRIMING_TOKENS
    for i, message in enumerate(messages):
        total += PER_MESSAGE_TOKENS + tokens.text_tokens(str(message["role"]), model)
        if isinstance(message.get("name"), str):
            total += PER_NAME_TOKENS + tokens.text_tokens(message["name"], model)
        content = message.get("content")
        if isinstance(content, str):
            total += tokens.text_tokens(content, model)
        elif isinstance(content, list):
            for j, part in enumerate(content):
                if part.get("type") in ("text", "refusal"):
                    total += tokens.text_tokens(part[part["type"]], model)
                elif part.get("type") == "image_url":
                    width, height, detail = image_sizes[(i, j)]
                    total += tokens.image_tokens(width, height, detail, model)
        for key in ("tool_calls", "function_call"):
            if message.get(key):
                total += tokens.text_tokens(json.dumps(message[key], ensure_ascii=False), model)
    return total


def truncate_to_tokens(text: str, limit: int, model: str | None = None) -> tuple[str, bool]:
    """Cut ``text`` so that ``tokens.text_tokens`` of it is at most ``limit``: ``(text, was_cut)``.

    Cuts at the end of a word; if even the first word is too long, at a character.

    >>> truncate_to_tokens("one two three four", 2)
    ('one two', True)
    """
    if tokens.text_tokens(text, model) <= limit:
        return text, False
    ends = [m.end() for m in re.finditer(r"\S+", text)]
    lo, hi, best = 0, len(ends) - 1, 0
    while lo <= hi:
        mid = (lo + hi) // 2
        if tokens.text_tokens(text[:ends[mid]], model) <= limit:
            best, lo = ends[mid], mid + 1
        else:
            hi = mid - 1
    if best == 0:
        lo, hi = 0, len(text)
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if tokens.text_tokens(text[:mid], model) <= limit:
                lo = mid
            else:
                hi = mid - 1
        best = lo
    return text[:best].rstrip(), True


def stream_pieces(text: str) -> list[str]:
    """Split an answer into the content pieces of a stream (one word with its trailing space each).

    >>> stream_pieces("A cat.\\nDone")
    ['A ', 'cat.\\n', 'Done']
    """
    return re.findall(r"\s+|\S+\s*", text) if text else []


def usage_block(prompt: int, completion: int) -> CompletionUsage:
    """The ``usage`` object, with the detail fields the API sends (all zero offline)."""
    return CompletionUsage.model_validate({
        "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                      "rejected_prediction_tokens": 0}})


def _dump(model: ChatCompletion | ChatCompletionChunk) -> dict[str, Any]:
    # exclude_unset: exactly the fields the service sends (explicit nulls included), Azure's extras kept.
    return model.model_dump(mode="json", exclude_unset=True)


@dataclass(frozen=True)
class Completion:
    """The answer to one request, ready to be sent as JSON or as a stream."""

    id: str
    created: int
    model: str
    content: str
    finish_reason: str
    usage: CompletionUsage
    azure: bool
    enhancements: dict[str, Any] | None
    tool_call: tuple[str, str] | None = None    # (function name, JSON arguments) of a forced tool call
    n: int = 1
    fill: str | None = None                     # the x-offline-fill header of a structured answer
    source: str | None = None                   # the x-offline-source header (a recording is loaded)

    def _tool_calls(self) -> list[dict[str, Any]]:
        name, arguments = self.tool_call or ("", "")
        return [{"id": "call_" + self.id[-24:], "type": "function", "function": {"name": name, "arguments": arguments}}]

    def body(self) -> dict[str, Any]:
        """The ``chat.completion`` object (an SDK ``ChatCompletion``; Azure adds its filter results)."""
        choices = []
        for index in range(self.n):
            message: dict[str, Any] = {"role": "assistant", "content": self.content, "refusal": None,
                                       "annotations": []}
            if self.tool_call is not None:
                message["content"] = None
                message["tool_calls"] = self._tool_calls()
            choice: dict[str, Any] = {"index": index, "message": message, "logprobs": None,
                                      "finish_reason": self.finish_reason}
            if self.azure:
                choice["content_filter_results"] = content_filter_results()
            if self.enhancements:
                choice["enhancements"] = self.enhancements
            choices.append(choice)
        body: dict[str, Any] = {"id": self.id, "object": "chat.completion", "created": self.created,
                                "model": self.model, "choices": choices, "usage": self.usage,
                                "system_fingerprint": "offline"}
        if self.azure:
            body["prompt_filter_results"] = prompt_filter_results()
        return _dump(ChatCompletion.model_validate(body))

    def chunks(self, include_usage: bool) -> Iterator[dict[str, Any]]:
        """The ``chat.completion.chunk`` objects of the stream (role, pieces, finish, optional usage)."""
        def chunk(delta: dict[str, Any], finish: str | None, index: int) -> dict[str, Any]:
            item: dict[str, Any] = {"id": self.id, "object": "chat.completion.chunk", "created": self.created,
                                    "model": self.model, "system_fingerprint": "offline",
                                    "choices": [{"index": index, "delta": delta, "logprobs": None,
                                                 "finish_reason": finish}]}
            if include_usage:
                item["usage"] = None
            return _dump(ChatCompletionChunk.model_validate(item))

        for index in range(self.n):
            if self.tool_call is not None:
                call = self._tool_calls()[0]
                yield chunk({"role": "assistant", "content": None, "refusal": None}, None, index)
                yield chunk({"tool_calls": [{"index": 0, "id": call["id"], "type": "function",
                                             "function": {"name": call["function"]["name"], "arguments": ""}}]},
                            None, index)
                for piece in stream_pieces(call["function"]["arguments"]):
                    yield chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]}, None, index)
            else:
                yield chunk({"role": "assistant", "content": "", "refusal": None}, None, index)
                for piece in stream_pieces(self.content):
                    yield chunk({"content": piece}, None, index)
            yield chunk({}, self.finish_reason, index)
        if include_usage:
            yield _dump(ChatCompletionChunk.model_validate({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": "offline", "choices": [], "usage": self.usage}))

    def events(self, include_usage: bool) -> Iterator[bytes]:
        """The server-sent events of the stream, ending with ``data: [DONE]``."""
        for item in self.chunks(include_usage):
            yield b"data: " + json_bytes(item) + b"\n\n"
        yield b"data: [DONE]\n\n"
