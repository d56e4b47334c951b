"""Client-side bounds (issue 10): what an attacker, or an unlucky learner, can hand the helpers on this machine.

Each test's docstring says what the code did before (the attack) and what it does now (the clear error).

* Local paths are checked before they are read: devices, FIFOs, sockets, folders and huge files give an
  ``ImageError`` subclass at once, naming the path and what to do. Attacks that used to exhaust memory or hang
  run in a child process with a memory limit and a timeout, so a regression fails the test instead of the machine.
* A URL's password never shows in what the course prints or saves (errors, image names, turn records, reprs,
  ``last_request()``, Markdown, save files); the body sent keeps it, as the provider needs it.
* A malformed save file always gives ``ConversationFileError`` naming what is wrong (table + hypothesis).
* Lone surrogates in prompts, system text or history give a ``BadRequestError`` before anything is sent.

Run: cd /work/main && python -m pytest -q -o addopts="" tests/test_client_bounds.py
"""

from __future__ import annotations

import copy
import io
import json
import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from localhttp import FakeAPI, QuietHandler, Reply, as_compatible_provider, serve, stop
from PIL import Image

from helpers import Conversation, client
from helpers.chat import (
    ConversationFileError,
    complete,
    last_request,
    query_base64_image_description,
    query_image_description,
)
from helpers.errors import (
    BadRequestError,
    ImageNotFoundError,
    ImageTooLargeError,
    NetworkError,
    UnsupportedImageError,
)
from helpers.images import encode_image, prepare_image, to_data_url

REPO = Path(__file__).resolve().parent.parent
SECRET = "hunter2-" + "s3cr3t"          # the password put in URLs; it must never be printed or saved
KEY = "sk-" + "test-" + "Bq7" * 12 + "k3y9"


def png(size: tuple[int, int] = (40, 30), colour: str = "teal") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


# --- local paths: checked before reading -------------------------------------------------------------------

def run_bounded(code: str, *, seconds: float = 20.0, memory_mb: int = 1500) -> dict[str, Any]:
    """Run ``code`` in a child Python with an address-space limit and a timeout; it prints one JSON line.

    A regression (reading /dev/zero into memory, blocking on a FIFO) then fails this test quickly instead of
    exhausting the machine or hanging the suite.
    """
    prelude = textwrap.dedent(f"""
        import json, resource, sys, time
        resource.setrlimit(resource.RLIMIT_AS, ({memory_mb} << 20, {memory_mb} << 20))
        def report(call):
            start = time.monotonic()
            try:
                call()
                outcome = {{"error": None, "message": ""}}
            except BaseException as err:
                outcome = {{"error": type(err).__name__, "message": str(err),
                           "classes": [c.__name__ for c in type(err).__mro__]}}
            outcome["seconds"] = time.monotonic() - start
            print(json.dumps(outcome))
    """)
    try:
        done = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], cwd=REPO, capture_output=True,
                              text=True, timeout=seconds, env={**os.environ, "VISION_DOTENV": "off"})
    except subprocess.TimeoutExpired:
        pytest.fail(f"the call did not return within {seconds} s (it blocks)")
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_dev_zero_is_refused_before_reading():
    """Before: prepare_image("/dev/zero") read until memory ran out (MemoryError at the 1.5 GB limit here).
    Now: UnsupportedImageError at once, naming the path, saying it is a device, and what to pass instead."""
    out = run_bounded("""
        from helpers.images import prepare_image
        report(lambda: prepare_image("/dev/zero", model="gpt-4o"))
    """)
    assert out["error"] == "UnsupportedImageError", out
    assert "'/dev/zero' is a character device" in out["message"] and "it was not read" in out["message"]
    assert "What to do: pass the path of an image file" in out["message"]
    assert out["seconds"] < 2


def test_a_symlink_to_a_device_is_refused_too(tmp_path):
    """Before: a harmless-looking 'photo.jpg' linking to /dev/zero was read until memory ran out.
    Now: the link is followed by os.stat and the device is refused before opening."""
    link = tmp_path / "photo.jpg"
    link.symlink_to("/dev/zero")
    out = run_bounded(f"""
        from helpers.images import load_image
        report(lambda: load_image({str(link)!r}))
    """)
    assert out["error"] == "UnsupportedImageError" and "character device" in out["message"], out


