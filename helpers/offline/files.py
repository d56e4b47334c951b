"""``POST /v1/files`` offline: uploads kept in memory so that a Responses ``input_image`` can name a ``file_id``.

The body is ``multipart/form-data`` with a ``file`` and a ``purpose`` (as ``client.files.create(file=...,
purpose="vision")`` sends it), read with the standard library's MIME parser. Files live only while the server
runs: at most :data:`MAX_FILES` of them and :data:`MAX_TOTAL_BYTES` in all (the oldest are dropped first).

>>> store = FileStore()
>>> item = store.add(b"hello", "notes.txt", "user_data")
>>> item["object"], item["bytes"], store.data(item["id"])
('file', 5, b'hello')
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from openai.types import FileObject

from helpers.offline.schema import ApiError, invalid_value, missing

__all__ = ["FileStore", "parse_upload"]

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
                          filename=filename, purpose=purpose, status="processed").model_dump(mode="json")
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
                fields[name] = (part.get_payload(decode=True) or b"", part.get_filename())
    if "purpose" not in fields:
        raise missing("purpose")
    purpose = fields["purpose"][0].decode("utf-8", "replace").strip()
    if purpose not in PURPOSES:
        raise invalid_value("purpose", purpose, PURPOSES)
    if "file" not in fields:
        raise missing("file")
    data, filename = fields["file"]
    return data, filename or "upload", purpose
