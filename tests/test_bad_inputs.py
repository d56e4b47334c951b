"""Bad inputs, one table: what a learner can get wrong, and what the course answers.

Every row names the input, the exception the course raises (a class from ``helpers.errors``, a warning, an HTTP
error of the offline server, or success for inputs that only *look* bad), and a key phrase of the message that
tells the learner what to do. Rows that go through a :class:`~helpers.conversation.Conversation` also prove that a failed
turn leaves ``conversation.messages`` (and ``turns``) deep-equal to what they were before.

Everything runs locally: an offline backend started by this module (the ``offline`` provider is routed to it),
a tiny HTTP server below that answers like a broken or strict provider, and closed ports for "network down".

Run: cd /work/main && python -m pytest -q -o addopts="" tests/test_bad_inputs.py
"""

from __future__ import annotations

import base64
import copy
import io
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
from localhttp import QuietHandler, base_url, serve, stop
from PIL import Image

from helpers import client, tokens
from helpers.chat import complete, query_base64_image_description, query_image_description
from helpers.config import load_settings
from helpers.conversation import Conversation
from helpers.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigurationError,
    CourseError,
    ImageNotFoundError,
    ImageTooLargeError,
    ModelNotFoundError,
    NetworkError,
    RetiredModelError,
    ServiceError,
    UnsupportedImageError,
)
from helpers.images import decode_data_url, prepare_image, to_data_url
from helpers.models import DEFAULT_MODEL
from helpers.offline.server import OfflineServer

# A key shaped like a real project key, built at run time (no key-shaped literal in the repository).
FAKE_KEY = "sk-proj-" + "Zq9Xw2" * 8 + "T3BlbkFJ" + "Kd7Vn4" * 4 + "abcd"
RETIRED = "gpt-4-vision-preview"


# --- images made here -------------------------------------------------------------------------------------

def noisy(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8)).convert(mode)


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def write(folder: Path, name: str, data: bytes) -> Path:
    path = folder / name
    path.write_bytes(data)
    return path


