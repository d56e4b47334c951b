"""Privacy and secrets, proven on the wire.

1. **No EXIF, GPS or XMP leaves the machine.** Every image in ``images/`` and synthetic JPEG, PNG, WEBP, TIFF, AVIF
   and GIF files carrying camera make/model, GPS coordinates, dates, XMP packets and comments are sent through
   every helper that sends a local image (``query_base64_image_description``, ``query_image_description`` with a
   path, ``Conversation.ask``, ``complete`` with ``image_part`` at low and high detail). A capturing HTTP server
   speaking minimal Chat Completions records the exact request bodies; every data URL in them is decoded and
   checked with Pillow (no EXIF, no GPS IFD 0x8825, no XMP, no comments or text chunks) and byte by byte (no
   ``Exif`` header, no ``<x:xmpmeta`` packet, none of the GPS values, strings and dates that were embedded).
   A control proves the check bites: the naive ``encode_image`` does leak the GPS position.
2. **Keys are never shown.** Settings, clients, every exception raised for an authentication failure (401/403,
   with the server echoing the key masked as the real API does, or in full as a careless proxy might),
   printed output, warnings and logs captured at DEBUG contain no usable part of the key.
   (``tests/test_secrets.py`` covers keys committed to files and notebook outputs.)

Run: cd /work/main && python -m pytest -q -o addopts="" tests/test_privacy.py
"""

from __future__ import annotations

import base64
import io
import json
import logging
import re
import struct
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from localhttp import QuietHandler, base_url, completion, serve
from PIL import ExifTags, Image, PngImagePlugin, TiffImagePlugin, features

from helpers import client
from helpers.chat import complete, query_base64_image_description, query_image_description
from helpers.client import get_client, setup
from helpers.config import describe, load_settings
from helpers.conversation import Conversation
from helpers.errors import AuthenticationError
from helpers.images import encode_image, image_part

REPO = Path(__file__).resolve().parent.parent
IMAGES = REPO / "images"
COURSE_IMAGES = sorted(p.name for p in IMAGES.iterdir() if p.suffix.lower() in (".jpg", ".jpeg", ".png"))

# What the synthetic files carry. The GPS position is Big Ben's (a public landmark), written three ways:
# EXIF rationals, XMP text and a comment.
MAKE, MODEL = "PrivacyTestCam", "SN-4711-SECRET"
TAKEN = "2031:07:04 18:22:09"
XMP = ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
       'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
       'xmlns:exif="http://ns.adobe.com/exif/1.0/" xmlns:xmp="http://ns.adobe.com/xap/1.0/" '
       'exif:GPSLatitude="51,30.0717N" exif:GPSLongitude="0,7.4719W" xmp:CreatorTool="SN-4711-SECRET"/>'
       '</rdf:RDF></x:xmpmeta><?xpacket end="w"?>')
COMMENT = "shot at 51.500597 -0.124531 by SN-4711-SECRET"
# Byte strings that must never be in what is sent (each is also checked to be in the original it came from).
NEEDLES = (b"Exif\x00\x00", b"<x:xmpmeta", b"ns.adobe.com/xap", b"ns.adobe.com/exif", MAKE.encode(), MODEL.encode(),
           TAKEN.encode(), b"51,30.0717N", b"51.500597", b"ExamplePhone", b"Course Camera 1", b"2024:05:12")
METADATA_INFO_KEYS = {"exif", "xmp", "XML:com.adobe.xmp", "comment", "photoshop", "Raw profile type exif", "mp"}


# --- synthetic images with metadata ----------------------------------------------------------------------

