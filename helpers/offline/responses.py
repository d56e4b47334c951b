"""The Responses API (``POST /v1/responses``) on top of the Chat Completions machinery.

A Responses request is checked against the SDK's own ``ResponseCreateParams`` types, then translated into the
Chat Completions request it means and answered by the same backend, so the answer, the JSON filling and the image
token counts are the same on both APIs:

==========================================  ==================================================================
Responses                                   Chat Completions
==========================================  ==================================================================
``instructions``                            a ``system`` message first
``input`` (a string, or messages)           ``messages`` (a string is one user message)
``input_text`` / ``output_text``            ``text`` parts (``output_text`` and ``refusal`` only in assistant
                                            messages, as the SDK's output messages carry them)
``input_image`` (``image_url``, ``detail``) ``image_url`` parts (a URL or a data URL; a ``file_id`` uploaded to
                                            ``/v1/files`` becomes a data URL of the file)
``function_call`` items (one or more)       one assistant message with ``tool_calls``
``function_call_output``                    a ``tool`` message with its text; its images in a ``user`` message
                                            after it (Chat Completions takes images only from users), so they are
                                            analysed and billed as images
``reasoning`` items                         ignored (accepted, as ``input += response.output`` sends them)
``item_reference`` (``id``)                 the stored input or output item of that id, read as if sent again
``tools`` ``strict`` left out or null       strict when the schema allows it (the Responses default), else not
``tool_choice`` ``allowed_tools``           ``tools`` narrowed to the allowed ones, ``tool_choice`` its ``mode``
``max_output_tokens`` (>= 16)               ``max_completion_tokens``
``text.format`` json_schema / json_object   ``response_format``
``tools`` (flat ``function`` tools)         ``tools`` (``{"type": "function", "function": {...}}``)
``previous_response_id``                    the stored input and output of that response, sent again first
output ``message`` / ``function_call``      ``choices[0].message`` content / ``tool_calls``
``usage.input_tokens`` / ``output_tokens``  ``usage.prompt_tokens`` / ``completion_tokens``
==========================================  ==================================================================

Responses are kept in memory (unless created with ``store: false``; each its learner's own, within byte budgets:
:mod:`helpers.offline.stores`) so that
``previous_response_id`` and the retrieve / delete / ``input_items`` routes work while the server runs; ``cancel``
answers that a synchronous response cannot be cancelled, and ``background: true`` is refused (every answer is
synchronous). ``POST /v1/responses/input_tokens`` counts what ``usage.input_tokens`` bills for the same input,
images included. What the API refuses is refused in its words: unknown parameters (``Unknown parameter:
'stop'.``), ``temperature`` / ``top_p`` on reasoning models, logprobs (there is no language model to have any).
Every response, output item, call and file gets a fresh id (:func:`new_id`), never a hash of the request. Streams are the SDK's typed events (``response.created`` ... ``response.output_text.delta`` ...
``response.completed``), each with its ``sequence_number``.

``POST /v1/files`` (below): uploads kept in memory so that a Responses ``input_image`` can name a ``file_id``;
``GET /v1/files`` lists them, ``GET /v1/files/{id}/content`` gives the bytes back.

The body is ``multipart/form-data`` with a ``file`` and a ``purpose`` (as ``client.files.create(file=...,
purpose="vision")`` sends it), read with the standard library's MIME parser. Files live only while the server
runs, each its learner's own (another learner's id is an unknown id), within byte budgets per learner and for the
room (:mod:`helpers.offline.stores`: a learner's own oldest files go first). A stored response keeps an uploaded
image as its file id (:class:`FileRef`), never a copy of its bytes.

>>> store = FileStore()
>>> item = store.add(b"hello", "notes.txt", "user_data")
>>> item["object"], item["bytes"], store.data(item["id"])
('file', 5, b'hello')
>>> store.add(b"hello", "notes.txt", "user_data")["id"] != item["id"]     # two uploads are two files
True
>>> store.of("bob").data(item["id"])                                      # another learner's: unknown
Traceback (most recent call last):
...
helpers.offline.protocol.ApiError: No such File object: ...
"""

from __future__ import annotations