def test_a_fifo_is_refused_at_once(tmp_path):
    """Before: a named pipe passed as an image blocked forever in open() (no writer ever came).
    Now: UnsupportedImageError "is a named pipe (FIFO), not an image file" without opening it."""
    fifo = tmp_path / "holiday.jpg"
    os.mkfifo(fifo)
    out = run_bounded(f"""
        from helpers.images import prepare_image
        report(lambda: prepare_image({str(fifo)!r}, model="gpt-4o"))
    """, seconds=15)
    assert out["error"] == "UnsupportedImageError", out
    assert "holiday.jpg' is a named pipe (FIFO), not an image file" in out["message"]
    assert out["seconds"] < 2


def test_a_fifo_swapped_in_after_the_check_does_not_block(tmp_path):
    """Before: (no check at all) open() blocked. Now: even if the path changes between os.stat and open (a
    race), the open does not block (O_NONBLOCK) and fstat on the opened file refuses the FIFO."""
    fifo = tmp_path / "race.png"
    os.mkfifo(fifo)
    regular = tmp_path / "regular.png"
    regular.write_bytes(png())
    out = run_bounded(f"""
        import os
        from helpers.images import prepare_image
        real_stat = os.stat
        def lying_stat(path, *args, **kwargs):   # the check sees a regular file; the FIFO is what gets opened
            return real_stat({str(regular)!r}) if str(path) == {str(fifo)!r} else real_stat(path, *args, **kwargs)
        os.stat = lying_stat
        report(lambda: prepare_image({str(fifo)!r}, model="gpt-4o"))
    """, seconds=15)
    assert out["error"] == "UnsupportedImageError" and "named pipe" in out["message"], out


def test_a_huge_sparse_file_is_refused_without_reading(tmp_path):
    """Before: a 20 GB sparse file (made with truncate) was read whole: MemoryError at the 1.5 GB limit here,
    or the machine swapping. Now: ImageTooLargeError at once, with its size, the limit and what to do."""
    huge = tmp_path / "scan.tif"
    with open(huge, "wb") as stream:
        stream.truncate(20 << 30)
    out = run_bounded(f"""
        from helpers.images import prepare_image
        report(lambda: prepare_image({str(huge)!r}, model="gpt-4o"))
    """)
    assert out["error"] == "ImageTooLargeError", out
    assert "scan.tif' is 20480.0 MB, more than the 100.0 MB the course reads from one image file" in out["message"]
    assert "shrink or crop it" in out["message"] and out["seconds"] < 2


def test_encode_image_refuses_a_file_over_the_per_image_limit(tmp_path):
    """Before: encode_image (the naive way) base64-encoded any file, e.g. 21 MB that the API then refused.
    Now: ImageTooLargeError before reading, pointing to to_data_url (which shrinks the image)."""
    big = tmp_path / "big.png"
    with open(big, "wb") as stream:
        stream.truncate(21 << 20)
    with pytest.raises(ImageTooLargeError, match="use to_data_url") as err:
        encode_image(big)
    assert "big.png" in str(err.value) and "20.0 MB" in str(err.value)


def test_a_folder_and_a_socket_are_refused(tmp_path):
    """A folder was already refused (ImageNotFoundError "is a folder"), and still is. A Unix socket used to
    fail on open() with a raw "No such device or address"; now it is named as a socket."""
    with pytest.raises(ImageNotFoundError, match="is a folder, not an image file"):
        prepare_image(tmp_path, model="gpt-4o")
    path = tmp_path / "s.png"
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(str(path))
        with pytest.raises(UnsupportedImageError, match="is a socket, not an image file"):
            to_data_url(path)
    finally:
        server.close()


def test_a_file_just_under_the_cap_is_still_read(tmp_path):
    """The cap does not change what works: a real image is read and prepared as before."""
    photo = tmp_path / "ok.png"
    photo.write_bytes(png((64, 48)))
    assert prepare_image(photo, model="gpt-4o").width == 64


def test_video_paths_refuse_devices_and_fifos(tmp_path):
    """Before: sample_frames("/dev/zero") said the file was "empty (0 bytes)" (devices report size 0), a
    misleading message. Now: VideoError "is a device, a pipe or a socket, not a video file"."""
    from helpers.errors import VideoError
    from helpers.video import sample_frames, video_info

    with pytest.raises(VideoError, match="is a device, a pipe or a socket, not a video file"):
        video_info("/dev/zero")
    fifo = tmp_path / "clip.mp4"
    os.mkfifo(fifo)
    with pytest.raises(VideoError, match="not a video file"):
        sample_frames(fifo, max_frames=2)


