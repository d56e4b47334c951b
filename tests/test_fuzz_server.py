"""Fuzzing the offline backend: whatever arrives, it answers, and it answers like the API.

Every request gets either a valid completion (200 with ``choices``, or a well-formed event stream ending in
``[DONE]``) or a JSON error (4xx with ``error.message``): never a 5xx, never a connection closed without an answer,
and the server keeps serving afterwards. Bodies come from Hypothesis: arbitrary JSON values, and structured but
wrong chat bodies (random types for model, messages, roles, content, parts, image_url, detail, max_tokens, stream,
temperature, n, enhancements...) on both the OpenAI and the Azure route; then raw byte garbage and broken framing
(wrong, negative, huge or doubled Content-Length, bad chunked encoding, garbage request lines, oversized headers).

Examples are derandomized (the same ones every run, so CI is reproducible) and bounded to keep the file under a
minute. Run: cd /work/main && python -m pytest -q -o addopts="" tests/test_fuzz_server.py
"""

from __future__ import annotations

import base64
import io
import json
import logging
import socket
import time

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from helpers.models import DEFAULT_MODEL
from helpers.offline.server import OfflineServer

RETIRED = "gpt-4-vision-preview"
FUZZ = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                       HealthCheck.function_scoped_fixture])


def _png(colour: str, size: tuple[int, int] = (8, 8)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, colour).save(buffer, "PNG")
    return buffer.getvalue()