import base64
import copy
import secrets
import time
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from openai.types import FileObject
from openai.types.responses import (
    Response,
    ResponseFunctionToolCallParam,
    ResponseInputImageParam,
    input_token_count_params,
    response_create_params,
    response_input_item_param,
)
from openai.types.responses.response_input_image_content_param import ResponseInputImageContentParam

from helpers import images, models, tokens
from helpers.config import ServerSettings
from helpers.offline.completions import Completion, json_bytes, stream_pieces
from helpers.offline.protocol import (
    ApiError,
    check_fields,
    fields,
    invalid_type,
    invalid_value,
    missing,
    strict_function_error,
    strict_schema_problem,
)
from helpers.offline.stores import Budget, OwnedStore, file_budget, response_budget

# --- files -----------------------------------------------------------------------------------------------

__all__ = ["events", "FileStore", "input_items_page", "new_id", "parse_upload", "response_body", "ResponseStore",
           "Stored", "to_chat_payload"]

#: The purposes the API accepts for an upload (API reference, "Upload file", checked 2026-12-02).
PURPOSES = ("assistants", "batch", "fine-tune", "vision", "user_data", "evals")
_FILES_ADVICE = ("Delete files you no longer need (client.files.delete), or send the image inline (a data URL) or "
                 "as a URL instead of uploading it.")
_FILES_SETTING = "VISION_OFFLINE_FILES_MB_PER_LEARNER and VISION_OFFLINE_FILES_MB"


class FileStore:
    """Uploaded files by id, each its learner's own, within byte budgets (thread-safe; :mod:`helpers.offline.stores`).
    ``store.of(learner)`` is the same store as one learner sees it (the request's ``offline.learner``; the store
    itself is the one owner None of a server that is not a classroom): another learner's id is an unknown id."""

    def __init__(self, budget: Budget | None = None) -> None:
        self._store: OwnedStore[tuple[dict[str, Any], bytes]] = OwnedStore(
            "files", budget or file_budget(ServerSettings()), advice=_FILES_ADVICE, setting=_FILES_SETTING)
        self.owner: str | None = None

    def of(self, owner: str | None) -> FileStore:
        """This store as ``owner`` sees it."""
        view = copy.copy(self)
        view.owner = owner
        return view

    def add(self, data: bytes, filename: str, purpose: str) -> dict[str, Any]:
        file_id = new_id("file-")               # every upload is its own file, even of the same bytes
        item = FileObject(id=file_id, object="file", bytes=len(data), created_at=int(time.time()),
                          filename=filename, purpose=purpose,  # type: ignore[arg-type]  # checked: PURPOSES
                          status="processed").model_dump(mode="json")
        self._store.put(file_id, self.owner, (item, data), [item, data])
        return item

    def _found(self, file_id: str) -> tuple[dict[str, Any], bytes]:
        found = self._store.get(file_id, self.owner)
        if found is None:
            raise ApiError(404, f"No such File object: {file_id}", param="id", code=None)
        return found

    def info(self, file_id: str) -> dict[str, Any]:
        return self._found(file_id)[0]

    def data(self, file_id: str) -> bytes:
        return self._found(file_id)[1]

    def listing(self, query: Mapping[str, str]) -> dict[str, Any]:
        """``GET /v1/files``: the learner's own files as a cursor page (``purpose``, ``order`` desc by default,
        ``limit`` up to 10,000, ``after`` a file id)."""
        order = query.get("order", "desc")
        if order not in ("asc", "desc"):
            raise invalid_value("order", order, ("asc", "desc"))
        try:
            limit = int(query.get("limit", "10000"))
        except ValueError:
            raise invalid_type("limit", "an integer", query.get("limit")) from None
        found = [item for item, _ in self._store.owned(self.owner) if query.get("purpose") in (None, item["purpose"])]
        found = found if order == "asc" else found[::-1]
        after = query.get("after")
        if after is not None:
            ids = [item["id"] for item in found]
            found = found[ids.index(after) + 1:] if after in ids else []
        page = found[:max(1, min(limit, 10000))]
        return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
                "last_id": page[-1]["id"] if page else None, "has_more": len(found) > len(page)}

    def delete(self, file_id: str) -> dict[str, Any]:
        if self._store.pop(file_id, self.owner) is None:
            self._found(file_id)          # the 404
        return {"id": file_id, "object": "file", "deleted": True}

    def usage(self) -> dict[str, Any]:
        """The bytes held, in all and by learner (:meth:`helpers.offline.stores.OwnedStore.usage`)."""
        return self._store.usage()


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