# --- credentials in URLs ----------------------------------------------------------------------------------

class _Images(QuietHandler):
    """Serves one PNG at any path (behind Basic auth or not, it does not care)."""

    def do_GET(self) -> None:
        self.send_bytes(200, png((48, 32), "orange"), "image/png")


@pytest.fixture
def image_server():
    httpd = serve(_Images)
    yield f"http://ann:{SECRET}@127.0.0.1:{httpd.server_address[1]}"
    stop(httpd)


@pytest.fixture
def api(monkeypatch):
    """A scripted provider (compatible engine) that records what it receives."""
    fake = FakeAPI()
    as_compatible_provider(monkeypatch, fake, KEY, retries=0)
    yield fake
    client.clear_clients()
    fake.close()


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_download_errors_do_not_show_the_password():
    """Before: NetworkError "Downloading http://ann:hunter2-s3cr3t@127.0.0.1:PORT/x.png failed..." showed the
    password. Now the message shows ann:***@ and the host, so the learner still recognises the URL."""
    url = f"http://ann:{SECRET}@127.0.0.1:{closed_port()}/x.png"
    with pytest.raises(NetworkError) as err:
        to_data_url(url, timeout=2)
    assert SECRET not in str(err.value) and "ann:***@127.0.0.1" in str(err.value)


def test_a_prepared_download_does_not_carry_the_password(image_server):
    """Before: PreparedImage.source_name (shown by summary() and repr) was the URL with its password.
    Now it is redacted; the download itself still used the credentials."""
    prepared = prepare_image(image_server + "/cat.png", model="gpt-4o")
    assert prepared.width == 48
    for shown in (prepared.source_name, repr(prepared), prepared.summary()):
        assert SECRET not in shown and "ann:***@" in shown


def test_conversations_never_print_or_save_the_password(api, tmp_path):
    """Before: the URL with its password was in Conversation.last_request, chat.last_request(), the saved JSON
    (messages) and, for a URL without a file name, the image's name in turn records and as_markdown().
    Now all of them show ann:***@; only the request body on the wire keeps the password."""
    url = f"https://ann:{SECRET}@images.example.org/"
    chat = Conversation("Be brief.")
    assert chat.ask("What is this?", images=[url]) == "Reply 1"
    sent = api.posts[0].body["messages"][1]["content"][1]["image_url"]["url"]
    assert sent == url                                          # the provider needs the credentials
    saved = chat.save(tmp_path / "chat.json").read_text(encoding="utf-8")
    shown = [repr(chat), repr(chat.turns), chat.as_markdown(), json.dumps(chat.last_request), saved,
             json.dumps(last_request()), json.dumps(chat.to_dict())]
    for text in shown:
        assert SECRET not in text
    assert "ann:***@images.example.org" in saved and chat.turns[0].images[0].name == "images.example.org"


def test_provider_errors_that_echo_the_url_do_not_show_the_password(api):
    """Before issue 10: a provider's 400 "Error while downloading https://ann:PASSWORD@..." reached the learner
    as is. helpers.redaction (translate_error) fixed the message; chat.send now also redacts any course error
    passing through it. The course error shows ann:***@."""
    url = f"https://ann:{SECRET}@images.example.org/cat.png"
    api.push(Reply(400, body={"error": {"message": f"Error while downloading {url}.", "type": "invalid_request_error",
                                        "param": None, "code": "invalid_image_url"}}))
    with pytest.raises(BadRequestError) as err:
        query_image_description(url)
    assert SECRET not in str(err.value) and "ann:***@images.example.org" in str(err.value)
    assert SECRET not in err.value.problem


# --- malformed save files ---------------------------------------------------------------------------------

