"""The Responses API (``POST /v1/responses``) on top of the Chat Completions machinery.

A Responses request is checked against the SDK's own ``ResponseCreateParams`` types, then translated into the
Chat Completions request it means and answered by the same backend, so the answer, the JSON filling and the image
token counts are the same on both APIs:

==========================================  ==================================================================
Responses                                   Chat Completions
==========================================  ==================================================================
``instructions``                            a ``system`` message first
``input`` (a string, or messages)           ``messages`` (a string is one user message)
``input_text`` / ``output_text``            ``text`` parts
``input_image`` (``image_url``, ``detail``) ``image_url`` parts (a URL or a data URL; a ``file_id`` uploaded to
                                            ``/v1/files`` becomes a data URL of the file)
``max_output_tokens`` (>= 16)               ``max_completion_tokens``
``text.format`` json_schema / json_object   ``response_format``
``tools`` (flat ``function`` tools)         ``tools`` (``{"type": "function", "function": {...}}``)
``previous_response_id``                    the stored input and output of that response, sent again first
output ``message`` / ``function_call``      ``choices[0].message`` content / ``tool_calls``
``usage.input_tokens`` / ``output_tokens``  ``usage.prompt_tokens`` / ``completion_tokens``
==========================================  ==================================================================

Responses are kept in memory (the last :data:`STORE_SIZE`) so that ``previous_response_id`` works while the server
runs. Streams are the SDK's typed events (``response.created`` ... ``response.output_text.delta`` ...
``response.completed``), each with its ``sequence_number``.

``POST /v1/files`` (below): uploads kept in memory so that a Responses ``input_image`` can name a ``file_id``.

The body is ``multipart/form-data`` with a ``file`` and a ``purpose`` (as ``client.files.create(file=...,
purpose="vision")`` sends it), read with the standard library's MIME parser. Files live only while the server
runs: at most :data:`MAX_FILES` of them and :data:`MAX_TOTAL_BYTES` in all (the oldest are dropped first).

>>> store = FileStore()
>>> item = store.add(b"hello", "notes.txt", "user_data")
>>> item["object"], item["bytes"], store.data(item["id"])
('file', 5, b'hello')
"""

from __future__ import annotations

import base64
import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from openai.types import FileObject
from openai.types.responses import Response, response_create_params

from helpers import images
from helpers.offline.completions import Completion, json_bytes, stream_pieces
from helpers.offline.protocol import ApiError, check_fields, invalid_type, invalid_value, missing

# --- files -----------------------------------------------------------------------------------------------

__all__ = ["events", "FileStore", "parse_upload", "response_body", "ResponseStore", "to_chat_payload"]

#: The purposes the API accepts for an upload (API reference, "Upload file", checked 2026-12-02).
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
MAX_FILES = 256
MAX_TOTAL_BYTES = 256 * 1024 * 1024