MIN_OUTPUT_TOKENS = 16
_PARAMS = response_create_params.ResponseCreateParamsBase
_COUNT_PARAMS = input_token_count_params.InputTokenCountParams
_ROLES = ("user", "assistant", "system", "developer")
_INPUT_PARTS = ("input_text", "input_image", "input_file")
#: Input items the offline backend reads; ``reasoning`` items (passed back from ``response.output``) are accepted
#: and ignored, as the service ignores them for models that do not reason over them.
_ITEMS = ("message", "function_call", "function_call_output", "reasoning", "item_reference")
_LOGPROBS = "message.output_text.logprobs"
#: Every input item kind the SDK's types define (``ResponseInputItemParam``), for the API's invalid-value error.
def _literals(hint: Any) -> list[str]:
    """The string values of a ``Literal`` type, through ``Optional``/``Union`` (ItemReference's ``type`` is
    ``Optional[Literal["item_reference"]]``)."""
    if typing.get_origin(hint) is typing.Literal:
        return [v for v in typing.get_args(hint) if isinstance(v, str)]
    return [v for arg in typing.get_args(hint) for v in _literals(arg)]


_ITEM_KINDS = tuple(dict.fromkeys(value for arm in typing.get_args(response_input_item_param.ResponseInputItemParam)
                                  for name, hint, _ in fields(arm) if name == "type" for value in _literals(hint)))