def valid_save(tmp_path: Path) -> dict[str, Any]:
    """A real save file with two turns, one image (with its size), usage and a text follow-up."""
    data = {"format": "gpt-vision-course/conversation", "version": 1, "system": "Be brief.", "model": None,
            "detail": "low", "max_tokens": 200, "drop_old_images": True,
            "messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": [{"type": "text", "text": "What is it?"},
                                                      {"type": "image_url", "image_url": {
                                                          "url": "data:image/png;base64,iVBORw0KGgo=",
                                                          "detail": "low"}}]},
                         {"role": "assistant", "content": "A square."},
                         {"role": "user", "content": [{"type": "text", "text": "What colour?"}]},
                         {"role": "assistant", "content": "Teal."}],
            "turns": [{"user_index": 1, "images": [{"name": "square.png", "width": 40, "height": 30}],
                       "prompt_tokens": 120, "completion_tokens": 3, "finish_reason": "stop", "model": "gpt-4o",
                       "images_omitted": 0},
                      {"user_index": 3, "images": [], "prompt_tokens": 130, "completion_tokens": 2,
                       "finish_reason": "stop", "model": "gpt-4o", "images_omitted": 1}]}
    return data


def edit(change):
    def apply(data: dict[str, Any]) -> Any:
        data = copy.deepcopy(data)
        return change(data) or data
    return apply


def _set(path: tuple, value: Any):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return edit(change)


def _drop(path: tuple):
    def change(data):
        target = data
        for key in path[:-1]:
            target = target[key]
        del target[path[-1]]
    return edit(change)


# (id, mutation of the valid data or raw text, phrase the message must contain; None: it must load)
BAD_FILES = [
    ("not-json", "Hello, this is not JSON", "is not valid JSON"),
    ("truncated", "CUT", "it ends too early: the file was cut short"),
    ("top-level-list", edit(lambda d: [d]), "its top level is a list"),
    ("top-level-null", lambda d: None, "its top level is null"),
    ("unknown-version", _set(("version",), 2), "version 2"),
    ("version-true", _set(("version",), True), "version True"),
    ("version-string", _set(("version",), "1"), "version '1'"),
    ("missing-messages", _drop(("messages",)), 'there is no "messages" list'),
    ("messages-dict", _set(("messages",), {"role": "user"}), "messages is an object, not a list"),
    ("message-without-role", _drop(("messages", 2, "role")), 'messages[2] has no "role"'),
    ("message-not-object", _set(("messages", 1), "hello"), "messages[1] is a string, not an object"),
    ("role-number", _set(("messages", 1, "role"), 7), "messages[1].role is a whole number, not a string"),
    ("content-number", _set(("messages", 2, "content"), 42), "messages[2].content is a whole number"),
    ("part-not-object", _set(("messages", 1, "content", 0), "text"), "messages[1].content[0] is a string"),
    ("image-url-string", _set(("messages", 1, "content", 1, "image_url"), "data:,"),
     "messages[1].content[1].image_url is a string"),
    ("surrogate-in-text", _set(("messages", 4, "content"), "Te\ud800al"), "a lone UTF-16 surrogate"),
    ("turns-dict", _set(("turns",), {}), "turns is an object, not a list"),
    ("turn-without-user-index", _drop(("turns", 0, "user_index")), 'turns[0] has no "user_index"'),
    ("turn-user-index-string", _set(("turns", 0, "user_index"), "1"), "turns[0].user_index is a string"),
    ("turn-user-index-out-of-range", _set(("turns", 1, "user_index"), 99), "not the index of a user message"),
    ("turn-image-extra-key", _set(("turns", 0, "images", 0, "colour"), "teal"), None),
    ("turn-image-not-object", _set(("turns", 0, "images", 0), "square.png"), "turns[0].images[0] is a string"),
    ("turn-tokens-string", _set(("turns", 0, "prompt_tokens"), "120"), "turns[0].prompt_tokens is a string"),
    ("turn-not-object", _set(("turns", 0), 1), "turns[0] is a whole number, not an object"),
    ("detail-medium", _set(("detail",), "medium"), "detail is 'medium'"),
    ("max-tokens-string", _set(("max_tokens",), "lots"), "max_tokens is a string"),
    ("drop-old-images-string", _set(("drop_old_images",), "yes"), "drop_old_images is a string, not true or false"),
    ("system-number", _set(("system",), 5), "system is a whole number"),
    ("deep-nesting", "[" * 100_000 + "]" * 100_000, "nested too deeply"),
]