def _data_url(data: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


# --- fixtures ---------------------------------------------------------------------------------------------

class ErrorLog(logging.Handler):
    """Collects ERROR records of the server's logger (an unexpected exception is logged there before a 500)."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def server():
    local = OfflineServer(warm_ocr=False, read_timeout=0.5, download_timeout=0.5, max_body_bytes=4 * 2**20)
    errors = ErrorLog()
    logger = logging.getLogger("helpers.offline")
    logger.addHandler(errors)
    local.start()
    local.errors = errors  # type: ignore[attr-defined]
    yield local
    local.stop()
    logger.removeHandler(errors)


@pytest.fixture(scope="module")
def http(server):
    with requests.Session() as session:
        yield session


@pytest.fixture(autouse=True)
def no_server_errors(server):
    """After every test: nothing was logged as an unexpected error, and a plain request is still answered."""
    yield
    assert not server.errors.records, server.errors.records[0].getMessage()
    response = requests.post(server.base_url + "/v1/chat/completions", timeout=10,
                             headers={"Authorization": "Bearer offline"},
                             json={"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Still there?"}]})
    assert response.status_code == 200 and response.json()["choices"][0]["message"]["content"]


# --- the one property ---------------------------------------------------------------------------------------

def check_answer(status: int, content_type: str, body: bytes, *, stream_requested: bool = False) -> None:
    """A valid completion (JSON or event stream), or a 4xx JSON error with a message."""
    assert status < 500, f"{status}: {body[:300]!r}"
    if status == 200:
        if content_type.startswith("text/event-stream"):
            assert stream_requested
            events = [line[len(b"data: "):] for line in body.split(b"\n\n") if line.startswith(b"data: ")]
            assert events and events[-1] == b"[DONE]", body[-200:]
            chunks = [json.loads(event) for event in events[:-1]]
            assert chunks and all(chunk["object"] == "chat.completion.chunk" for chunk in chunks)
            assert any(choice.get("finish_reason") for chunk in chunks for choice in chunk["choices"])
        else:
            assert content_type.startswith("application/json"), content_type
            payload = json.loads(body)
            assert payload["object"] == "chat.completion"
            assert payload["choices"] and isinstance(payload["choices"][0]["message"]["content"], str)
        return
    assert 400 <= status < 500, status
    assert content_type.startswith("application/json"), (status, content_type, body[:200])
    error = json.loads(body)["error"]
    assert isinstance(error["message"], str) and error["message"].strip(), error


def send(http: requests.Session, server: OfflineServer, payload: bytes, *, azure: str | None = None) -> None:
    """POST raw bytes as a JSON body (OpenAI route, or the Azure route of deployment ``azure``) and check."""
    if azure is None:
        url, headers = server.base_url + "/v1/chat/completions", {"Authorization": "Bearer offline"}
    else:
        url = f"{server.base_url}/openai/deployments/{azure}/chat/completions?api-version=2024-10-21"
        headers = {"api-key": "fuzz"}
    headers["Content-Type"] = "application/json"
    try:
        response = http.post(url, data=payload, headers=headers, timeout=30)
    except requests.ConnectionError as err:                 # the server hung up without answering
        pytest.fail(f"connection dropped for body {payload[:200]!r}: {err}")
    stream = b'"stream": true' in payload
    check_answer(response.status_code, response.headers.get("Content-Type", ""), response.content,
                 stream_requested=stream)


# --- strategies ---------------------------------------------------------------------------------------------

scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

IMAGE_URLS = [_data_url(_png("red")), _data_url(_png("blue"), "image/jpeg"),       # declared type differs
              "data:image/png;base64,not*base64", "data:image/png;base64,", "data:text/plain;base64,aGVsbG8=",
              "data:image/png," + "A" * 8, _data_url(_png("green")[:30]),            # truncated PNG
              _data_url(b"BM" + bytes(60), "image/bmp"), "http://127.0.0.1:9/x.png", "ftp://example.org/a.png",
              "file:///etc/passwd", "images/cat.jpg", "", "  "]


def mostly(right: st.SearchStrategy, wrong: st.SearchStrategy, weight: int = 3) -> st.SearchStrategy:
    """``right`` about ``weight`` times in ``weight + 1``, else ``wrong``: bodies get far enough to reach the
    deeper checks (images, limits, stream options) instead of all failing at the first field."""
    return st.sampled_from((True,) * weight + (False,)).flatmap(lambda ok: right if ok else wrong)


urls = mostly(st.sampled_from(IMAGE_URLS[:2]), st.sampled_from(IMAGE_URLS[2:]) | json_values, weight=2)
details = mostly(st.sampled_from(["low", "high", "auto"]), st.sampled_from(["medium", "HIGH", ""]) | json_values)
image_urls = mostly(st.fixed_dictionaries({"url": urls}, optional={"detail": details}),
                    urls | st.fixed_dictionaries({}, optional={"detail": details}))
text_parts = st.fixed_dictionaries({"type": st.just("text"), "text": mostly(st.text(max_size=40), json_values)})
parts = mostly(text_parts | st.fixed_dictionaries({"type": st.just("image_url"), "image_url": image_urls}),
               st.fixed_dictionaries({"type": st.sampled_from(["refusal", "input_audio", "file", "image", "", "TEXT"])
                                      | json_values}, optional={"refusal": json_values, "text": json_values})
               | st.fixed_dictionaries({"type": st.just("image_url")})
               | json_values)
contents = mostly(st.text(max_size=60) | st.lists(parts, min_size=1, max_size=4), st.lists(parts, max_size=0)
                  | json_values)
roles = mostly(st.sampled_from(["user", "user", "user", "system", "assistant", "developer"]),
               st.sampled_from(["tool", "function", "bot", "USER"]) | json_values)
messages = mostly(st.fixed_dictionaries({"role": roles, "content": contents},
                                        optional={"name": mostly(st.text(max_size=6), json_values)}),
                  st.fixed_dictionaries({}, optional={"role": roles, "content": contents, "tool_calls": json_values})
                  | json_values)
models = mostly(st.just(DEFAULT_MODEL), st.sampled_from([DEFAULT_MODEL + "-2099-01-01", RETIRED, "gpt-unknown", ""])
                | json_values)
integers = mostly(st.integers(min_value=1, max_value=10**6), st.integers(min_value=-5, max_value=0) | json_values)
chat_bodies = st.fixed_dictionaries(
    {"model": models, "messages": mostly(st.lists(messages, min_size=1, max_size=2), st.just([]) | json_values)},
    optional={"max_completion_tokens": integers, "max_tokens": mostly(st.just(None), integers, 1),
              "stream": mostly(st.booleans(), json_values),
              "stream_options": mostly(st.fixed_dictionaries({}, optional={"include_usage": st.booleans()}),
                                       json_values, 1),
              "temperature": mostly(st.floats(min_value=0, max_value=2), st.floats(min_value=-1, max_value=3)
                                    | json_values),
              "n": mostly(st.just(1), integers),
              "enhancements": st.fixed_dictionaries({}, optional={
                  "ocr": st.fixed_dictionaries({"enabled": st.booleans() | json_values}) | json_values,
                  "grounding": st.fixed_dictionaries({"enabled": st.booleans() | json_values})}) | json_values,
              "dataSources": st.lists(st.fixed_dictionaries({"type": st.just("AzureComputerVision"), "parameters":
                                      st.fixed_dictionaries({"endpoint": st.text(max_size=10),
                                                             "key": st.text(max_size=10)})}), max_size=1)
              | json_values})
routes = st.sampled_from([None, None, None, DEFAULT_MODEL, "my-vision-deployment", RETIRED])


# --- JSON bodies ---------------------------------------------------------------------------------------------

@settings(FUZZ, max_examples=120)
@given(body=chat_bodies, route=routes)
def test_structured_but_wrong_chat_bodies(server, http, body, route):
    send(http, server, json.dumps(body).encode(), azure=route)


@settings(FUZZ, max_examples=40)
@given(spec=mostly(st.fixed_dictionaries({"url": mostly(st.sampled_from(IMAGE_URLS[:2]), st.sampled_from(IMAGE_URLS[2:]), 1)},
                                            optional={"detail": details}),
                   st.fixed_dictionaries({"url": json_values}) | st.sampled_from(IMAGE_URLS) | json_values),
       extra=st.lists(st.sampled_from(IMAGE_URLS[:2]), max_size=2), route=routes)
def test_fuzzed_image_parts_in_an_otherwise_valid_request(server, http, spec, extra, route):
    """The image stage (fetch, decode, sniff, size limits) gets bodies that pass every earlier check."""
    content = [{"type": "text", "text": "What is in it?"}, {"type": "image_url", "image_url": spec}]
    content += [{"type": "image_url", "image_url": {"url": url}} for url in extra]
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}]}
    send(http, server, json.dumps(body).encode(), azure=route)


@settings(FUZZ, max_examples=40)
@given(value=json_values, route=routes)
def test_arbitrary_json_values(server, http, value, route):
    send(http, server, json.dumps(value).encode(), azure=route)


@settings(FUZZ, max_examples=30)
@given(data=st.binary(max_size=512) | st.text(max_size=200).map(lambda t: t.encode("utf-8", "surrogatepass")))
def test_raw_byte_bodies(server, http, data):
    send(http, server, data)


@pytest.mark.parametrize("where", ["model", "part type", "azure enhancement"])
def test_lone_surrogates_in_echoed_strings_get_an_answer(server, where):
    """JSON may carry "\\ud800" escapes (Python's json accepts them); the server must still answer."""
    body = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    path, headers = "/v1/chat/completions", {"Authorization": "Bearer offline"}
    if where == "model":
        body["model"] = "gpt-\ud800"
    elif where == "part type":
        body["messages"][0]["content"] = [{"type": "\ud800"}]
    else:
        path, headers = "/openai/deployments/vision/chat/completions?api-version=2024-10-21", {"api-key": "k"}
        body["enhancements"] = {"\ud800": {"enabled": True}}
    response = requests.post(server.base_url + path, data=json.dumps(body).encode("ascii"), timeout=10,
                             headers={**headers, "Content-Type": "application/json"})
    check_answer(response.status_code, response.headers.get("Content-Type", ""), response.content)


def test_valid_requests_in_the_fuzzed_space_are_answered(server, http):
    """Sanity: the strategies above do reach the success paths (image, stream, Azure) that must return 200."""
    image = {"type": "image_url", "image_url": {"url": IMAGE_URLS[0], "detail": "low"}}
    for body, route in [
        ({"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}, image]}]},
         None),
        ({"model": DEFAULT_MODEL, "stream": True, "stream_options": {"include_usage": True},
          "messages": [{"role": "user", "content": "Hi"}]}, None),
        ({"messages": [{"role": "user", "content": [image]}], "max_completion_tokens": 5}, "my-vision-deployment"),
    ]:
        path = "/v1/chat/completions" if route is None else \
            f"/openai/deployments/{route}/chat/completions?api-version=2024-10-21"
        response = http.post(server.base_url + path, json=body, timeout=30,
                             headers={"Authorization": "Bearer offline", "api-key": "k"})
        assert response.status_code == 200, response.text[:300]
        check_answer(200, response.headers["Content-Type"], response.content, stream_requested=bool(body.get("stream")))


# --- framing: raw sockets ----------------------------------------------------------------------------------

def read_response(sock: socket.socket, deadline: float = 10.0) -> tuple[int, str, bytes] | None:
    """Read one HTTP/1.1 response (Content-Length framed); None if the server closed without answering.

    A request line the stdlib cannot parse (no ``HTTP/x.y`` version) is answered HTTP/0.9-style, as
    ``http.server`` does: the JSON error body alone, then the connection closes. That is reported as status 400
    with a JSON content type, and ``check_answer`` still requires the body to be a JSON error.
    """
    sock.settimeout(deadline)
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        if len(data) >= 5 and not data.startswith(b"HTTP/"):
            break
    if not data:
        return None
    if not data.startswith(b"HTTP/"):
        while chunk := sock.recv(65536):
            data += chunk
        return 400, "application/json; HTTP/0.9", data
    assert b"\r\n\r\n" in data, f"incomplete response head: {data[:200]!r}"
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        rest += chunk
    return status, headers.get("content-type", ""), rest[:length]


def exchange(server: OfflineServer, raw: bytes, *, finish_writing: bool = True) -> tuple[int, str, bytes] | None:
    """Send ``raw`` and read one answer; ``finish_writing`` ends the sending side (EOF) first."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(raw)
        if finish_writing:
            sock.shutdown(socket.SHUT_WR)
        return read_response(sock)


def request_bytes(body: bytes, *, length: str | None = None, extra: bytes = b"",
                  path: bytes = b"/v1/chat/completions") -> bytes:
    declared = str(len(body)) if length is None else length
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer offline\r\n"
            b"Content-Type: application/json\r\n" + extra
            + (b"Content-Length: " + declared.encode() + b"\r\n" if declared != "" else b"") + b"\r\n" + body)


GOOD = json.dumps({"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}]}).encode()

FRAMING = {
    "content-length-too-big (body stalls)": request_bytes(GOOD, length=str(len(GOOD) + 50)),
    "content-length-negative": request_bytes(GOOD, length="-5"),
    "content-length-not-a-number": request_bytes(GOOD, length="12abc"),
    "content-length-over-the-cap": request_bytes(b"{}", length=str(64 * 2**20)),
    "content-length-doubled-and-conflicting": request_bytes(GOOD, extra=b"Content-Length: 3\r\n"),
    "chunked-size-not-hex": (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer offline\r\n"
                             b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"),
    "chunked-cut-short": (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer offline\r\n"
                          b"Transfer-Encoding: chunked\r\n\r\n40\r\n{\"model\""),
    "garbage-request-line": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 TLS hello to a plain HTTP port\r\n\r\n",
    "http-version-garbage": b"POST /v1/chat/completions HTTP/9.9.9\r\nHost: 127.0.0.1\r\n\r\n",
    "header-line-too-long": b"POST /v1/chat/completions HTTP/1.1\r\nX-Long: " + b"a" * 70000 + b"\r\n\r\n",
    "too-many-headers": b"POST /v1/chat/completions HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(150))
                        + b"\r\n",
    "nul-bytes-body": request_bytes(b"\x00" * 64),
}


@pytest.mark.parametrize("name", list(FRAMING))
def test_broken_framing_gets_a_json_error(server, name):
    started = time.monotonic()
    # EOF after a whole request means "the client went away"; only a request cut short is ended by EOF here.
    answer = exchange(server, FRAMING[name], finish_writing=name == "chunked-cut-short")
    assert answer is not None, "the server closed the connection without answering"
    status, content_type, body = answer
    check_answer(status, content_type, body)
    assert status != 200
    assert time.monotonic() - started < 5


@settings(FUZZ, max_examples=30)
@given(body=st.binary(min_size=1, max_size=300) | chat_bodies.map(lambda b: json.dumps(b).encode()),
       cut=st.integers(min_value=0, max_value=299))
def test_content_length_shorter_than_the_body(server, body, cut):
    """The server reads only the declared bytes; the rest arrives as the next 'request'. The first answer must be
    a proper one, and whatever follows on that connection must not take the server down."""
    declared = min(cut, len(body) - 1)
    answer = exchange(server, request_bytes(body, length=str(declared)), finish_writing=False)
    assert answer is not None, "the server closed the connection without answering"
    check_answer(*answer)


@settings(FUZZ, max_examples=30)
@given(raw=st.binary(min_size=1, max_size=400))
def test_random_bytes_instead_of_a_request(server, raw):
    """Anything at all on the socket: an answer (4xx JSON) or, for an empty first line, a quiet close."""
    answer = exchange(server, raw)
    first_line = raw.split(b"\n", 1)[0].strip()
    if answer is None:
        assert not first_line or raw.startswith((b"\r", b"\n")), f"no answer to {raw[:80]!r}"
        return
    check_answer(*answer)