def new_id(prefix: str, size: int = 24) -> str:
    """A fresh id (``resp_``, ``msg_``, ``call_``, ``file-`` ...): unique per object, never a hash of the request.

    >>> new_id("resp_") != new_id("resp_")
    True
    """
    return prefix + secrets.token_hex(size // 2)


def unknown_parameter(name: str) -> ApiError:
    """The Responses API's answer to a parameter it does not define (``max_token``, ``stop``...)."""
    return ApiError(400, f"Unknown parameter: '{name}'.", param=name, code="unknown_parameter")


@dataclass
class Stored:
    """One stored response: its body, its input items (with ids) and the conversation it continues (whose images
    uploaded as files are :class:`FileRef`, not copies of the files)."""

    body: dict[str, Any]
    items: list[dict[str, Any]]
    messages: list[dict[str, Any]]


@dataclass(frozen=True)
class FileRef:
    """An ``input_image`` naming an uploaded file, as a conversation keeps it: the file's id, turned into the
    file's bytes only for the request being answered. ``earlier``: it comes from a stored response (the file may
    have been deleted since)."""

    file_id: str
    earlier: bool = False


_RESPONSES_ADVICE = ("Delete stored responses you no longer need (client.responses.delete), or send this one with "
                     "store=False (and the history yourself instead of previous_response_id); an image uploaded "
                     "once and named by file_id takes far less room than the same image sent as a data URL.")
_RESPONSES_SETTING = "VISION_OFFLINE_RESPONSES_MB_PER_LEARNER and VISION_OFFLINE_RESPONSES_MB"


class ResponseStore:
    """Responses created with ``store`` (the default), by id, each its learner's own, within byte budgets
    (thread-safe; :mod:`helpers.offline.stores`). ``store.of(learner)`` is the same store as one learner sees it
    (the request's ``offline.learner``; the store itself is the one owner None of a server that is not a
    classroom): another learner's id is an unknown id."""

    def __init__(self, budget: Budget | None = None) -> None:
        self._store: OwnedStore[Stored] = OwnedStore("stored responses", budget or response_budget(ServerSettings()),
                                                     advice=_RESPONSES_ADVICE, setting=_RESPONSES_SETTING)
        self.owner: str | None = None

    def of(self, owner: str | None) -> ResponseStore:
        """This store as ``owner`` sees it."""
        view = copy.copy(self)
        view.owner = owner
        return view

    def put(self, response_id: str, stored: Stored) -> None:
        self._store.put(response_id, self.owner, stored, [stored.body, stored.items, stored.messages])

    def check_room(self, *parts: Any) -> None:
        """A 413 now (before the work) if a response holding ``parts`` could never be stored for this learner."""
        self._store.put_check(self.owner, parts)

    def get(self, response_id: str) -> Stored | None:
        return self._store.get(response_id, self.owner)

    def find(self, response_id: str) -> Stored:
        """The stored response, or the API's 404."""
        found = self.get(response_id)
        if found is None:
            raise ApiError(404, f"Response with id '{response_id}' not found.", param=None, code=None)
        return found

    def delete(self, response_id: str) -> dict[str, Any]:
        if self._store.pop(response_id, self.owner) is None:
            self.find(response_id)        # the 404
        return {"id": response_id, "object": "response", "deleted": True}

    def usage(self) -> dict[str, Any]:
        """The bytes held, in all and by learner (:meth:`helpers.offline.stores.OwnedStore.usage`)."""
        return self._store.usage()

    def find_item(self, item_id: str) -> dict[str, Any] | None:
        """An input or output item of one of this learner's stored responses, by its id (what an
        ``item_reference`` names); None for an unknown id and for another learner's item."""
        for response in reversed(self._store.owned(self.owner)):
            for item in [*response.body.get("output", []), *response.items]:
                # A stored input that was itself a reference carries the id of what it named: skip it.
                if isinstance(item, dict) and item.get("id") == item_id and item.get("type") != "item_reference":
                    return item
        return None


def _image(part: dict[str, Any], param: str, files: FileStore) -> dict[str, Any]:
    """The Chat Completions ``image_url`` part of an ``input_image``; a ``file_id`` (the learner's own file)
    becomes a :class:`FileRef`, made a data URL of the file by :func:`with_file_data` for the request only."""
    detail = part.get("detail") or "auto"
    if part.get("file_id"):
        files.info(part["file_id"])          # the 404 now, for an unknown file or another learner's
        url: Any = FileRef(part["file_id"])
    elif part.get("image_url"):
        url = part["image_url"]
    else:
        raise missing(f"{param}.image_url")
    return {"type": "image_url", "image_url": {"url": url, "detail": detail}}


class _FileImage(dict[str, Any]):
    """A Chat Completions ``image_url`` object made from a :class:`FileRef` (for :func:`by_reference`)."""

    ref: FileRef


def with_file_data(messages: list[dict[str, Any]], files: FileStore) -> list[dict[str, Any]]:
    """``messages`` with each :class:`FileRef` made a data URL of the learner's file (new message dicts only where
    there is one; the conversation kept by the store is unchanged)."""
    def resolve(ref: FileRef, detail: Any) -> _FileImage:
        found = files._store.get(ref.file_id, files.owner)
        if found is None:
            later = (" An earlier turn of this conversation (previous_response_id) showed it; it has been deleted "
                     "since (or evicted from this offline server's store of files): upload it again and send the "
                     "conversation yourself.") if ref.earlier else ""
            raise ApiError(404, f"No such File object: {ref.file_id}{later}", param="id", code=None)
        data = found[1]
        mime = images.sniff_mime(data) or "application/octet-stream"
        made = _FileImage(url=f"data:{mime};base64,{base64.b64encode(data).decode()}", detail=detail)
        made.ref = ref
        return made

    return [_map_file_images(m, lambda image: resolve(image["url"], image.get("detail"))
                             if isinstance(image.get("url"), FileRef) else None) for m in messages]


def by_reference(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The inverse of :func:`with_file_data`: what a stored response keeps (the files' ids, not their bytes)."""
    return [_map_file_images(m, lambda image: {"url": FileRef(image.ref.file_id, earlier=True),
                                               "detail": image.get("detail")}
                             if isinstance(image, _FileImage) else None) for m in messages]


def _map_file_images(message: dict[str, Any], change: Any) -> dict[str, Any]:
    content = message.get("content")
    if not isinstance(content, list):
        return message
    parts, changed = [], False
    for part in content:
        image = part.get("image_url") if isinstance(part, dict) and part.get("type") == "image_url" else None
        new = change(image) if isinstance(image, dict) else None
        parts.append({**part, "image_url": new} if new is not None else part)
        changed = changed or new is not None
    return {**message, "content": parts} if changed else message


def _unreadable(kind: Any, param: str) -> ApiError:
    return ApiError(400, f"The offline backend reads text and image parts, not '{kind}'. Send it to a real model, "
                         "or remove it.", param=param, code="unsupported_value")


def _part(part: Any, param: str, role: str, files: FileStore, image_cls: type = ResponseInputImageParam) -> dict[str, Any]:
    """One content part checked against the SDK's types and turned into its Chat Completions part."""
    if not isinstance(part, dict):
        raise invalid_type(param, "an object", part)
    kind = part.get("type")
    if kind is None:
        raise missing(f"{param}.type")
    allowed = (*_INPUT_PARTS, "output_text", "refusal") if role == "assistant" else _INPUT_PARTS
    if kind not in allowed:
        raise invalid_value(f"{param}.type", kind, allowed)
    if kind in ("input_text", "output_text"):
        if not isinstance(part.get("text"), str):
            raise missing(f"{param}.text") if part.get("text") is None else invalid_type(f"{param}.text", "a string",
                                                                                         part["text"])
        return {"type": "text", "text": part["text"]}
    if kind == "refusal":
        if not isinstance(part.get("refusal"), str):
            raise invalid_type(f"{param}.refusal", "a string", part.get("refusal"))
        return {"type": "refusal", "refusal": part["refusal"]}
    if kind == "input_image":
        check_fields({"detail": "auto", **part}, image_cls, param)    # the service defaults a missing detail
        return _image(part, param, files)
    raise _unreadable(kind, f"{param}.type")


def _content(content: Any, param: str, role: str, files: FileStore) -> Any:
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        raise invalid_type(param, "one of a string or array of objects", content)
    return [_part(part, f"{param}[{j}]", role, files) for j, part in enumerate(content)]


def _tool_output(item: dict[str, Any], param: str, files: FileStore) -> list[dict[str, Any]]:
    """A ``function_call_output`` as Chat Completions messages: the ``tool`` message with its text, and, when the
    output holds images, a ``user`` message carrying them (Chat Completions takes images only from users), so
    they are analysed and billed as images."""
    if not isinstance(item.get("call_id"), str):
        raise missing(f"{param}.call_id") if item.get("call_id") is None else invalid_type(
            f"{param}.call_id", "a string", item["call_id"])
    output = item.get("output")
    if output is None:
        raise missing(f"{param}.output")
    if isinstance(output, str):
        return [{"role": "tool", "tool_call_id": item["call_id"], "content": output}]
    if not isinstance(output, list):
        raise invalid_type(f"{param}.output", "one of a string or array of objects", output)
    parts = [_part(part, f"{param}.output[{j}]", "tool", files, ResponseInputImageContentParam)
             for j, part in enumerate(output)]
    text = "".join(p["text"] for p in parts if p["type"] == "text")
    said = [{"role": "tool", "tool_call_id": item["call_id"], "content": text}]
    pictures = [p for p in parts if p["type"] == "image_url"]
    return said + [{"role": "user", "content": pictures}] if pictures else said


def _messages(payload: dict[str, Any], store: ResponseStore, files: FileStore) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    previous = payload.get("previous_response_id")
    if previous is not None:
        earlier = store.get(previous)
        if earlier is None:
            raise ApiError(404, f"Previous response with id '{previous}' not found.", param="previous_response_id",
                           code="previous_response_not_found")
        messages += [m for m in earlier.messages if m.get("role") != "system"]
    if payload.get("instructions"):
        messages.insert(0, {"role": "system", "content": payload["instructions"]})
    items = payload.get("input")
    if items is None:
        raise missing("input")
    if isinstance(items, str):
        return [*messages, {"role": "user", "content": items}]
    if not isinstance(items, list):
        raise invalid_type("input", "one of a string or array of objects", items)
    for i, item in enumerate(items):
        param = f"input[{i}]"
        if not isinstance(item, dict):
            raise invalid_type(param, "an object", item)
        if _is_reference(item):
            item = _referenced(item, param, store)
        kind = item.get("type", "message")
        if kind == "message":
            role = item.get("role")
            if role is None:
                raise missing(f"{param}.role")
            if role not in _ROLES:
                raise invalid_value(f"{param}.role", role, _ROLES)
            if item.get("content") is None:
                raise missing(f"{param}.content")
            messages.append({"role": role, "content": _content(item["content"], f"{param}.content", role, files)})
        elif kind == "function_call":
            check_fields(item, ResponseFunctionToolCallParam, param, only=("call_id", "name", "arguments"))
            call = {"id": item["call_id"], "type": "function",
                    "function": {"name": item["name"], "arguments": item["arguments"]}}
            last = messages[-1] if messages else {}
            if last.get("role") == "assistant" and last.get("tool_calls"):   # parallel calls of one turn: one
                messages[-1] = {**last, "tool_calls": [*last["tool_calls"], call]}  # message (a stored one unchanged)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            messages += _tool_output(item, param, files)
        elif kind == "reasoning":
            continue
        elif isinstance(kind, str) and kind in _ITEM_KINDS:
            raise ApiError(400, f"The offline backend reads {', '.join(repr(k) for k in _ITEMS)} input items, not "
                                f"'{kind}'. Send it to a real model, or remove it.", param=f"{param}.type",
                           code="unsupported_value")
        else:
            raise invalid_value(f"{param}.type", kind, _ITEM_KINDS)
    return messages


def _is_reference(item: dict[str, Any]) -> bool:
    """An ``item_reference`` input item (``ItemReferenceParam``: its ``type`` may be left out, then it is an id
    without a role)."""
    kind = item.get("type")
    return kind == "item_reference" or (kind is None and "role" not in item and isinstance(item.get("id"), str))


def _referenced(item: dict[str, Any], param: str, store: ResponseStore) -> dict[str, Any]:
    """The stored item an ``item_reference`` names (an input or output item of a stored response), or the API's
    404 (its wording, as the service answers a reference to an item it did not keep)."""
    item_id = item.get("id")
    if not isinstance(item_id, str):
        raise missing(f"{param}.id") if item_id is None else invalid_type(f"{param}.id", "a string", item_id)
    found = store.find_item(item_id)
    if found is None:
        raise ApiError(404, f"Item with id '{item_id}' not found. Items are not persisted when `store` is set to "
                            "false. Try again with `store` set to true, or remove this item from your input.",
                       param="input", code=None)
    return found


def _strict(tool: dict[str, Any], i: int) -> bool:
    """Whether a Responses function tool is strict, checked as the API checks it.

    The Responses API's default is strict: openai-python's ``FunctionToolParam.strict`` (generated from OpenAI's
    OpenAPI spec) says "Whether to enforce strict parameter validation. Default `true`."
    (src/openai/types/responses/function_tool_param.py, read 2026-12-07; Chat Completions' default is false, see
    ``helpers/offline/protocol.py``). A tool that leaves ``strict`` out (LangChain's ``bind_tools``, instructor's
    RESPONSES_TOOLS) is strict when its schema is one strict mode takes, and is taken as a plain function
    otherwise: those clients send plain JSON schemas on Responses and work against the service. A tool that says
    ``"strict": true`` with a schema strict mode cannot take gets the API's 400.
    """
    parameters = tool.get("parameters") or {"type": "object", "properties": {}, "additionalProperties": False}
    problem = strict_schema_problem(parameters)
    if tool.get("strict") is None:
        return problem is None
    if tool["strict"] is True and problem:
        raise strict_function_error(str(tool.get("name")), problem, f"tools[{i}].parameters")
    return bool(tool["strict"])


def _check_options(payload: dict[str, Any], params: type) -> None:
    """What the service refuses before it reads the input: unknown parameters, ``background``, logprobs, and
    sampling settings a reasoning model does not take."""
    known = set(params.__annotations__) | {"stream"}
    for name in payload:
        if name not in known:
            raise unknown_parameter(name)
    for tool in payload.get("tools") or []:
        if isinstance(tool, dict) and tool.get("type") == "function":
            # The SDK's types allow "strict": null and "parameters": null; the service also takes them left out.
            tool.setdefault("strict", None)
            tool.setdefault("parameters", None)
    check_fields(payload, params, only=[n for n in payload if n in params.__annotations__ and n != "input"])
    if payload.get("background"):
        raise ApiError(400, "The offline backend answers every response synchronously: 'background' must be false "
                            "or left out (the answer arrives in the reply, so there is nothing to poll).",
                       param="background", code="unsupported_value")
    if payload.get("top_logprobs") or _LOGPROBS in (payload.get("include") or []):
        name = "top_logprobs" if payload.get("top_logprobs") else "include"
        raise ApiError(400, f"Unsupported parameter: '{name}' is not supported with this model. (The offline "
                            "backend has no language model, so it has no token probabilities to report.)",
                       param=name, code="unsupported_parameter")
    for name in ("conversation", "prompt"):
        if payload.get(name) is not None:
            raise ApiError(400, f"The offline backend keeps no {'conversations' if name == 'conversation' else 'stored prompts'}"
                                f": send the input itself (or previous_response_id) instead of '{name}'.",
                           param=name, code="unsupported_parameter")
    # A model the tables know (an Azure deployment's free-text name is checked on the chat side, as its model).
    known_model = isinstance(payload.get("model"), str) and tokens.resolve_model(payload["model"]) is not None
    reasoning = known_model and models.is_reasoning_model(payload["model"])
    for name in ("temperature", "top_p") if reasoning else ():
        if payload.get(name) is not None:
            raise ApiError(400, f"Unsupported parameter: '{name}' is not supported with this model.",
                           param=name, code="unsupported_parameter")
    if known_model and not reasoning and (payload.get("reasoning") or {}).get("effort"):
        raise ApiError(400, "Unsupported parameter: 'reasoning.effort' is not supported with this model.",
                       param="reasoning.effort", code="unsupported_parameter")


def to_chat_payload(payload: dict[str, Any], store: ResponseStore, files: FileStore, *,
                    counting: bool = False) -> dict[str, Any]:
    """The Chat Completions body a Responses body means (after checking it against the SDK's types);
    ``counting``: a ``POST /v1/responses/input_tokens`` body (``InputTokenCountParams``)."""
    if payload.get("model") is None:
        raise ApiError(400, "Missing required parameter: 'model'.", param="model", code="missing_required_parameter")
    _check_options(payload, _COUNT_PARAMS if counting else _PARAMS)
    limit = payload.get("max_output_tokens")
    if limit is not None and limit < MIN_OUTPUT_TOKENS:
        raise ApiError(400, f"Invalid 'max_output_tokens': integer below minimum value. Expected a value >= "
                            f"{MIN_OUTPUT_TOKENS}, but got {limit} instead.", param="max_output_tokens",
                       code="integer_below_min_value")
    messages = _messages(payload, store, files)
    if not counting and payload.get("store") is not False:
        store.check_room(messages, payload.get("input"))    # a response too large to keep: refused before the work
    chat: dict[str, Any] = {"model": payload["model"], "messages": with_file_data(messages, files)}
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
    for i, tool in enumerate(tools):
        if tool.get("type") != "function":
            raise ApiError(400, f"The offline backend calls 'function' tools only, not '{tool.get('type')}'.",
                           param=f"tools[{i}].type", code="unsupported_value")
        tool["strict"] = _strict(tool, i)   # the response's "tools" echo what the service applied
    choice = payload.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = {t.get("name") for t in choice.get("tools") or [] if isinstance(t, dict)}
        unknown = allowed - {t["name"] for t in tools}
        if unknown:
            raise ApiError(400, f"Invalid value for 'tool_choice.tools': '{sorted(map(str, unknown))[0]}' is not "
                                "one of the tools given in 'tools'.", param="tool_choice.tools", code="invalid_value")
        tools, choice = [t for t in tools if t["name"] in allowed], choice["mode"]
    if tools:
        chat["tools"] = [{"type": "function", "function": {k: t[k] for k in ("name", "description", "parameters",
                                                                             "strict") if t.get(k) is not None}}
                         for t in tools]
    if isinstance(choice, dict) and choice.get("type") == "function":
        chat["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    elif isinstance(choice, str):
        chat["tool_choice"] = choice
    elif choice is not None:
        raise ApiError(400, f"The offline backend takes tool_choice 'none', 'auto', 'required', a function or "
                            f"allowed_tools, not '{choice.get('type')}'.", param="tool_choice.type",
                       code="unsupported_value")
    return chat


def _input_items(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """The input items of a response as ``GET /v1/responses/{id}/input_items`` lists them (each with an id)."""
    given = payload.get("input")
    if isinstance(given, str):
        given = [{"role": "user", "content": given}]
    items = []
    for item in given or []:
        item = dict(item)
        kind = item.setdefault("type", "item_reference" if _is_reference(item) else "message")
        if kind == "message":
            text_kind = "output_text" if item.get("role") == "assistant" else "input_text"
            content = item.get("content")
            if isinstance(content, str):
                content = [{"type": text_kind, "text": content}]
            if text_kind == "output_text":
                content = [{"annotations": [], **p} if p.get("type") == "output_text" else p for p in content or []]
            item.update(content=content, status=item.get("status") or "completed")
            item.setdefault("id", new_id("msg_"))
        elif kind == "function_call":
            item.setdefault("id", new_id("fc_"))
            item.setdefault("status", "completed")
        elif kind == "function_call_output":
            item.setdefault("id", new_id("fco_"))
            item.setdefault("status", "completed")
        else:
            item.setdefault("id", new_id("rs_"))
        items.append(item)
    return items


def response_body(payload: dict[str, Any], completion: Completion, messages: list[dict[str, Any]],
                  store: ResponseStore) -> dict[str, Any]:
    """The ``response`` object (an SDK ``Response``), stored (unless ``store`` is false) for a later
    ``previous_response_id`` and the retrieve, delete and ``input_items`` routes."""
    response_id = new_id("resp_", 48)
    usage = completion.usage
    if completion.tool_call is not None:
        name, arguments = completion.tool_call
        call_id = new_id("call_")
        output: list[dict[str, Any]] = [{"type": "function_call", "id": new_id("fc_"),
                                         "call_id": call_id, "name": name, "arguments": arguments,
                                         "status": "completed"}]
        said: dict[str, Any] = {"role": "assistant", "content": None, "tool_calls": [
            {"id": call_id, "type": "function", "function": {"name": name, "arguments": arguments}}]}
    else:
        output = [{"type": "message", "id": new_id("msg_", 48), "status": "completed",
                   "role": "assistant", "content": [{"type": "output_text", "text": completion.content,
                                                     "annotations": [], "logprobs": []}]}]
        said = {"role": "assistant", "content": completion.content}
    cut = completion.finish_reason == "length"
    fmt = (payload.get("text") or {}).get("format") or {"type": "text"}
    keep = payload.get("store") is not False
    body = {"id": response_id, "object": "response", "created_at": int(completion.created),
            "status": "incomplete" if cut else "completed", "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": payload.get("instructions"), "max_output_tokens": payload.get("max_output_tokens"),
            "model": completion.model, "output": output, "parallel_tool_calls": True,
            "previous_response_id": payload.get("previous_response_id"), "store": keep,
            "background": False,
            "temperature": payload.get("temperature", 1.0), "text": {"format": fmt},
            "tool_choice": payload.get("tool_choice", "auto"), "tools": payload.get("tools") or [],
            "top_p": payload.get("top_p", 1.0), "truncation": "disabled", "metadata": payload.get("metadata") or {},
            "usage": {"input_tokens": usage.prompt_tokens, "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                      "output_tokens": usage.completion_tokens,
                      "output_tokens_details": {"reasoning_tokens": 0}, "total_tokens": usage.total_tokens}}
    checked = Response.model_validate(body).model_dump(mode="json", exclude_unset=True, by_alias=True)
    checked["created_at"] = int(completion.created)    # the SDK's model says float; the service sends an integer
    if keep:
        store.put(response_id, Stored(checked, _input_items(payload), [*by_reference(messages), said]))
    return checked


def input_items_page(stored: Stored, query: Mapping[str, str]) -> dict[str, Any]:
    """``GET /v1/responses/{id}/input_items``: a cursor page (``order`` desc by default, ``limit`` 1-100 (20),
    ``after`` an item id)."""
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise invalid_value("order", order, ("asc", "desc"))
    try:
        limit = int(query.get("limit", "20"))
    except ValueError:
        raise invalid_type("limit", "an integer", query.get("limit")) from None
    if not 1 <= limit <= 100:
        raise ApiError(400, f"Invalid 'limit': expected a value between 1 and 100, but got {limit} instead.",
                       param="limit", code="invalid_value")
    items = stored.items if order == "asc" else stored.items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item["id"] for item in items]
        items = items[ids.index(after) + 1:] if after in ids else []
    page = items[:limit]
    return {"object": "list", "data": page, "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None, "has_more": len(items) > limit}


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
