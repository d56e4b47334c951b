"""The work behind an answer, independent of HTTP: fetch and decode the images, analyse the last user turn,
compose the answer, count the tokens.

It runs in a worker thread; ``cancelled`` (set when the client disconnects) is checked between the expensive
steps (each download, each decode, each analysis), so an abandoned request stops instead of keeping a core busy.
"""

from __future__ import annotations

import base64
import binascii
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from helpers import images, tokens
from helpers.errors import CourseError, ImageError, ImageTooLargeError, UnknownModelError
from helpers.offline import analysis, answers, fill, replay
from helpers.offline.completions import Completion, prompt_tokens, truncate_to_tokens, usage_block
from helpers.offline.enhancements import grounding_from_report, ocr_from_report
from helpers.offline.fetch import Budget, Cancelled, DownloadPolicy, fetch_url
from helpers.offline.protocol import ApiError, ChatRequest, ImagePart, OutputSpec, Route, apply_stop, dumps
from helpers.offline.summaries import parse_time

#: The offline backend's OWN bound on image bytes per request on the OpenAI route (URL downloads included), not a
#: documented OpenAI number any more: the 2024-2025 guide said "Up to 50 MB image bytes per request"; the guide
#: checked 2026-12-02 says "Up to 512 MB total payload size per request" (:data:`OPENAI_MAX_PAYLOAD_BYTES`), which
#: the simulator does not reach (its request bodies stop at helpers.offline.app.MAX_BODY_BYTES, 96 MiB, to bound
#: its memory). docs/FACTS.md section 5. The Azure route is bounded by its images-per-request setting.
MAX_IMAGE_BYTES_PER_REQUEST = 50 * 1024 * 1024
OPENAI_MAX_PAYLOAD_BYTES = 512 * 1024 * 1024
UNSUPPORTED_IMAGE = ("You uploaded an unsupported image. Please make sure your image is below 20 MB in size and "
                     "is of one the following formats: ['png', 'jpeg', 'gif', 'webp'].")
INVALID_IMAGE = ("The image data you provided does not represent a valid image. Please check your input and try "
                 "again with one of the supported image formats: ['image/jpeg', 'image/png', 'image/gif', "
                 "'image/webp'].")
@dataclass(frozen=True)
class LoadedImage:
    """An image part of a request and its :class:`~helpers.offline.analysis.Picture` (bytes, sniffed MIME type,
    SHA-256, size, pixels: each read or computed once)."""

    part: ImagePart
    picture: analysis.Picture

    @property
    def data(self) -> bytes:
        return self.picture.data

    @property
    def mime_type(self) -> str:
        return self.picture.mime_type

    @property
    def width(self) -> int:
        return self.picture.size[0]

    @property
    def height(self) -> int:
        return self.picture.size[1]


def _checked_size(picture: analysis.Picture, param: str | None = None) -> tuple[int, int]:
    """The picture's size, its pixels decoded if this image was not seen before; the API's 400 errors."""
    try:
        return picture.size
    except ImageTooLargeError:
        raise ApiError(400, "The image has too many pixels to process safely. Downscale it (e.g. to 2048 px on the "
                            "long side) before sending it.", param=param, code="image_too_large") from None
    except ImageError:
        raise ApiError(400, INVALID_IMAGE, param=param, code="invalid_image") from None


def decoded_size(data: bytes, mime: str = "image/png") -> tuple[int, int]:
    """Width and height of an image of type ``mime``, after checking that its pixels decode (first frame);
    known sizes are remembered by content. Raises :class:`ApiError` 400 ``invalid_image`` / ``image_too_large``.

    >>> import io; from PIL import Image
    >>> buf = io.BytesIO(); Image.new("RGB", (40, 30)).save(buf, "PNG")
    >>> decoded_size(buf.getvalue())
    (40, 30)
    """
    return _checked_size(analysis.Picture(data, mime))


def _is_base64_data_url(url: str) -> bool:
    """True if ``url`` is ``data:...;base64,<non-empty valid base64>`` (whatever the bytes are)."""
    head, sep, payload = url.partition(",")
    if not sep or not head.lower().endswith(";base64"):
        return False
    try:
        return bool(base64.b64decode(re.sub(r"\s+", "", payload), validate=True))
    except (binascii.Error, ValueError):
        return False


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text")
    return ""