def photo(width: int, height: int, seed: int = 0) -> Image.Image:
    """Photo-like pixels: smooth colour blobs plus a little noise (compresses like a photo)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 256, (12, 16, 3), dtype=np.uint8)).resize((width, height),
                                                                                     Image.Resampling.BILINEAR)
    noise = rng.integers(-6, 7, (height, width, 3))
    return Image.fromarray(np.clip(np.asarray(small, dtype=np.int16) + noise, 0, 255).astype(np.uint8))


def exif(orientation: int = 1) -> Image.Exif:
    """EXIF with camera make/model, dates and a GPS IFD (latitude 51° 30' 2.15" N, longitude 0° 7' 28.31" W)."""
    data = Image.Exif()
    data[ExifTags.Base.Make] = MAKE
    data[ExifTags.Base.Model] = MODEL
    data[ExifTags.Base.DateTime] = TAKEN
    data[ExifTags.Base.Orientation] = orientation
    data.get_ifd(ExifTags.IFD.Exif)[ExifTags.Base.DateTimeOriginal] = TAKEN
    gps = data.get_ifd(ExifTags.IFD.GPSInfo)
    gps[ExifTags.GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[ExifTags.GPS.GPSLatitudeRef] = "N"
    gps[ExifTags.GPS.GPSLatitude] = (TiffImagePlugin.IFDRational(51, 1), TiffImagePlugin.IFDRational(30, 1),
                                     TiffImagePlugin.IFDRational(215, 100))
    gps[ExifTags.GPS.GPSLongitudeRef] = "W"
    gps[ExifTags.GPS.GPSLongitude] = (TiffImagePlugin.IFDRational(0, 1), TiffImagePlugin.IFDRational(7, 1),
                                      TiffImagePlugin.IFDRational(2831, 100))
    gps[ExifTags.GPS.GPSAltitude] = TiffImagePlugin.IFDRational(1234, 100)
    return data


def encoded(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def png_with_metadata(image: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    info.add_itxt("XML:com.adobe.xmp", XMP)
    info.add_text("Comment", COMMENT)
    info.add_text("Creation Time", TAKEN)
    return encoded(image, "PNG", exif=exif(), pnginfo=info)


def tiff_with_metadata() -> bytes:
    tags = TiffImagePlugin.ImageFileDirectory_v2()
    tags[ExifTags.Base.Make] = MAKE
    tags[ExifTags.Base.Model] = MODEL
    tags[ExifTags.Base.DateTime] = TAKEN
    tags[ExifTags.Base.ImageDescription] = COMMENT
    return encoded(photo(320, 240, 5), "TIFF", tiffinfo=tags)


SYNTHETIC: dict[str, Callable[[], bytes]] = {
    # small enough to keep their pixels: metadata is cut out of the file container
    "jpeg-small.jpg": lambda: encoded(photo(400, 300, 1), "JPEG", quality=92, exif=exif(), xmp=XMP.encode(),
                                      comment=COMMENT.encode()),
    "png-small.png": lambda: png_with_metadata(photo(300, 200, 2)),
    "webp-small.webp": lambda: encoded(photo(400, 300, 3), "WEBP", quality=85, exif=exif(), xmp=XMP.encode()),
    # rotated by EXIF: decoded, turned upright and re-encoded
    "jpeg-orientation-6.jpg": lambda: encoded(photo(360, 240, 4), "JPEG", quality=92, exif=exif(orientation=6),
                                              xmp=XMP.encode()),
    # larger than the model looks at: resized and re-encoded
    "jpeg-large.jpg": lambda: encoded(photo(3000, 2000, 6), "JPEG", quality=90, exif=exif(), xmp=XMP.encode()),
    "png-large.png": lambda: png_with_metadata(photo(1700, 1200, 7)),
    "webp-large.webp": lambda: encoded(photo(2400, 1600, 8), "WEBP", quality=80, exif=exif(), xmp=XMP.encode()),
    # formats the API does not take: converted
    "tiff.tif": tiff_with_metadata,
    "gif-comment.gif": lambda: encoded(photo(200, 150, 9).convert("P"), "GIF", comment=COMMENT.encode()),
}
if features.check("avif"):
    SYNTHETIC["avif.avif"] = lambda: encoded(photo(320, 240, 10), "AVIF", quality=80, exif=exif(), xmp=XMP.encode())


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    """The synthetic files written to disk, next to nothing else."""
    root = tmp_path_factory.mktemp("metadata")
    for name, build in SYNTHETIC.items():
        (root / name).write_bytes(build())
    return root


# --- what the original carries ---------------------------------------------------------------------------

def gps_fingerprints(data: bytes) -> list[bytes]:
    """The GPS rationals of an image's EXIF, packed as they are stored (either byte order) and found in ``data``."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            gps = image.getexif().get_ifd(ExifTags.IFD.GPSInfo)
    except Exception:  # noqa: BLE001 - a format without EXIF support
        return []
    found = []
    for value in gps.values():
        for item in value if isinstance(value, tuple) else (value,):
            if isinstance(item, TiffImagePlugin.IFDRational) and item.denominator > 1:
                for order in "<>":
                    packed = struct.pack(order + "LL", item.numerator, item.denominator)
                    if packed in data:
                        found.append(packed)
    return found


def secrets_in(data: bytes) -> list[bytes]:
    """Every needle (fixed strings and GPS rationals) present in ``data``."""
    return [needle for needle in NEEDLES if needle in data] + gps_fingerprints(data)


def assert_clean(data: bytes, forbidden: list[bytes], what: str) -> None:
    """No metadata in an image that was sent: checked by Pillow and byte by byte."""
    leaked = [needle for needle in set(forbidden) | set(NEEDLES) if needle in data]
    assert not leaked, f"{what}: {leaked} found in the bytes sent"
    with Image.open(io.BytesIO(data)) as image:
        exif_data = image.getexif()
        assert len(exif_data) == 0, f"{what}: EXIF tags sent: {dict(exif_data)}"
        assert ExifTags.IFD.GPSInfo not in exif_data and not exif_data.get_ifd(ExifTags.IFD.GPSInfo)
        assert not (METADATA_INFO_KEYS & set(image.info)), f"{what}: {METADATA_INFO_KEYS & set(image.info)}"
        assert not getattr(image, "text", None), f"{what}: PNG text chunks {image.text}"
        assert image.format in ("PNG", "JPEG", "WEBP", "GIF")
        image.load()


# --- a capturing provider --------------------------------------------------------------------------------

class Capture:
    """A local HTTP server that records every request body and answers a minimal chat completion, or, when
    ``refuse`` is set, a 401/403 error whose message may echo the key it was given."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []
        self.auth: list[str] = []
        self.refuse: tuple[int, Callable[[str], dict]] | None = None
        capture = self

        class Handler(QuietHandler):
            def do_POST(self) -> None:
                body = self.read_body()
                key = self.headers.get("api-key") or self.headers.get("Authorization", "").partition(" ")[2]
                capture.bodies.append(body)
                capture.auth.append(key)
                if capture.refuse is not None:
                    status, make = capture.refuse
                    self.send_json(status, make(key))
                    return
                self.send_json(200, completion("Seen.", number=len(capture.bodies), model="capture"))

        self.httpd = serve(Handler)

    @property
    def url(self) -> str:
        return base_url(self.httpd)

    def images_sent(self) -> list[bytes]:
        """The decoded bytes of every data URL in every recorded body, in order."""
        found = []
        for body in self.bodies:
            for match in re.finditer(rb"data:image/[a-z0-9.+-]+;base64,([A-Za-z0-9+/=]+)", body):
                found.append(base64.b64decode(match.group(1)))
        return found

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def capture():
    server = Capture()
    yield server
    server.close()


@pytest.fixture
def wire(capture, monkeypatch):
    """The 'compatible' provider pointed at the capturing server; the record starts empty."""
    for name in ("OPENAI_API_KEY", "VISION_MODEL", "VISION_OFFLINE_FAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VISION_DOTENV", "off")
    monkeypatch.setenv("VISION_PROVIDER", "compatible")
    monkeypatch.setenv("OPENAI_BASE_URL", capture.url + "/v1")
    monkeypatch.setenv("VISION_MAX_RETRIES", "0")
    monkeypatch.setenv("VISION_TIMEOUT", "10")
    client.clear_clients()
    capture.bodies.clear()
    capture.auth.clear()
    capture.refuse = None
    yield capture
    capture.refuse = None
    client.clear_clients()


# --- 1. no metadata on the wire ---------------------------------------------------------------------------

def _send_every_way(source: Any, *, is_path: bool) -> int:
    """Send ``source`` through every helper that sends a local image; return how many images were sent."""
    sent = 0
    if is_path:
        query_base64_image_description(source, "Where was this taken?")
        query_image_description(str(source), "Who took this?")
        sent += 2
    Conversation().ask("Which camera took this?", images=[source])
    sent += 1
    for detail in ("low", "high"):
        complete([{"role": "user", "content": [{"type": "text", "text": "When was this taken?"},
                                               image_part(source, detail=detail)]}], max_tokens=50)
        sent += 1
    return sent


@pytest.mark.parametrize("name", COURSE_IMAGES)
def test_course_images_reach_the_wire_without_metadata(name, wire):
    original = (IMAGES / name).read_bytes()
    forbidden = secrets_in(original)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")                 # e.g. a model-size note; not what is tested here
        count = _send_every_way(IMAGES / name, is_path=True)
    images = wire.images_sent()
    assert len(images) == count
    for data in images:
        assert_clean(data, forbidden, name)


def test_the_course_gps_photo_really_carries_gps_and_the_naive_way_leaks_it():
    """Control: the checks above would catch a leak. The source notebook's plain base64 sends the position."""
    original = (IMAGES / "exif_gps_photo.jpg").read_bytes()
    assert b"Exif\x00\x00" in original and b"ExamplePhone" in original and gps_fingerprints(original)
    naive = base64.b64decode(encode_image(IMAGES / "exif_gps_photo.jpg"))
    with pytest.raises(AssertionError, match="found in the bytes sent"):
        assert_clean(naive, secrets_in(original), "encode_image")


@pytest.mark.parametrize("name", list(SYNTHETIC))
def test_synthetic_images_with_exif_gps_and_xmp_reach_the_wire_clean(name, folder, wire):
    path = folder / name
    original = path.read_bytes()
    forbidden = secrets_in(original)
    assert forbidden, f"the synthetic {name} should carry metadata (control)"
    if name.endswith((".jpg", ".png", ".webp", ".avif")):
        assert gps_fingerprints(original), f"{name} should carry GPS rationals (control)"
    count = _send_every_way(path, is_path=True)
    images = wire.images_sent()
    assert len(images) == count
    for data in images:
        assert_clean(data, forbidden, name)


@pytest.mark.parametrize("form", ["bytes", "pillow-image", "data-url"])
def test_in_memory_sources_with_gps_reach_the_wire_clean(form, wire):
    """The same GPS photo given as raw bytes, as an opened Pillow image (its ``info`` holds the EXIF), and as a
    data URL of the untouched file."""
    original = (IMAGES / "exif_gps_photo.jpg").read_bytes()
    forbidden = secrets_in(original)
    if form == "bytes":
        source: Any = original
    elif form == "pillow-image":
        source = Image.open(IMAGES / "exif_gps_photo.jpg")
        assert "exif" in source.info
    else:
        source = "data:image/jpeg;base64," + base64.b64encode(original).decode("ascii")
    count = _send_every_way(source, is_path=False)
    images = wire.images_sent()
    assert len(images) == count
    for data in images:
        assert_clean(data, forbidden, form)
    if form == "pillow-image":
        assert "exif" in source.info                    # the caller's image is not modified either


def test_only_the_image_bytes_leave_not_the_file_path(folder, wire):
    """Nothing else about the file travels either: no folder path, no GPS text in the JSON around the images."""
    Conversation().ask("Where?", images=[folder / "jpeg-small.jpg", folder / "png-small.png"])
    (body,) = wire.bodies
    assert str(folder).encode() not in body and b"jpeg-small" not in body
    outside = re.sub(rb"data:image/[a-z0-9.+-]+;base64,[A-Za-z0-9+/=]+", b"", body)
    assert not [needle for needle in NEEDLES if needle in outside]


# --- 2. keys are never shown -----------------------------------------------------------------------------

# Keys shaped like real ones, built at run time (no key-shaped literal in the repository).
OPENAI_KEY = "sk-proj-" + "Vb7Qm2Lx9Rt4" * 4 + "T3BlbkFJ" + "Hn5Wc8Pz3Ky6" * 2 + "abcd"
AZURE_KEY = "9f3a" * 7 + "c0de"


def usable_parts(key: str) -> list[str]:
    """Every 8-character window of the key's secret part (all but a recognisable prefix and the last 4)."""
    start = len("sk-proj-") if key.startswith("sk-proj-") else 0
    secret = key[start:-4]
    return [secret[i:i + 8] for i in range(len(secret) - 7)]


def assert_no_key(text: str, key: str, where: str) -> None:
    assert key not in text, f"the full key appears in {where}"
    found = [part for part in usable_parts(key) if part in text]
    assert not found, f"part of the key ({found[0]}...) appears in {where}"


def real_api_echo(key: str) -> dict:
    """OpenAI's 401 body: it echoes the key masked, keeping the start and the last four characters."""
    return {"error": {"message": f"Incorrect API key provided: {key[:8]}{'*' * 36}{key[-4:]}. You can find your "
                                 "API key at https://platform.openai.com/account/api-keys.",
                      "type": "invalid_request_error", "param": None, "code": "invalid_api_key"}}


def proxy_echo(key: str) -> dict:
    """A careless proxy: echoes the whole key, in the message and in another field."""
    return {"error": {"message": f"Key {key} is not allowed for this project.", "type": "auth_error",
                      "param": key, "code": "invalid_api_key"}}


def azure_echo(key: str) -> dict:
    return {"error": {"code": "401", "message": f"Access denied due to invalid subscription key {key} or wrong API "
                                                "endpoint. Make sure to provide a valid key for an active "
                                                "subscription and use a correct regional API endpoint for your "
                                                "resource."}}


AUTH_FAILURES = {
    "openai-401-masked-echo": ("compatible", 401, real_api_echo),
    "openai-401-full-echo": ("compatible", 401, proxy_echo),
    "openai-403-full-echo": ("compatible", 403, proxy_echo),
    "azure-401-full-echo": ("azure", 401, azure_echo),
}


@pytest.mark.parametrize("case", list(AUTH_FAILURES))
def test_auth_failures_settings_clients_output_and_logs_never_show_the_key(case, wire, monkeypatch, capfd, caplog,
                                                                            tmp_path):
    provider, status, echo = AUTH_FAILURES[case]
    key = OPENAI_KEY if provider == "compatible" else AZURE_KEY
    if provider == "compatible":
        monkeypatch.setenv("OPENAI_API_KEY", key)
    else:
        monkeypatch.delenv("OPENAI_BASE_URL")
        monkeypatch.setenv("VISION_PROVIDER", "azure")
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", wire.url)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", key)
        monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-21")
        monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "course-vision")
        monkeypatch.setenv("VISION_MODEL", "gpt-4.1-mini")
    client.clear_clients()
    wire.refuse = (status, echo)
    caplog.set_level(logging.DEBUG)                       # every logger: helpers, openai, httpx2, httpcore2...

    texts: dict[str, str] = {}
    with warnings.catch_warnings(record=True) as caught_warnings:
        warnings.simplefilter("always")
        settings = load_settings()
        texts["repr(Settings)"], texts["str(Settings)"] = repr(settings), str(settings)
        texts["describe()"] = describe(settings)
        sdk, _model = setup(verbose=True)
        texts["repr(client)"], texts["str(client)"] = repr(sdk), str(sdk)
        texts["repr(async client)"] = repr(get_client(settings, asynchronous=True))
        chat = Conversation("Be brief.")
        with pytest.raises(AuthenticationError) as caught:
            chat.ask("What is in this image?", images=[IMAGES / "cat.jpg"])
        with pytest.raises(AuthenticationError) as caught_again:
            query_image_description(str(IMAGES / "cat.jpg"))
    assert wire.auth and all(sent == key for sent in wire.auth)   # the key really was in play

    for label, err in (("Conversation.ask", caught.value), ("query_image_description", caught_again.value)):
        assert err.status == status
        texts[f"str({label} error)"] = str(err)
        texts[f"repr({label} error)"] = repr(err)
        texts[f"{label} error attributes"] = repr(vars(err))
        texts[f"{label} traceback"] = "".join(traceback.format_exception(err))
        assert ("AZURE_OPENAI_API_KEY" if provider == "azure" else "OPENAI_API_KEY") in err.fix
    texts["warnings"] = "\n".join(str(w.message) for w in caught_warnings)
    out, errout = capfd.readouterr()
    texts["stdout"], texts["stderr"] = out, errout
    texts["logs"] = "\n".join(f"{r.name}: {r.getMessage()}" for r in caplog.records)
    texts["conversation"] = repr(chat) + chat.as_markdown() + json.dumps(chat.last_request)
    saved = chat.save(tmp_path / "chat.json")
    texts["saved conversation"] = saved.read_text(encoding="utf-8")

    assert "Provider:" in out                             # setup() printed its line (and it was checked)
    if echo is real_api_echo:
        assert "...abcd" in texts["str(Conversation.ask error)"]   # masked, still recognisable
    for where, text in texts.items():
        assert_no_key(text, key, where)


def test_openai_provider_settings_and_client_never_show_the_key(monkeypatch, capfd):
    """The real OpenAI provider (no request is sent): settings from a mapping and from the process environment."""
    from_mapping = load_settings({"VISION_DOTENV": "off", "OPENAI_API_KEY": OPENAI_KEY})
    monkeypatch.setenv("VISION_PROVIDER", "openai")
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    from_environment = load_settings()
    try:
        for settings in (from_mapping, from_environment):
            assert settings.provider == "openai" and settings.api_key == OPENAI_KEY
            sdk = get_client(settings)
            for label, text in (("repr", repr(settings)), ("str", str(settings)), ("f-string", f"{settings}"),
                                ("describe", describe(settings)), ("client", repr(sdk))):
                assert_no_key(text, OPENAI_KEY, label)
            assert "sk-...abcd" in repr(settings)
        setup(verbose=True)
    finally:
        client.clear_clients()
    out, err = capfd.readouterr()
    assert "api.openai.com" in out
    assert_no_key(out + err, OPENAI_KEY, "setup() output")


def test_url_passwords_with_an_at_sign_and_bare_tokens_are_redacted():
    """Review of issue 10: 'https://u:p@ss@host' showed '@ss@host' after the mask, and 'https://TOKEN@host' was
    shown whole; both are secrets in what the course prints or saves."""
    from helpers.redaction import redact_url

    assert redact_url("https://u:p@ss@host/x.png") == "https://u:***@host/x.png"
    assert redact_url("fetch https://ghp_TOKEN123@raw.example.org/a.png failed") == \
        "fetch https://***@raw.example.org/a.png failed"
    assert redact_url("https://host/v1/a@b and mailto:ann@example.org") == \
        "https://host/v1/a@b and mailto:ann@example.org"              # not user-info: left alone


_MACHINE_PATH = re.compile(r"(/root/|/home/[^/\s\"']+|/Users/[^/\s\"']+|[A-Za-z]:\\\\Users\\\\|/tmp/|/work/)")


def _stored_text_outputs(notebook: Path) -> list[tuple[int, str]]:
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    found = []
    for index, cell in enumerate(cells):
        for output in cell.get("outputs", []):
            text = "".join(output.get("text", "")) + "".join(output.get("traceback", []))
            for kind, value in output.get("data", {}).items():
                if not kind.startswith("image/"):
                    text += "".join(value) if isinstance(value, list) else str(value)
            found.append((index, text))
    return found


@pytest.mark.parametrize("notebook", sorted((Path(__file__).parents[1] / "notebooks").glob("*.ipynb")),
                         ids=lambda p: p.name)
def test_stored_lessons_show_no_folder_of_the_machine_that_ran_them(notebook):
    """A lesson's stored output names no home or temporary folder: it would tell readers the author's user name,
    and nbval fails for a teacher whose home differs (lesson 00 printed ~/.cache in a repr, seen 2026-12-07)."""
    leaks = [(index, match.group(0)) for index, text in _stored_text_outputs(notebook)
             for match in [_MACHINE_PATH.search(text)] if match]
    assert not leaks, f"{notebook.name}: cells with a machine's folder in their output: {leaks}"