class FileStore:
    """Uploaded files by id (thread-safe, bounded)."""

    def __init__(self) -> None:
        self._items: OrderedDict[str, tuple[dict[str, Any], bytes]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = "file-" + hashlib.sha256(data + filename.encode("utf-8", "replace")).hexdigest()[:24]
        item = FileObject(id=file_id, object="file", bytes=len(data), created_at=int(time.time()),
                          filename=filename, purpose=purpose,  # type: ignore[arg-type]  # checked: PURPOSES
                          status="processed").model_dump(mode="json")
        with self._lock:
            self._items[file_id] = (item, data)
            self._items.move_to_end(file_id)
            while len(self._items) > MAX_FILES or sum(len(d) for _, d in self._items.values()) > MAX_TOTAL_BYTES:
                self._items.popitem(last=False)
        return item

    def info(self, file_id: str) -> dict[str, Any]:
        with self._lock:
            found = self._items.get(file_id)
        if found is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id", code=None)
        return found[0]

    def data(self, file_id: str) -> bytes:
        self.info(file_id)
        with self._lock:
            return self._items[file_id][1]

    def delete(self, file_id: str) -> dict[str, Any]:
        self.info(file_id)
        with self._lock:
            self._items.pop(file_id, None)
        return {"id": file_id, "object": "file", "deleted": True}


def parse_upload(body: bytes, content_type: str) -> tuple[bytes, str, str]:
    """``(data, filename, purpose)`` of a ``multipart/form-data`` upload; API-shaped errors otherwise."""
    if not content_type.lower().startswith("multipart/form-data"):
        raise ApiError(400, "Uploads must be sent as multipart/form-data with a 'file' and a 'purpose' field.",
                       code="invalid_request")
    head = b"Content-Type: " + content_type.encode("latin-1", "replace") + b"\r\nMIME-Version: 1.0\r\n\r\n"
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    fields: dict[str, tuple[bytes, str | None]] = {}
    if message.is_multipart():
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if isinstance(name, str):
                data = part.get_payload(decode=True)
                fields[name] = (data if isinstance(data, bytes) else b"", part.get_filename())
    if "purpose" not in fields:
        raise missing("purpose")
    purpose = fields["purpose"][0].decode("utf-8", "replace").strip()
    if purpose not in PURPOSES:
        raise invalid_value("purpose", purpose, PURPOSES)
    if "file" not in fields:
        raise missing("file")
    data, filename = fields["file"]
    return data, filename or "upload", purpose


STORE_SIZE = 512
MIN_OUTPUT_TOKENS = 16
_PARAMS = response_create_params.ResponseCreateParamsBase
_PART = {"input_text": "text", "output_text": "text"}


class ResponseStore:
    """The conversations of recent responses, by id (thread-safe, bounded)."""

    def __init__(self, size: int = STORE_SIZE) -> None:
        self._items: OrderedDict[str, list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()
        self.size = size

    def put(self, response_id: str, messages: list[dict[str, Any]]) -> None:
        with self._lock:
            self._items[response_id] = messages
            self._items.move_to_end(response_id)
            while len(self._items) > self.size:
                self._items.popitem(last=False)

    def get(self, response_id: str) -> list[dict[str, Any]] | None:
        with self._lock:
            return self._items.get(response_id)


def _content(content: Any, i: int, files: FileStore) -> Any:
    if isinstance(content, str):
        return content
    parts = []
    for j, part in enumerate(content):
        kind = part.get("type")
        if kind in _PART:
            parts.append({"type": "text", "text": part.get("text", "")})
        elif kind == "input_image":
            if part.get("file_id"):
                data = files.data(part["file_id"])
                mime = images.sniff_mime(data) or "application/octet-stream"
                parts.append({"type": "image_url", "image_url": {"url": f"data:{mime};base64,{base64.b64encode(data).decode()}",
                                                                 "detail": part.get("detail") or "auto"}})
                continue
            if not part.get("image_url"):
                raise missing(f"input[{i}].content[{j}].image_url")
            parts.append({"type": "image_url", "image_url": {"url": part["image_url"],
                                                             "detail": part.get("detail") or "auto"}})
        else:
            raise ApiError(400, f"The offline backend reads 'input_text' and 'input_image' parts, not '{kind}'.",
                           param=f"input[{i}].content[{j}].type", code="unsupported_value")
    return parts


def _messages(payload: dict[str, Any], store: ResponseStore, files: FileStore) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    previous = payload.get("previous_response_id")
    if previous is not None:
        earlier = store.get(previous)
        if earlier is None:
            raise ApiError(404, f"Previous response with id '{previous}' not found.", param="previous_response_id",
                           code="previous_response_not_found")
        messages += [m for m in earlier if m.get("role") != "system"]
    if payload.get("instructions"):
        messages.insert(0, {"role": "system", "content": payload["instructions"]})
    items = payload.get("input")
    if items is None:
        raise missing("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list):
        raise invalid_type("input", "a string or an array", items)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise invalid_type(f"input[{i}]", "an object", item)
        kind = item.get("type", "message")
        if kind == "message" and "role" in item:
            messages.append({"role": item["role"], "content": _content(item.get("content", ""), i, files)})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "tool_call_id": item.get("call_id", ""),
                             "content": str(item.get("output", ""))})
        elif kind == "function_call":
            messages.append({"role": "assistant", "content": None, "tool_calls": [{
                "id": item.get("call_id", ""), "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments", "")}}]})
        else:
            raise ApiError(400, f"The offline backend reads message and function-call input items, not '{kind}'.",
                           param=f"input[{i}].type", code="unsupported_value")
    return messages


def to_chat_payload(payload: dict[str, Any], store: ResponseStore, files: FileStore) -> dict[str, Any]:
    """The Chat Completions body a Responses body means (after checking it against the SDK's types)."""
    if payload.get("model") is None:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    given: list[Any] = payload["input"] if isinstance(payload.get("input"), list) else []
    for item in given:
        for part in item["content"] if isinstance(item, dict) and isinstance(item.get("content"), list) else []:
            if isinstance(part, dict) and part.get("type") == "input_image":
                part.setdefault("detail", "auto")      # the SDK types require it; the service defaults it
    items = given
    messages_only = all(isinstance(i, dict) and i.get("type", "message") == "message" for i in items)
    checked = [n for n in payload if n in _PARAMS.__annotations__ and (n != "input" or messages_only)]
    check_fields(payload, _PARAMS, only=checked)    # other input items are read (and checked) by _messages
    limit = payload.get("max_output_tokens")
    if limit is not None and limit < MIN_OUTPUT_TOKENS:
        raise ApiError(400, f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                            f"{MIN_OUTPUT_TOKENS}, but got {limit} instead.", param="max_output_tokens",
                       code="integer_below_min_value")
    chat: dict[str, Any] = {"model": payload["model"], "messages": _messages(payload, store, files)}
    if limit is not None:
        chat["max_completion_tokens"] = limit
    for name in ("temperature", "top_p", "stream"):
        if payload.get(name) is not None:
            chat[name] = payload[name]
    fmt = (payload.get("text") or {}).get("format")
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        chat["response_format"] = {"type": "json_schema", "json_schema": {
            k: fmt[k] for k in ("name", "schema", "strict", "description") if k in fmt}}
    elif isinstance(fmt, dict) and fmt.get("type") == "json_object":
        chat["response_format"] = {"type": "json_object"}
    tools = payload.get("tools") or []
    if tools:
        chat["tools"] = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters",
                                                                             "strict") if t.get(k) is not None}}
                         for t in tools if isinstance(t, dict) and t.get("type") == "function"]
        if len(chat["tools"]) != len(tools):
            raise ApiError(400, "The offline backend calls 'function' tools only.", param="tools",
                           code="unsupported_value")
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif choice is not None:
        if not isinstance(choice, str):
            raise invalid_type("tool_choice", "a string or an object", choice)
        chat["tool_choice"] = choice
    return chat