def _time_label(messages: list[Any], part: ImagePart) -> str | None:
    """The timestamp in the short text part just before an image (``"Frame at 00:07.0"``), or None."""
    content = messages[part.message_index].get("content")
    if not isinstance(content, list) or part.part_index == 0:
        return None
    before = content[part.part_index - 1]
    if not isinstance(before, dict) or before.get("type") != "text" or not isinstance(before.get("text"), str):
        return None
    return parse_time(before["text"])


def low_detail_size(image: LoadedImage, model: str) -> tuple[int, int] | None:
    """The size a model looks at the image with ``detail="low"``: a tile-family model (gpt-4o, gpt-4.1) gets a
    version that fits in 512 x 512, so small print it cannot read is not read here either (notebook 04). None
    when the image is analysed at full size.

    ``high`` and ``auto`` are analysed at full size (the offline answers describe the picture), and so is ``low``
    where it changes nothing (patch-family models, or an image that already fits). A model the cost tables do
    not know is sized by the tile rules, as :mod:`helpers.tokens` does.
    """
    if image.part.detail != "low":
        return None
    try:
        size = tokens.scaled_size(image.width, image.height, "low", model)
    except UnknownModelError:
        size = tokens.scaled_size(image.width, image.height, "low", "gpt-4o")
    return None if size == (image.width, image.height) else size