# What the code before issue 10 did with each file (measured on the previous commit).
BEFORE = {
    "not-json": "ConversationFileError already",
    "truncated": "ConversationFileError, not saying the file was cut short",
    "top-level-list": "ConversationFileError, not saying why",
    "top-level-null": "ConversationFileError, not saying why",
    "unknown-version": "ConversationFileError already",
    "version-true": "loaded (True counted as version 1)",
    "version-string": "ConversationFileError already",
    "missing-messages": "loaded an empty conversation",
    "messages-dict": "ConversationFileError, not saying which part",
    "message-without-role": "ConversationFileError, not saying which message",
    "message-not-object": "ConversationFileError, not saying which message",
    "role-number": "loaded",
    "content-number": "loaded; as_markdown() and drop_old_images then raised TypeError",
    "part-not-object": "loaded; as_markdown() then raised AttributeError",
    "image-url-string": "loaded; the next request was invalid",
    "surrogate-in-text": "loaded; the next ask() raised UnicodeEncodeError inside httpx",
    "turns-dict": "loaded (the dict was iterated as no turns)",
    "turn-without-user-index": "KeyError: 'user_index'",
    "turn-user-index-string": "loaded",
    "turn-user-index-out-of-range": "loaded",
    "turn-image-extra-key": "TypeError: ImageInfo() got an unexpected keyword argument",
    "turn-image-not-object": "TypeError: ImageInfo() argument after ** must be a mapping",
    "turn-tokens-string": "loaded; usage and total_tokens() then raised TypeError",
    "turn-not-object": "TypeError: 'int' object is not subscriptable",
    "detail-medium": "InvalidDetailError (a request error, not a file error)",
    "max-tokens-string": "BadRequestError (a request error, not a file error)",
    "drop-old-images-string": "loaded ('yes' taken as True)",
    "system-number": "BadRequestError 'pass the question as a str' (not a file error)",
    "deep-nesting": "RecursionError",
}