def response_body(payload: dict[str, Any], completion: Completion, messages: list[dict[str, Any]],
                  store: ResponseStore) -> dict[str, Any]:
    """The ``response`` object (an SDK ``Response``), stored for a later ``previous_response_id``."""
    response_id = "resp_" + completion.id.removeprefix("chatcmpl-") + f"{time.time_ns() % 10**6:06d}"
    usage = completion.usage
    if completion.tool_call is not None:
        name, arguments = completion.tool_call
        call_id = "call_" + completion.id[-24:]
        output: list[dict[str, Any]] = [{"type": "function_call", "id": "fc_" + completion.id[-24:],
                                         "call_id": call_id, "name": name, "arguments": arguments,
                                         "status": "completed"}]
        said: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]}
    else:
        output = [{"type": "message", "id": "msg_" + completion.id[-24:], "status": "completed",
                   "role": "assistant", "content": [{"type": "output_text", "text": completion.content,
                                                     "annotations": [], "logprobs": []}]}]
        said = {"role": "assistant", "content": completion.content}
    cut = completion.finish_reason == "length"
    fmt = (payload.get("text") or {}).get("format") or {"type": "text"}
    body = {"id": response_id, "object": "response", "created_at": completion.created,
            "status": "incomplete" if cut else "completed", "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": payload.get("instructions"), "max_output_tokens": payload.get("max_output_tokens"),
            "model": completion.model, "output": output, "parallel_tool_calls": True,
            "previous_response_id": payload.get("previous_response_id"), "store": True,
            "temperature": payload.get("temperature", 1.0), "text": {"format": fmt},
            "tool_choice": payload.get("tool_choice", "auto"), "tools": payload.get("tools") or [],
            "top_p": payload.get("top_p", 1.0), "truncation": "disabled", "metadata": payload.get("metadata") or {},
            "usage": {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                      "output_tokens": usage.completion_tokens,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": usage.total_tokens}}
    checked = Response.model_validate(body).model_dump(mode="json", exclude_unset=True, by_alias=True)
    store.put(response_id, [*messages, said])
    return checked


def events(body: dict[str, Any]) -> Iterator[bytes]:
    """The server-sent events of a streamed response, as the SDK's ``responses.stream`` reads them."""
    number = [0]

    def event(kind: str, **fields: Any) -> bytes:
        item = {"type": kind, "sequence_number": number[0], **fields}
        number[0] += 1
        return b"event: " + kind.encode() + b"\ndata: " + json_bytes(item) + b"\n\n"

    started = {**{k: v for k, v in body.items() if k != "usage"}, "status": "in_progress", "output": [],
               "incomplete_details": None}
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    for index, item in enumerate(body["output"]):
        if item["type"] == "function_call":
            yield event("response.output_item.added", output_index=index, item={**item, "arguments": "",
                                                                                "status": "in_progress"})
            for piece in stream_pieces(item["arguments"]):
                yield event("response.function_call_arguments.delta", item_id=item["id"], output_index=index,
                            delta=piece)
            yield event("response.function_call_arguments.done", item_id=item["id"], output_index=index,
                        arguments=item["arguments"], name=item["name"])
            yield event("response.output_item.done", output_index=index, item=item)
            continue
        text = item["content"][0]["text"]
        yield event("response.output_item.added", output_index=index,
                    item={**item, "status": "in_progress", "content": []})
        empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
        yield event("response.content_part.added", item_id=item["id"], output_index=index, content_index=0,
                    part=empty)
        for piece in stream_pieces(text):
            yield event("response.output_text.delta", item_id=item["id"], output_index=index, content_index=0,
                        delta=piece, logprobs=[])
        yield event("response.output_text.done", item_id=item["id"], output_index=index, content_index=0,
                    text=text, logprobs=[])
        yield event("response.content_part.done", item_id=item["id"], output_index=index, content_index=0,
                    part=item["content"][0])
        yield event("response.output_item.done", output_index=index, item=item)
    yield event("response.incomplete" if body["status"] == "incomplete" else "response.completed", response=body)