class ChatBackend:
    """Turns a validated request into a :class:`Completion`. Thread-safe; shared by all requests of a server."""

    def __init__(self, policy: DownloadPolicy, recording: replay.Recording | None = None, *,
                 analysis_cache: Path | None = None) -> None:
        self.policy = policy
        #: Where image analyses are kept on disk (None: in memory only).
        self.analysis_cache = analysis_cache
        self._hinted: set[str | None] = set()      # learners whose first answer ended with answers.HINT
        self._hint_lock = threading.Lock()
        #: A teacher's recording (:mod:`helpers.offline.replay`): matching requests get its answers first.
        self.recording = recording

    def _claim_hint(self, learner: str | None) -> bool:
        """True once per learner (None: this process's one learner): the first text answer carries the hint
        that real answers need a model; later ones do not repeat it. Deterministic for a notebook, whose
        kernel starts its own backend."""
        with self._hint_lock:
            if learner in self._hinted:
                return False
            self._hinted.add(learner)
            return True

    def fetch(self, part: ImagePart, budget: Budget) -> bytes:
        """The bytes of an image part: a data URL, or a URL fetched under the download policy."""
        return self._fetch(part, budget)[0]

    def _fetch(self, part: ImagePart, budget: Budget) -> tuple[bytes, str | None]:
        """``(bytes, MIME type sniffed from them or None)``: a data URL's type is sniffed as it is decoded."""
        url = part.url.strip()
        if url.startswith("data:"):
            try:
                mime, data = images.decode_data_url(url)
                return data, mime
            except (ImageError, ValueError) as err:
                if _is_base64_data_url(url):      # well-formed base64, but the bytes are not an image
                    raise ApiError(400, UNSUPPORTED_IMAGE, param=part.param, code="invalid_image_format") from None
                problem = err.problem if isinstance(err, CourseError) else str(err)
                raise ApiError(400, f"Invalid image URL: '{part.param}.url'. The data URL could not be decoded "
                                    f"({problem}).", param=f"{part.param}.url", code="invalid_image_url") from None
        if not re.match(r"(?i)https?://", url):
            raise ApiError(400, f"Invalid image URL: '{part.param}.url'. Expected a base64-encoded data URL with an "
                                "image MIME type (e.g. 'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got a "
                                "value without the 'data:' prefix.", param=f"{part.param}.url", code="invalid_value")
        return fetch_url(part.url, self.policy, budget), None

    def read(self, part: ImagePart, budget: Budget) -> LoadedImage:
        """Fetch one image, check its byte limits (cheap checks first), sniff it (once) and hash it (once); its
        pixels are decoded later, when first needed."""
        budget.check()
        data, mime = self._fetch(part, budget)
        if len(data) > images.MAX_IMAGE_BYTES:
            raise ApiError(400, UNSUPPORTED_IMAGE + f" (this one is over {images.MAX_IMAGE_BYTES // 2**20} "
                                "MB)", param=part.param, code="image_too_large")
        budget.bytes_left -= len(data)
        if budget.bytes_left < 0:
            raise ApiError(400, f"The images of this request add up to more than "
                                f"{MAX_IMAGE_BYTES_PER_REQUEST // 2**20} MB, the offline backend's own limit "
                                f"(OpenAI documents {OPENAI_MAX_PAYLOAD_BYTES // 2**20} MB of request payload). "
                                "Send fewer images, or smaller ones.",
                           param="messages", code="images_too_large")
        mime = mime or images.sniff_mime(data)
        if mime not in analysis.READERS:
            raise ApiError(400, UNSUPPORTED_IMAGE, param=part.param, code="invalid_image_format")
        return LoadedImage(part, analysis.Picture(data, mime))

    def load_all(self, parts: list[ImagePart], route: Route, budget: Budget,
                 read: dict[int, LoadedImage] | None = None) -> list[LoadedImage]:
        """Read every image (:meth:`read`; ``read`` holds those already read, by part index), then check that
        each one decodes and measure it."""
        fetched = [(read or {}).get(i) or self.read(part, budget) for i, part in enumerate(parts)]
        for image in fetched:
            budget.check()
            _checked_size(image.picture, image.part.param)
        return fetched

    @staticmethod
    def inspect(part: ImagePart, data: bytes, mime: str | None = None) -> LoadedImage:
        """Sniff the real format (the bytes, not the declared MIME type) unless known, and decode one image."""
        mime = mime or images.sniff_mime(data)
        if mime not in analysis.READERS:
            raise ApiError(400, UNSUPPORTED_IMAGE, param=part.param, code="invalid_image_format")
        image = LoadedImage(part, analysis.Picture(data, mime))
        _checked_size(image.picture, part.param)
        return image

    def complete(self, request: ChatRequest, digest: str,
                 cancelled: Callable[[], bool] = lambda: False) -> Completion:
        """Answer a validated request (deterministic apart from ``created``); :class:`Cancelled` if the client
        went away meanwhile. ``digest``: hex digits the answer's id is made from (the routes give a fresh random
        one per request, so two identical requests get two ids)."""
        byte_cap = MAX_IMAGE_BYTES_PER_REQUEST if request.route.api == "openai" else 2**62
        budget = Budget.for_request(byte_cap, cancelled)
        recording = self.recording
        read: dict[int, LoadedImage] = {}
        if recording is not None:
            # The images sent as data URLs are read and hashed once, for the recording's key and for the answer.
            read = {i: self.read(part, budget) for i, part in enumerate(request.image_parts)
                    if part.url.strip().startswith("data:")}
            digests = {image.part.url.strip(): image.picture.sha256 for image in read.values()}
            recorded = replay.replay(recording, request, lambda: self._prompt_tokens(request, budget, read), digests)
            if recorded is not None:
                return recorded
        loaded = self.load_all(request.image_parts, request.route, budget, read)
        last_user = max((i for i, m in enumerate(request.messages) if m.get("role") == "user"), default=None)
        question = _text_of(request.messages[last_user].get("content")) if last_user is not None else ""
        turn_images = [img for img in loaded if img.part.message_index == last_user]
        # A text-only follow-up is answered from the images earlier in the conversation (the most recent ones).
        earlier = not turn_images and request.output.kind == "text" and bool(loaded)
        answered = loaded[-answers.MAX_EARLIER_IMAGES:] if earlier else turn_images
        reports = []
        for image in answered:
            budget.check()
            reports.append(self._analyze(image, request.model, self.analysis_cache))
        output = request.output
        hint = output.kind == "text" and self._claim_hint(request.learner)
        context = answers.Context(tuple(_time_label(request.messages, img.part) for img in answered), earlier, hint)
        text, tool_call, log = self._shaped(output, question, reports, [img.picture for img in answered], context)
        if recording is not None and tool_call is None and output.kind == "text":
            text = replay.fallback_line(recording) + text
        text = apply_stop(text, output.stop)[0]
        finish = "stop" if tool_call is None or output.forced_tool == "named" else "tool_calls"
        if request.max_tokens is not None:
            text, cut = truncate_to_tokens(text, request.max_tokens, request.model)
            finish = "length" if cut else finish
        called = (tool_call, text) if tool_call is not None else None
        enhancements = (self._enhancements(request, text, [] if earlier else reports)
                        if request.ocr or request.grounding else None)
        usage = usage_block(self._prompt_tokens_of(request, loaded),
                            tokens.text_tokens(text, request.model) * output.n)
        return Completion(id="chatcmpl-" + digest[:29], created=int(time.time()), model=request.echo_model,
                          content=text, finish_reason=finish, usage=usage, azure=request.route.api == "azure",
                          enhancements=enhancements, tool_call=called, n=output.n,
                          fill=log.header() if log is not None else None,
                          source=replay.fallback_source(recording) if recording is not None else None)

    def count_prompt_tokens(self, request: ChatRequest, cancelled: Callable[[], bool] = lambda: False) -> int:
        """``usage.prompt_tokens`` the request would be billed, without answering it (``input_tokens`` route)."""
        byte_cap = MAX_IMAGE_BYTES_PER_REQUEST if request.route.api == "openai" else 2**62
        return self._prompt_tokens(request, Budget.for_request(byte_cap, cancelled), {})

    def _prompt_tokens(self, request: ChatRequest, budget: Budget, read: dict[int, LoadedImage]) -> int:
        """``usage.prompt_tokens`` of a request (its images fetched and measured)."""
        return self._prompt_tokens_of(request, self.load_all(request.image_parts, request.route, budget, read))

    @classmethod
    def _prompt_tokens_of(cls, request: ChatRequest, loaded: list[LoadedImage]) -> int:
        """``usage.prompt_tokens``: the messages with the measured images, plus tools and schema."""
        sizes = {(i.part.message_index, i.part.part_index): (i.width, i.height, i.part.detail) for i in loaded}
        return prompt_tokens(request.messages, sizes, request.model) + cls._tool_tokens(request)

    @staticmethod
    def _shaped(output: OutputSpec, question: str, reports: list[Any], data: list[analysis.Picture],
                context: answers.Context) -> tuple[str, str | None, fill.FillLog | None]:
        """``(text, called function or None, fill log or None)``: the Markdown answer, or JSON filled from the
        analysis (:mod:`helpers.offline.fill`) for ``response_format`` and forced tool calls."""
        facts = fill.Facts(tuple(reports))
        if output.kind in ("json_schema", "tool"):
            try:
                value, log = fill.fill(output.schema or {}, facts)
            except RecursionError:
                raise ApiError(400, "The schema nests too deeply (or refers to itself without a way to stop) for "
                                    "the offline backend to fill it.", param="response_format",
                               code="invalid_json_schema") from None
            return dumps(value), (output.name if output.kind == "tool" else None), log
        if output.kind == "json_object":
            value, log = fill.json_object(facts, answers.NOTICE if reports else answers.NOTICE_NO_IMAGE)
            return dumps(value), None, log
        return answers.compose(question, reports, data, context), None, None

    @staticmethod
    def _tool_tokens(request: ChatRequest) -> int:
        """Tokens of the tool definitions and of the response format's schema (they are part of the prompt)."""
        payload = {"tools": list(request.output.tools), "schema": request.output.schema} \
            if request.output.kind != "text" or request.output.tools else None
        return tokens.text_tokens(dumps(payload), request.model) if payload else 0

    @staticmethod
    def _analyze(image: LoadedImage, model: str, store: Path | None) -> Any:
        try:
            return analysis.analyze_picture(image.picture, size=low_detail_size(image, model), store=store)
        except ImageTooLargeError as err:
            raise ApiError(400, err.problem, param=image.part.param, code="image_too_large") from None
        except ImageError:
            raise ApiError(400, INVALID_IMAGE, param=image.part.param, code="invalid_image") from None

    @staticmethod
    def _enhancements(request: ChatRequest, text: str, reports: list[Any]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        report = reports[0] if reports else None
        if request.grounding:
            result["grounding"] = (grounding_from_report(text, report) if report is not None
                                   else {"lines": [{"text": text, "spans": []}], "status": "Success"})
        if request.ocr:
            result["ocr"] = (ocr_from_report(report) if report is not None
                             else {"status": "Success", "metadata": None, "readResult": {"blocks": []}})
        return result


__all__ = ["Cancelled", "ChatBackend", "LoadedImage", "decoded_size"]