def small_pngs(count: int, size: int = 8) -> list[bytes]:
    """``count`` distinct tiny PNGs (different colours, so no two are the same file)."""
    return [encoded(Image.new("RGB", (size, size), (i % 256, (i // 256) % 256, 77)), "PNG") for i in range(count)]


def iso_box(brand: bytes, compatible: tuple[bytes, ...]) -> bytes:
    """The start of a HEIF/AVIF file: an ISO-BMFF ``ftyp`` box with a major brand and compatible brands, then
    bytes that are not a valid ``meta`` box (a file cut short, or one this Pillow cannot decode)."""
    body = b"ftyp" + brand + (0).to_bytes(4, "big") + b"".join(compatible)
    return (len(body) + 4).to_bytes(4, "big") + body + b"\x00\x00\x00\x20meta" + bytes(200)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (60, 40), colour) for colour in ("red", "green", "blue")]
    return encoded(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)


def sixteen_bit_png() -> bytes:
    values = (np.arange(200 * 100, dtype=np.uint32).reshape(100, 200) * 3).astype("<u2")
    return encoded(Image.frombytes("I;16", (200, 100), values.tobytes()), "PNG")


def sent_images(request: dict[str, Any] | None) -> list[Image.Image]:
    """The images of the newest user message of a request body, decoded from their data URLs."""
    assert request is not None
    user = [m for m in request["messages"] if m["role"] == "user"][-1]
    found = []
    for part in user["content"]:
        if part.get("type") == "image_url" and part["image_url"]["url"].startswith("data:"):
            _mime, data = decode_data_url(part["image_url"]["url"])
            found.append(Image.open(io.BytesIO(data)))
    return found


# --- a tiny provider that misbehaves on purpose ----------------------------------------------------------

class BrokenProvider:
    """Answers ``POST /<mode>/v1/chat/completions`` like a broken or strict provider would.

    Modes: ``badjson`` (200, Content-Type JSON, body cut in the middle), ``nochoices`` (200, valid JSON without
    ``choices``), ``nomessage`` (200, a choice without ``message``), ``401`` (OpenAI's wrong-key error, echoing the
    key masked the way the real API does).
    """

    def __init__(self) -> None:
        class Handler(QuietHandler):
            def do_POST(self) -> None:
                self.read_body()
                mode = self.path.strip("/").split("/")[0]
                status = 200
                if mode == "badjson":
                    data = b'{"id": "chatcmpl-1", "object": "chat.completion", "choices": [{"index": 0, "mess'
                elif mode == "nochoices":
                    data = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "m"}).encode()
                elif mode == "nomessage":
                    data = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "m", "created": 0,
                                       "choices": [{"index": 0, "finish_reason": "stop"}]}).encode()
                else:
                    key = self.headers.get("Authorization", "").partition(" ")[2]
                    status = 401
                    data = json.dumps({"error": {
                        "message": f"Incorrect API key provided: {key[:8]}{'*' * 20}{key[-4:]}. You can find your "
                                   "API key at https://platform.openai.com/account/api-keys.",
                        "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}).encode()
                self.send_bytes(status, data)

        self.httpd = serve(Handler)

    def url(self, mode: str) -> str:
        return f"{base_url(self.httpd)}/{mode}/v1"

    def close(self) -> None:
        stop(self.httpd)


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# --- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    local = OfflineServer(warm_ocr=False, download_timeout=1.0)
    local.start()
    yield local
    local.stop()


@pytest.fixture(scope="module")
def broken():
    fake = BrokenProvider()
    yield fake
    fake.close()


@dataclass
class Ctx:
    """What a row can use: a scratch folder, the servers, and a conversation that already has one turn."""

    tmp: Path
    server: OfflineServer
    broken: BrokenProvider
    chat: Conversation


@pytest.fixture
def ctx(tmp_path, server, broken, monkeypatch):
    """The ``offline`` provider routed to this module's server, and a conversation with one successful turn."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "VISION_MODEL", "VISION_OFFLINE_FAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VISION_PROVIDER", "offline")
    monkeypatch.setenv("VISION_DOTENV", "off")
    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    monkeypatch.setenv("VISION_TIMEOUT", "20")
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: server.base_url)
    client.clear_clients()
    chat = Conversation("Answer briefly.")
    assert chat.ask("What is this?", images=[encoded(noisy(64, 48), "PNG")])
    yield Ctx(tmp_path, server, broken, chat)
    client.clear_clients()


# --- the table --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Http:
    """An HTTP error answer of the offline server: status and ``error.code``."""

    status: int
    code: str | None


@dataclass(frozen=True)
class Case:
    """One bad input. ``expect`` is an exception class, a warning class (the call succeeds, with that warning),
    an :class:`Http` answer, or None (the call must succeed). ``phrase`` must appear in the message."""

    id: str
    call: Callable[[Ctx], Any]
    expect: type[BaseException] | Http | None
    phrase: str
    env: dict[str, Callable[[Ctx], str] | str | None] = field(default_factory=dict)
    conversation: bool = False          # the call is a turn of ctx.chat: a failure must leave it unchanged
    check: Callable[[Ctx, Any], None] | None = None
    seconds: float = 15.0               # the answer must come at least this fast


def ask(*images: Any, text: str = "What is in this picture?", **options: Any) -> Callable[[Ctx], str]:
    def run(c: Ctx) -> str:
        return c.chat.ask(text, images=[img(c) if callable(img) else img for img in images], **options)
    return run


def tmpfile(name: str, data: bytes) -> Callable[[Ctx], Path]:
    return lambda c: write(c.tmp, name, data)


def check_strip(_c: Ctx, prepared: Any) -> None:
    # The course default (a patch-family model): `high` allows 1536 patches or 2048 px (guide, checked 2026-12-02),
    # so the strip is sent 2048 x 1 (no longer 30000 px wide); the tokens are those of that size.
    assert (prepared.width, prepared.height) == (2048, 1)
    assert (prepared.width, prepared.height) == tokens.scaled_size(30000, 10, "auto", DEFAULT_MODEL)
    assert 1 <= prepared.height <= prepared.width <= 30000 and prepared.mime_type == "image/png"
    assert prepared.tokens == tokens.image_tokens(30000, 10, "auto", DEFAULT_MODEL) < 2000
    decoded = Image.open(io.BytesIO(prepared.data))
    assert decoded.size == (prepared.width, prepared.height)
    # A tile-family model looks at it at most 2048 px wide: the helpers send exactly that.
    tile = prepare_image(Image.new("RGB", (30000, 10), "red"), "high", "gpt-4o")
    assert (tile.width, tile.height) == (2048, 1) and tile.tokens == tokens.image_tokens(30000, 10, "high", "gpt-4o")


def check_cmyk(c: Ctx, _reply: str) -> None:
    (sent,) = sent_images(c.chat.last_request)
    assert sent.format == "JPEG" and sent.mode == "RGB" and sent.size == (300, 200)
    red, green, blue = sent.getpixel((150, 100))
    assert red < 60 and green > 200 and blue > 200                       # CMYK (255, 0, 0, 0) is cyan


def check_gif(c: Ctx, _reply: str) -> None:
    (sent,) = sent_images(c.chat.last_request)
    assert getattr(sent, "n_frames", 1) == 1                         # a still image was sent
    assert len(c.chat.messages) == 5                                 # system, first turn, this turn


def check_16bit(_c: Ctx, prepared: Any) -> None:
    decoded = Image.open(io.BytesIO(prepared.data))
    assert decoded.mode == "L" and decoded.size == (200, 100)
    assert decoded.getextrema() == (0, round(59997 / 257))           # scaled to 8 bits, not clipped at 255


CASES: list[Case] = [
    # --- files and images (helpers.images, through a conversation turn) ---
    Case("missing-file", ask(lambda c: c.tmp / "holiday_photo.jpg"), ImageNotFoundError, "check the spelling",
         conversation=True),
    Case("directory", ask(lambda c: c.tmp), ImageNotFoundError, "is a folder, not an image file", conversation=True),
    Case("empty-file", ask(tmpfile("empty.png", b"")), UnsupportedImageError, "is empty (0 bytes)",
         conversation=True),
    Case("truncated-jpeg", ask(tmpfile("half.jpg", encoded(noisy(300, 200), "JPEG")[:6000])),
         UnsupportedImageError, "truncated (the file ends too early)", conversation=True),
    Case("text-file-named-png", ask(tmpfile("notes.png", b"Shopping list:\n- milk\n- eggs\n")),
         UnsupportedImageError, "its name ends in .png, but its bytes are not an image", conversation=True),
    Case("svg", ask(tmpfile("logo.svg", b'<?xml version="1.0"?>\n<svg xmlns="http://www.w3.org/2000/svg" '
                                        b'width="90" height="90"><circle r="40" cx="45" cy="45"/></svg>')),
         UnsupportedImageError, "export it to PNG", conversation=True),
    Case("heic", ask(tmpfile("IMG_0042.HEIC", iso_box(b"heic", (b"mif1", b"heic")))), UnsupportedImageError,
         "Most Compatible saves JPEGs", conversation=True),
    Case("avif-undecodable", lambda c: prepare_image(iso_box(b"avif", (b"avif", b"mif1", b"miaf"))),
         UnsupportedImageError, "convert it to JPEG or PNG"),
    Case("pdf-named-jpg", lambda c: query_base64_image_description(write(c.tmp, "scan.jpg", b"%PDF-1.7\n%\xe2\xe3\n")),
         UnsupportedImageError, "export the page as PNG"),
    Case("base64-text-as-path", lambda c: to_data_url(base64.b64encode(encoded(noisy(40, 30), "PNG")).decode()),
         UnsupportedImageError, "wrap the base64 text in a data URL"),
    Case("data-url-not-base64", ask("data:image/png,iVBORw0KGgo"), UnsupportedImageError,
         "';base64,' is missing", conversation=True),
    Case("animated-gif", ask(tmpfile("dance.gif", animated_gif())), UserWarning, "animated GIF with 3 frames",
         conversation=True, check=check_gif),
    Case("over-20mb-after-preparation",
         lambda c: prepare_image(encoded(noisy(900, 700), "PNG"), "high", max_bytes=1_000_000),
         ImageTooLargeError, "use detail='low', crop the part that matters"),
    Case("over-20mb-sent-raw", lambda c: complete([{"role": "user", "content": [
        {"type": "text", "text": "What is it?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(
            b"\x89PNG\r\n\x1a\n" + bytes(21 * 2**20)).decode()}}]}]),
         BadRequestError, "over 20 MB"),
    Case("strip-30000x10", lambda c: prepare_image(write(c.tmp, "strip.png", encoded(
        Image.new("RGB", (30000, 10), "red"), "PNG"))), None, "", check=check_strip),
    Case("cmyk-jpeg", ask(lambda c: encoded(Image.new("CMYK", (300, 200), (255, 0, 0, 0)), "JPEG")), None, "",
         conversation=True, check=check_cmyk),
    Case("16-bit-png", lambda c: prepare_image(sixteen_bit_png()), None, "", check=check_16bit),
    # --- requests the provider refuses ---
    # VISION_OFFLINE_AZURE_MAX_IMAGES=10 imitates Azure's how-to (the simulator's default is the quotas page's 50).
    Case("11-images-on-azure", ask(*small_pngs(11)), BadRequestError, "Too many images in request. Max is 10",
         env={"VISION_OFFLINE_AZURE_MAX_IMAGES": "10", "VISION_PROVIDER": "azure", "AZURE_OPENAI_ENDPOINT": lambda c: c.server.base_url,
              "AZURE_OPENAI_API_KEY": "0123456789abcdef" * 2, "AZURE_OPENAI_API_VERSION": "2024-10-21",
              "AZURE_OPENAI_DEPLOYMENT": "course-vision", "VISION_MODEL": DEFAULT_MODEL},
         conversation=True),
    Case("1501-images-on-openai-route", ask(*small_pngs(1501)), BadRequestError,
         "were provided, the maximum is 1500", conversation=True, seconds=60),
    Case("remote-image-url-unreachable-by-server", ask("http://127.0.0.1:9/x.png"), BadRequestError,
         "Error while downloading http://127.0.0.1:9/x.png", conversation=True),
    Case("remote-image-url-raw", lambda c: requests.post(
        c.server.base_url + "/v1/chat/completions", timeout=10, headers={"Authorization": "Bearer offline"},
        json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": [
            {"type": "text", "text": "Describe it."},
            {"type": "image_url", "image_url": {"url": "http://127.0.0.1:9/x.png"}}]}]}),
         Http(400, "invalid_image_url"), "Error while downloading"),
    # --- arguments ---
    Case("empty-prompt-no-image", ask(text=""), BadRequestError, "ask a question, attach an image, or both",
         conversation=True),
    Case("blank-prompt-base64-helper", lambda c: query_base64_image_description("", "   "), BadRequestError,
         "Nothing to send"),
    Case("prompt-not-a-string", lambda c: c.chat.ask(None), BadRequestError, "pass the question as a str",
         conversation=True),
    Case("negative-max-tokens", ask(text="Hello", max_tokens=-1), BadRequestError,
         "max_tokens must be a positive whole number", conversation=True),
    Case("zero-max-tokens-url-helper", lambda c: query_image_description(c.server.base_url + "/images/cat.jpg",
                                                                         max_tokens=0),
         BadRequestError, "pass e.g. max_tokens=300"),
    Case("detail-medium", ask(lambda c: encoded(noisy(40, 30), "PNG"), detail="medium"), BadRequestError,
         "use detail='low'", conversation=True),
    # --- models ---
    Case("unknown-model", ask(text="Hello"), ModelNotFoundError, "check VISION_MODEL",
         env={"VISION_MODEL": "gpt-4o-vision-typo"}, conversation=True),
    Case("retired-model", ask(text="Hello"), RetiredModelError, "instead: set VISION_MODEL=",
         env={"VISION_MODEL": RETIRED}, conversation=True),
    # --- keys ---
    Case("missing-key-raw-request", lambda c: requests.post(
        c.server.base_url + "/v1/chat/completions", timeout=10,
        json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}]}),
         Http(401, None), "provide your API key in an Authorization header"),
    Case("missing-key-raw-request-azure", lambda c: requests.post(
        c.server.base_url + "/openai/deployments/course-vision/chat/completions?api-version=2024-10-21", timeout=10,
        json={"messages": [{"role": "user", "content": "Hi"}]}),
         Http(401, "401"), "invalid subscription key"),
    Case("missing-key-openai-settings", lambda c: load_settings({"VISION_DOTENV": "off", "VISION_PROVIDER": "openai"}),
         ConfigurationError, "add OPENAI_API_KEY=... to .env"),
    Case("missing-key-azure-settings", lambda c: load_settings({
        "VISION_DOTENV": "off", "AZURE_OPENAI_ENDPOINT": "https://course.openai.azure.com",
        "AZURE_OPENAI_API_VERSION": "2024-10-21", "AZURE_OPENAI_DEPLOYMENT": DEFAULT_MODEL}),
         ConfigurationError, "add AZURE_OPENAI_API_KEY=... to .env"),
    Case("wrong-key", ask(text="Hello"), AuthenticationError, "check OPENAI_API_KEY",
         env={"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": lambda c: c.broken.url("401"),
              "OPENAI_API_KEY": FAKE_KEY}, conversation=True),
    # --- network and broken answers ---
    Case("unreachable-image-url-helper", lambda c: to_data_url("http://127.0.0.1:9/x.png"), NetworkError,
         "check the address and your internet connection", seconds=5),
    Case("network-down-compatible", ask(text="Hello"), NetworkError, "Check OPENAI_BASE_URL",
         env={"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": lambda c: f"http://127.0.0.1:{closed_port()}/v1"},
         conversation=True, seconds=5),
    Case("offline-server-down", ask(text="Hello"), NetworkError, "python -m helpers.offline",
         env={"offline_server_url": lambda c: f"http://127.0.0.1:{closed_port()}"}, conversation=True, seconds=5),
    Case("missing-choices", ask(text="Hello"), ServiceError, "speaks the Chat Completions API",
         env={"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": lambda c: c.broken.url("nochoices")},
         conversation=True),
    Case("malformed-json-200", ask(text="Hello"), ServiceError, "Chat Completions API",
         env={"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": lambda c: c.broken.url("badjson")},
         conversation=True),
    Case("choice-without-message", ask(text="Hello"), ServiceError, "Chat Completions API",
         env={"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": lambda c: c.broken.url("nomessage")},
         conversation=True),
]


def _param(case: Case) -> Any:
    return pytest.param(case, id=case.id)


def _apply_env(c: Ctx, case: Case, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in case.env.items():
        resolved = value(c) if callable(value) else value
        if name == "offline_server_url":             # route the offline provider somewhere else
            monkeypatch.setattr(client, "offline_server_url", lambda port=None, url=resolved: url)
        elif resolved is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, resolved)
    client.clear_clients()


def test_the_table_is_big_enough():
    assert len(CASES) >= 25 and len({c.id for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_bad_input(case: Case, ctx: Ctx, monkeypatch):
    _apply_env(ctx, case, monkeypatch)
    messages_before = copy.deepcopy(ctx.chat.messages)
    turns_before = list(ctx.chat.turns)
    started = time.monotonic()
    result: Any = None

    if isinstance(case.expect, Http):
        response = case.call(ctx)
        assert response.status_code == case.expect.status, response.text[:300]
        error = response.json()["error"]
        assert error["code"] == case.expect.code
        assert case.phrase in error["message"]
    elif case.expect is None:
        result = case.call(ctx)
    elif issubclass(case.expect, Warning):
        with pytest.warns(case.expect, match=case.phrase):
            result = case.call(ctx)
    else:
        with pytest.raises(case.expect) as caught:
            case.call(ctx)
        err = caught.value
        assert type(err).__module__ == "helpers.errors" and isinstance(err, CourseError), type(err)
        assert case.phrase in str(err), str(err)
        assert err.fix, "every course error says what to do"
        assert FAKE_KEY not in str(err) and FAKE_KEY[8:-4] not in str(err)
    assert time.monotonic() - started < case.seconds

    if case.check is not None:
        case.check(ctx, result)
    if case.conversation and not (case.expect is None or (isinstance(case.expect, type)
                                                           and issubclass(case.expect, Warning))):
        assert ctx.chat.messages == messages_before, "a failed turn must leave the history exactly as it was"
        assert ctx.chat.turns == turns_before
    elif case.conversation:
        assert ctx.chat.messages[:len(messages_before)] == messages_before
        assert len(ctx.chat.messages) == len(messages_before) + 2      # exactly one new question and answer


def test_the_conversation_still_works_after_every_kind_of_failure(ctx, monkeypatch):
    """The same Conversation object survives a run of failures and then answers normally."""
    for case in CASES:
        if not case.conversation or case.expect is None or isinstance(case.expect, Http) \
                or issubclass(case.expect, Warning) or case.id == "501-images-on-openai-route":
            continue
        with monkeypatch.context() as patch:
            _apply_env(ctx, case, patch)
            with pytest.raises(case.expect):
                case.call(ctx)
        client.clear_clients()
    assert [m["role"] for m in ctx.chat.messages] == ["system", "user", "assistant"]
    assert ctx.chat.ask("And now a plain question?")
    assert [m["role"] for m in ctx.chat.messages] == ["system", "user", "assistant", "user", "assistant"]


def test_a_thin_strip_does_not_make_the_offline_analysis_allocate_hundreds_of_megabytes():
    """A 6400x8 banner (a 30000x10 strip does the same, with 1.7 GB and ~10 s) has no legible text; reading it
    must cost about what any other image costs. Measured with tracemalloc (numpy and OpenCV arrays are traced)."""
    import tracemalloc

    from helpers import ocr

    ocr.get_engine()                                     # model loading is not what is measured
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        lines = ocr.ocr_lines(Image.new("RGB", (6400, 8), "white"))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert lines == []
    assert peak < 150 * 2**20, f"peak {peak / 2**20:.0f} MB for an 8-pixel-high blank strip"