def write_case(tmp_path: Path, mutation: Any) -> Path:
    path = tmp_path / "chat.json"
    if mutation == "CUT":
        text = json.dumps(valid_save(tmp_path), indent=1)
        path.write_text(text[: len(text) // 2], encoding="utf-8")
    elif isinstance(mutation, str):
        path.write_text(mutation, encoding="utf-8", errors="surrogatepass")
    else:
        path.write_text(json.dumps(mutation(valid_save(tmp_path))), encoding="utf-8")
    return path


@pytest.mark.parametrize(("case", "mutation", "phrase"), BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_malformed_save_files_give_conversation_file_error(tmp_path, case, mutation, phrase):
    """Before: ``BEFORE[case]`` (raw KeyError/TypeError/RecursionError, request errors, or a silent load that
    failed later). Now: ConversationFileError naming the part that is wrong, or, for an extra key in a turn's
    image record, a clean load that ignores it (unknown keys are ignored everywhere)."""
    assert case in BEFORE
    path = write_case(tmp_path, mutation)
    if phrase is None:
        chat = Conversation.load(path)
        assert chat.turns[0].images[0].name == "square.png"
        return
    with pytest.raises(ConversationFileError) as err:
        Conversation.load(path)
    assert phrase in str(err.value), str(err.value)
    assert "What to do:" in str(err.value) and isinstance(err.value, ValueError)


def test_the_valid_save_file_loads_and_works(tmp_path):
    chat = Conversation.load(write_case(tmp_path, edit(lambda d: d)))
    assert len(chat.turns) == 2 and chat.total_tokens() == 255
    assert "*[image: square.png, 40×30]*" in chat.as_markdown()


def _mutations() -> st.SearchStrategy:
    json_values = st.recursive(
        st.none() | st.booleans() | st.integers(-3, 10**6) | st.floats(allow_nan=False) | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
        max_leaves=6)
    return st.lists(st.tuples(st.sampled_from(["set", "delete", "append"]), st.integers(0, 10**6), json_values),
                    min_size=1, max_size=4)


def _containers(value: Any, out: list) -> list:
    if isinstance(value, (dict, list)):
        out.append(value)
        for item in (value.values() if isinstance(value, dict) else value):
            _containers(item, out)
    return out


def _mutate(data: Any, steps: list) -> Any:
    for action, pick, value in steps:
        places = _containers(data, [])
        if not places:
            return value
        target = places[pick % len(places)]
        keys = list(target.keys()) if isinstance(target, dict) else list(range(len(target)))
        if action == "append" or not keys:
            if isinstance(target, dict):
                target[f"k{pick % 7}"] = value
            else:
                target.append(value)
        elif action == "set":
            target[keys[pick % len(keys)]] = value
        else:
            del target[keys[pick % len(keys)]]
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=_mutations(), cut=st.none() | st.integers(0, 2000))
def test_any_mutation_of_a_save_file_loads_or_gives_conversation_file_error(tmp_path, steps, cut):
    """Before: mutated files raised KeyError, TypeError, AttributeError or loaded into conversations that then
    crashed. Now: either ConversationFileError, or a conversation whose usage, Markdown and next outgoing
    request can all be computed."""
    data = _mutate(valid_save(tmp_path), steps)
    text = json.dumps(data)
    if cut is not None:
        text = text[:cut]
    path = tmp_path / "mutated.json"
    path.write_text(text, encoding="utf-8")
    try:
        chat = Conversation.load(path)
    except ConversationFileError:
        return
    chat.usage, chat.total_tokens(), chat.as_markdown(), repr(chat)
    chat.drop_old_images = True
    chat._outgoing({"role": "user", "content": [{"type": "text", "text": "next"}]}, has_images=False)


# --- lone surrogates --------------------------------------------------------------------------------------

CUT_EMOJI = "Describe this " + chr(0xD83D)          # the first half of 😀 (U+1F600 is D83D DE00 in UTF-16)


@pytest.mark.parametrize("how", ["url-prompt", "base64-prompt", "last-reply", "complete", "system", "ask",
                                 "history"])
def test_surrogates_give_a_clear_error_before_sending(api, tmp_path, how):
    """Before: a lone surrogate (a cut emoji, text read with errors='surrogateescape') raised UnicodeEncodeError
    from deep inside httpx, after the request had been prepared. Now: BadRequestError naming the character and
    where it is, with what to do, and nothing is sent (a conversation's history is unchanged)."""
    image = tmp_path / "a.png"
    image.write_bytes(png())
    chat = Conversation("Be brief.")
    chat.ask("First question")
    before = copy.deepcopy(chat.messages)
    calls = {
        "url-prompt": lambda: query_image_description("https://example.org/a.png", CUT_EMOJI),
        "base64-prompt": lambda: query_base64_image_description(str(image), CUT_EMOJI),
        "last-reply": lambda: query_base64_image_description("", "More?", [{"role": "user", "content": "Hi"}],
                                                             "Sure " + chr(0xDC80)),
        "complete": lambda: complete([{"role": "user", "content": [{"type": "text", "text": CUT_EMOJI}]}]),
        "system": lambda: Conversation("Answer in " + chr(0xDFFF)),
        "ask": lambda: chat.ask(CUT_EMOJI, images=[str(image)]),
        "history": lambda: chat.ask("Next"),
    }
    if how == "history":      # hand-edited history (e.g. pasted text)
        chat.messages.append({"role": "user", "content": chr(0xD800)})
        before = copy.deepcopy(chat.messages)
    posts = len(api.posts)
    with pytest.raises(BadRequestError) as err:
        calls[how]()
    message = str(err.value)
    assert "UTF-16 surrogate" in message and "nothing was sent" in message and "What to do:" in message
    assert len(api.posts) == posts
    if how == "ask":
        assert chat.messages == before


def test_emoji_and_other_text_still_go_through(api):
    """The check is about surrogates only: emoji, CJK and RTL text are sent as before."""
    text = "What is this? \U0001F600 漢字 עברית"
    assert query_image_description("https://example.org/a.png", text) == "Reply 1"
    assert api.posts[0].body["messages"][0]["content"][0]["text"] == text


def test_save_files_are_described_by_pydantic_models_that_name_the_field(tmp_path):
    """Issue 20: the save file is checked by pydantic models (strict: "1" is not 1); a value out of range in a
    nested record names its path, and a valid file round-trips through the models unchanged."""
    from helpers.conversation import ConversationRecord

    path = write_case(tmp_path, _set(("turns", 0, "images", 0, "width"), -3))
    with pytest.raises(ConversationFileError, match=r"turns\[0\]\.images\[0\]\.width is -3, less than 0"):
        Conversation.load(path)
    data = valid_save(tmp_path)
    record = ConversationRecord.model_validate(data)
    assert record.max_tokens == data["max_tokens"] and len(record.messages) == len(data["messages"])
    assert ConversationRecord.model_json_schema()["required"] == ["format", "version", "messages"]
