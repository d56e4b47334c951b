"""A classroom server under a mischievous learner's attacks (issue 25), each bounded in count and time and aimed
only at 127.0.0.1: the attack first, then the behaviour every other learner must still see.

- one person with 12 names floods the room: with one key per learner the names are labels, so the flood is one
  learner's (its queue cap, its 429s) and another learner's answer stays under 1.5 s;
- a name after someone's key or an ``X-Learner`` header borrows nobody's identity;
- a 40,000-part upload to ``/v1/files`` or a 90 MB body of tiny JSON values does not stall the event loop (other
  learners under 1.5 s);
- connections that drip header lines are cut off after the header deadline, and one address cannot hold more
  than its share of connections (file descriptors);
- a dripping image server cannot hold the client's ``prepare_image(url)`` past its deadline.

The image analysis is replaced by a stand-in that holds its scheduler slot for a fixed time (as in
test_classroom.py); everything else is the real path: HTTP, key check, scheduler, worker threads.
"""

from __future__ import annotations

import base64
import contextlib
import gc
import io
import os
import socket
import threading
import time
import tracemalloc
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests
from PIL import Image

from helpers.config import ServerSettings
from helpers.models import DEFAULT_MODEL
from helpers.offline import analysis
from helpers.offline.classroom import Classroom, generate_keys
from helpers.offline.server import OfflineServer

#: The reliability suite (about 2.5 minutes of floods and slow clients): not in plain `pytest`, a CI step of its own.
pytestmark = pytest.mark.reliability

TOKEN = "class-Test-Token-Xy7q9Lm2"
SLOW = 0.2           # seconds one image's analysis holds its slot in the stand-in
NAMES = [f"alias{i:02d}" for i in range(12)]


def png(seed: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (24 + seed % 97, 24 + seed // 97 % 50), (seed * 37 % 256, seed % 251, 160)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def body(*urls: str) -> dict:
    content = [{"type": "text", "text": "What is in these images?"}]
    content += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}]}


@pytest.fixture()
def slow_analysis(monkeypatch):
    def analyze(picture: analysis.Picture, **options: object) -> analysis.ImageReport:
        time.sleep(SLOW)
        return analysis.ImageReport(sha256="0" * 64, width=24, height=24, mime_type="image/png",
                                    orientation="square", lines=(), faces=(), colours=(), phash="0" * 16)
    monkeypatch.setattr(analysis, "analyze_picture", analyze)


def post(base: str, key: str, payload: dict, **headers: str) -> requests.Response:
    return requests.post(base + "/v1/chat/completions", json=payload, timeout=120,
                         headers={"Authorization": f"Bearer {key}", **headers})


def flood_and_time_honest(server: OfflineServer, flood_keys: list[tuple[str, dict]], honest_key: str) -> tuple:
    """Send 96 requests of 3 new images each (8 per alias) from the flooder, then time one honest request of one
    image while the flood runs. Returns (honest seconds, statuses of the flood, the identities the scheduler held
    the flood under once it was all in)."""
    statuses: list[int] = []
    with ThreadPoolExecutor(len(flood_keys)) as pool:
        futures = [pool.submit(post, server.base_url, key, body(*(png(3 * i + j + 1000) for j in range(3))),
                               **headers) for i, (key, headers) in enumerate(flood_keys)]
        # Wait until the whole flood is in: queued or running, or already refused (429). A fixed pause let a busy
        # CI machine measure the honest request before half the names were queued (seen 2026-12-07).
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            snapshot = server.state.scheduler.snapshot()
            waiting, running = snapshot["waiting"], snapshot["running"]
            assert isinstance(waiting, dict) and isinstance(running, dict)
            if sum(waiting.values()) + sum(running.values()) + sum(f.done() for f in futures) >= len(futures):
                break
            time.sleep(0.02)
        identities = set(waiting) | set(running)
        started = time.perf_counter()
        answer = post(server.base_url, honest_key, body(png(7)))
        honest = time.perf_counter() - started
        assert answer.status_code == 200, answer.text
        for future in futures:
            statuses.append(future.result().status_code)
    return honest, statuses, identities


def test_one_person_with_12_names_does_not_slow_another_learner(slow_analysis):
    """Per-learner keys: the flooder's 12 names (X-Learner) are labels of one identity; beyond its queue cap the
    flood gets 429s; the honest learner's request stays under 1.5 s."""
    room, keys = generate_keys(2)
    flooder, honest = keys["learner-01"], keys["learner-02"]
    flood = [(flooder, {"X-Learner": NAMES[i % 12]}) for i in range(96)]
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        seconds, statuses, identities = flood_and_time_honest(server, flood, honest)
        assert server.state.scheduler.snapshot()["waiting"] == {}
    print(f"per-learner keys: honest request {seconds:.2f} s during the 12-name flood; flood statuses "
          f"{sorted(set(statuses))} ({statuses.count(429)} x 429)")
    assert len(identities) == 1                     # 12 names, one identity: the key's
    assert seconds < 1.5
    assert statuses.count(429) >= 80                # one learner's queue: 8 waiting + 1 running, the rest refused


def test_a_shared_token_with_12_names_is_trusting_the_room(slow_analysis):
    """The shared token (kept for small rooms): 12 names are 12 learners, so the honest learner waits behind a
    turn of each (measured, the 'before' figure of the test above)."""
    flood = [(f"{TOKEN}.{NAMES[i % 12]}", {}) for i in range(96)]
    with OfflineServer(warm_ocr=False, classroom=Classroom(TOKEN), workers=1) as server:
        seconds, statuses, identities = flood_and_time_honest(server, flood, TOKEN + ".honest")
    print(f"shared token: honest request {seconds:.2f} s during the 12-name flood; "
          f"{statuses.count(429)} x 429; {len(identities)} identities in the scheduler")
    # 12 names are 12 learners: the flood is held under 12 identities, each with its own queue cap, so nothing is
    # refused and the honest learner waits its turn behind each of them (its time depends on the machine: 1.4-8.3 s
    # measured; the keyed room above keeps it under 1.5 s).
    assert statuses.count(429) == 0 and len(identities) == 12


def test_a_learners_key_cannot_be_borrowed_by_naming_them():
    room, keys = generate_keys(2)
    ann, bob = keys["learner-01"], keys["learner-02"]
    with OfflineServer(warm_ocr=False, classroom=room, workers=1, max_queued=0) as server:
        borrowed = post(server.base_url, bob + ".learner-01", body())
        assert borrowed.status_code == 401
        assert "their own key" in borrowed.json()["error"]["message"]
        assert bob not in borrowed.text
        # X-Learner names nobody: the request counts as Bob's (checked through the scheduler's view)
        assert room.check({"authorization": f"Bearer {bob}", "x-learner": "learner-01"}, "127.0.0.1") == "learner-02"
        assert post(server.base_url, ann, body()).status_code == 200


# --- stalls ----------------------------------------------------------------------------------------------

def many_parts(count: int) -> tuple[bytes, str]:
    boundary = "b0undary"
    part = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"x\"\r\n\r\nx\r\n").encode()
    tail = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"purpose\"\r\n\r\nuser_data\r\n"
            f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.txt\"\r\n"
            f"Content-Type: text/plain\r\n\r\nhello\r\n--{boundary}--\r\n").encode()
    return part * count + tail, f"multipart/form-data; boundary={boundary}"


def test_a_40000_part_upload_does_not_stall_other_learners():
    room, keys = generate_keys(2)
    payload, content_type = many_parts(40_000)
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        upload: list[requests.Response] = []
        thread = threading.Thread(target=lambda: upload.append(requests.post(
            server.base_url + "/v1/files", data=payload, timeout=300,
            headers={"Authorization": f"Bearer {keys['learner-01']}", "Content-Type": content_type})))
        thread.start()
        time.sleep(0.3)                                 # the upload has arrived and is being parsed
        started = time.perf_counter()
        answer = requests.get(server.base_url + "/v1/models", timeout=120,
                              headers={"Authorization": f"Bearer {keys['learner-02']}"})
        seconds = time.perf_counter() - started
        thread.join(300)
    print(f"40,000-part upload ({len(payload) / 1e6:.1f} MB): another learner's request took {seconds:.2f} s; "
          f"upload answered {upload[0].status_code}")
    assert answer.status_code == 200 and seconds < 1.5
    assert upload[0].status_code == 400 and "parts" in upload[0].json()["error"]["message"]


def drip(address: str, port: int, source: str = "127.0.0.1") -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=(source, 0))
    sock.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    return sock


def closed(sock: socket.socket, within: float) -> bool:
    sock.settimeout(within)
    try:
        while True:
            data = sock.recv(4096)
            if not data:
                return True
    except TimeoutError:
        return False
    except OSError:
        return True


def test_a_client_dripping_header_lines_is_cut_off():
    with OfflineServer(warm_ocr=False, header_timeout=2.0) as server:
        sock = drip("127.0.0.1", server.port)
        started, cut = time.perf_counter(), False
        while not cut and time.perf_counter() - started < 8:   # a header line a second: never a whole head
            cut = closed(sock, 1.0)
            with contextlib.suppress(OSError):
                sock.sendall(b"X-Drip: 1\r\n")
        seconds = time.perf_counter() - started
        sock.close()
    print(f"dripping client cut off: {cut} after {seconds:.1f} s (header deadline 2 s)")
    assert cut and seconds < 3.5


def test_one_address_cannot_take_every_connection():
    with OfflineServer(warm_ocr=False, header_timeout=30.0, max_connections_per_address=20) as server:
        held = [drip("127.0.0.1", server.port) for _ in range(20)]
        extra = drip("127.0.0.1", server.port)
        refused = closed(extra, 3.0)
        other = socket.create_connection(("127.0.0.1", server.port), timeout=10, source_address=("127.0.0.2", 0))
        other.sendall(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                      b"Connection: close\r\n\r\n")
        other.settimeout(10)
        reply = other.recv(4096)
        for sock in [*held, extra, other]:
            sock.close()
    print(f"21st connection from one address refused: {refused}; another address answered: {reply[:15]!r}")
    assert refused and reply.startswith(b"HTTP/1.1 200")


# --- the client's downloads ------------------------------------------------------------------------------

def test_a_dripping_image_server_cannot_hold_prepare_image_past_its_deadline():
    """Issue 25: the timeout was per read, so a server sending a byte every half second held the download (it
    held it > 60 s). Now ``timeout`` is the whole download's deadline. The server runs on 127.0.0.1 and drips
    for at most 12 s."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from helpers.errors import NetworkError
    from helpers.images import prepare_image

    class Drip(BaseHTTPRequestHandler):
        def do_GET(self) -> None:                    # noqa: N802 - the http.server spelling
            self.send_response(200)
            self.send_header("Content-Type", "image/png")
            self.send_header("Content-Length", "100000")
            self.end_headers()
            with contextlib.suppress(OSError):
                for _ in range(24):
                    self.wfile.write(b"\0")
                    self.wfile.flush()
                    time.sleep(0.5)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.perf_counter()
        with pytest.raises(NetworkError, match="timed out after 2 s"):
            prepare_image(f"http://127.0.0.1:{server.server_address[1]}/slow.png", timeout=2.0)
        seconds = time.perf_counter() - started
    finally:
        server.shutdown()
        server.server_close()
    print(f"dripping image server: prepare_image gave up after {seconds:.1f} s (timeout=2)")
    assert seconds < 3.5


def test_a_90_mb_body_of_tiny_json_values_does_not_stall_other_learners():
    """Issue 25: a 90 MB JSON body of 45 million numbers sent to /v1/responses was parsed on the event loop: every
    learner waited (2.45 s measured 2026-12-07). Now the values are counted before parsing (a 400), large bodies are
    parsed in a worker thread, and the others are answered."""
    room, keys = generate_keys(2)
    payload = b'{"model":"gpt-4o","input":"hi","x":[' + b"0," * 45_000_000 + b"0]}"
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        flood: list[requests.Response] = []
        thread = threading.Thread(target=lambda: flood.append(requests.post(
            server.base_url + "/v1/responses", data=payload, timeout=120,
            headers={"Authorization": f"Bearer {keys['learner-01']}", "Content-Type": "application/json"})))
        thread.start()
        slowest, rounds = 0.0, 0
        while (thread.is_alive() or rounds < 5) and rounds < 600:     # while it arrives and is handled
            rounds += 1
            started = time.perf_counter()
            answer = requests.get(server.base_url + "/v1/models", timeout=60,
                                  headers={"Authorization": f"Bearer {keys['learner-02']}"})
            slowest = max(slowest, time.perf_counter() - started)
            assert answer.status_code == 200
            time.sleep(0.05)
        thread.join(120)
    print(f"90 MB body of tiny JSON values: answered {flood[0].status_code}; another learner's slowest request "
          f"{slowest:.2f} s")
    assert flood[0].status_code == 400 and "JSON values" in flood[0].json()["error"]["message"]
    assert slowest < 1.5


def test_a_body_dripped_within_the_per_piece_timeout_is_cut_off():
    """Issue 25: a body sent a few bytes at a time, each piece inside the 10 s per-piece timeout, held its
    connection for as long as the client liked. Now, after the grace period (2 s here, 30 s by default), a body
    must average 256 KiB/s."""
    with OfflineServer(warm_ocr=False) as server:
        server.state.body_grace = 2.0
        sock = socket.create_connection(("127.0.0.1", server.port), timeout=10)
        sock.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer k\r\n"
                     b"Content-Type: application/json\r\nContent-Length: 100000\r\n\r\n{")
        started, reply = time.perf_counter(), b""
        while time.perf_counter() - started < 8 and not reply:
            with contextlib.suppress(OSError):
                sock.sendall(b" ")
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                reply = sock.recv(4096)
        seconds = time.perf_counter() - started
        sock.settimeout(2)
        with contextlib.suppress(OSError):
            while piece := sock.recv(4096):
                reply += piece
        sock.close()
    print(f"dripped body cut off after {seconds:.1f} s: {reply[:12]!r}")
    assert reply.startswith(b"HTTP/1.1 400") and b"too slowly" in reply and seconds < 4


def test_the_set_up_hint_belongs_to_the_key_not_to_a_name():
    """With per-learner keys, new names (X-Learner) do not bring the hint back, and another learner's first
    answer still carries theirs."""
    from helpers.offline.answers import HINT

    room, keys = generate_keys(2)
    hello = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}]}
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        def say(key: str, name: str) -> str:
            answer = post(server.base_url, key, hello, **{"X-Learner": name})
            return answer.json()["choices"][0]["message"]["content"]

        assert say(keys["learner-01"], "a").endswith(HINT)
        assert all(HINT not in say(keys["learner-01"], name) for name in NAMES[:3])
        assert say(keys["learner-02"], "a").endswith(HINT)


# --- learners' own files and stored responses ------------------------------------------------------------

def client_for(server: OfflineServer, key: str, prefix: str = "/v1") -> openai.OpenAI:
    return openai.OpenAI(base_url=server.base_url + prefix, api_key=key, max_retries=0, timeout=120)


def png_bytes(seed: int) -> bytes:
    return base64.b64decode(png(seed).split(",", 1)[1])


def noise_png(side: int) -> str:
    """A data URL of a PNG of random pixels (it does not compress: about 3 bytes a pixel)."""
    buf = io.BytesIO()
    Image.frombytes("RGB", (side, side), os.urandom(side * side * 3)).save(buf, "PNG", compress_level=0)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def image_question(file_id: str) -> list[dict]:
    return [{"role": "user", "content": [{"type": "input_text", "text": "What is in this image?"},
                                         {"type": "input_image", "file_id": file_id, "detail": "low"}]}]


def not_found(call) -> openai.NotFoundError:
    with pytest.raises(openai.NotFoundError) as caught:
        call()
    return caught.value


def test_bob_cannot_read_delete_or_use_anns_file(slow_analysis):
    """Issue 25: Bob read and deleted Ann's upload by its id. Now another learner's file is answered exactly as an
    unknown id (404 ``No such File object``), on every route, and it stays Ann's."""
    room, keys = generate_keys(2)
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        ann, bob = client_for(server, keys["learner-01"]), client_for(server, keys["learner-02"])
        uploaded = ann.files.create(file=("label.png", png_bytes(1)), purpose="vision")
        unknown = not_found(lambda: bob.files.retrieve("file-" + "0" * 24))
        for prefix in ("/v1", "/openai/v1"):
            thief = client_for(server, keys["learner-02"], prefix)
            for call in (thief.files.retrieve, thief.files.content, thief.files.delete):
                err = not_found(lambda call=call: call(uploaded.id))
                assert err.body == {**unknown.body, "message": f"No such File object: {uploaded.id}"}
            assert uploaded.id not in [f.id for f in thief.files.list()]
            ask = thief.responses.create
            used = not_found(lambda ask=ask: ask(model=DEFAULT_MODEL, input=image_question(uploaded.id)))
            assert used.body["message"] == f"No such File object: {uploaded.id}"
        assert ann.files.content(uploaded.id).content == png_bytes(1)
        assert [f.id for f in ann.files.list()] == [uploaded.id]
        assert ann.responses.create(model=DEFAULT_MODEL, input=image_question(uploaded.id)).status == "completed"


def test_bob_cannot_read_delete_or_continue_anns_stored_response(slow_analysis):
    """Issue 25: Bob continued Ann's conversation with her ``previous_response_id``. Now another learner's stored
    response is an unknown id to him: retrieve, input_items, delete, cancel, previous_response_id and an
    item_reference to one of its items all 404."""
    room, keys = generate_keys(2)
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        ann, bob = client_for(server, keys["learner-01"]), client_for(server, keys["learner-02"])
        hers = ann.responses.create(model=DEFAULT_MODEL, input="My locker code is 4721. Remember it.")
        for name, call in (("retrieve", bob.responses.retrieve), ("delete", bob.responses.delete),
                           ("input_items", bob.responses.input_items.list), ("cancel", bob.responses.cancel)):
            unknown = not_found(lambda call=call: call("resp_" + "0" * 48))
            err = not_found(lambda call=call: call(hers.id))
            assert err.body == {**unknown.body, "message": unknown.body["message"].replace("resp_" + "0" * 48,
                                                                                           hers.id)}, name
        unknown = not_found(lambda: bob.responses.create(model=DEFAULT_MODEL, input="And?",
                                                         previous_response_id="resp_" + "0" * 48))
        err = not_found(lambda: bob.responses.create(model=DEFAULT_MODEL, input="What is my locker code?",
                                                     previous_response_id=hers.id))
        assert err.body["message"] == unknown.body["message"].replace("resp_" + "0" * 48, hers.id)
        assert "4721" not in str(err.body)
        item = hers.output[0].id                                  # her answer, named by an item_reference
        unknown = not_found(lambda: bob.responses.create(model=DEFAULT_MODEL, input=[
            {"type": "item_reference", "id": "msg_" + "0" * 48}]))
        err = not_found(lambda: bob.responses.create(model=DEFAULT_MODEL, input=[
            {"type": "item_reference", "id": item}]))
        assert err.body["message"] == unknown.body["message"].replace("msg_" + "0" * 48, item)
        assert ann.responses.create(model=DEFAULT_MODEL, input=[{"type": "item_reference", "id": item},
                                                                {"role": "user", "content": "And?"}]).id
        assert ann.responses.retrieve(hers.id).id == hers.id
        follow = ann.responses.create(model=DEFAULT_MODEL, input="And?", previous_response_id=hers.id)
        assert follow.status == "completed"
        assert [i.type for i in ann.responses.input_items.list(follow.id)] == ["message"]


def lesson_11_files(client: openai.OpenAI) -> tuple[str, int, list[str]]:
    """Notebook 11's upload-once flow: upload, ask by file_id, list, delete. (file id, input tokens, listed ids)"""
    uploaded = client.files.create(file=("product_label.png", png_bytes(5)), purpose="vision")
    by_id = client.responses.create(model=DEFAULT_MODEL, input=image_question(uploaded.id), max_output_tokens=1000)
    listed = [f.id for f in client.files.list()]
    client.files.delete(uploaded.id)
    return uploaded.id, by_id.usage.input_tokens, listed


def test_the_same_upload_by_two_learners_is_two_files(slow_analysis):
    """Issue 25: the same upload by two learners was one file, so lesson 11 run by two learners at once gave one
    of them a 404 when the other deleted it. Each upload is now its learner's own file."""
    room, keys = generate_keys(2)
    with OfflineServer(warm_ocr=False, classroom=room, workers=2) as server:
        for _ in range(3):
            with ThreadPoolExecutor(2) as pool:
                runs = list(pool.map(lesson_11_files, [client_for(server, k) for k in keys.values()]))
            (ann_id, ann_tokens, ann_list), (bob_id, bob_tokens, bob_list) = runs
            assert ann_id != bob_id and ann_tokens == bob_tokens
            assert ann_list == [ann_id] and bob_list == [bob_id]


def test_256_tiny_uploads_by_one_learner_do_not_evict_anothers_files():
    """Issue 25: the file store kept the last 256 files of the whole room, so one learner's 256 tiny uploads
    evicted everyone's. Now a learner's flood evicts only their own oldest files."""
    room, keys = generate_keys(2)
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        ann, bob = client_for(server, keys["learner-01"]), client_for(server, keys["learner-02"])
        hers = ann.files.create(file=("notes.txt", b"Ann's notes"), purpose="user_data")
        for i in range(300):
            bob.files.create(file=(f"x{i}.txt", b"x"), purpose="user_data")
        assert ann.files.content(hers.id).content == b"Ann's notes"
        held = len(bob.files.list().data)
    print(f"after Bob's 300 tiny uploads: Ann's file kept, Bob holds {held}")
    assert held <= 256


def test_the_byte_budgets_hold_per_learner_and_for_the_room(slow_analysis):
    """Files and stored responses are bounded in bytes per learner and for the room: a learner's flood evicts
    their own oldest items first and never another learner's while that learner is within their fair share; an
    upload larger than a learner's budget is a 413 that says what to do."""
    mib = 1024 * 1024
    room_files = int(1.4 * mib)
    settings = ServerSettings(file_store_bytes=room_files, file_store_bytes_per_learner=mib,
                              response_store_bytes=3 * mib, response_store_bytes_per_learner=mib)
    room, keys = generate_keys(3)
    with OfflineServer(warm_ocr=False, classroom=room, workers=1, settings=settings) as server:
        ann, bob, cy = (client_for(server, k) for k in keys.values())
        anns = [ann.files.create(file=(f"a{i}.bin", bytes([i]) * 300_000), purpose="user_data") for i in range(2)]
        bobs = [bob.files.create(file=(f"b{i}.bin", bytes([i]) * 300_000), purpose="user_data") for i in range(12)]
        # 3 files would fit his MiB, but the room (1.4 MiB) would be over: he is above his fair share, so his go
        assert [f.id for f in bob.files.list(order="asc")] == [f.id for f in bobs[-2:]]
        assert [f.id for f in ann.files.list(order="asc")] == [f.id for f in anns]
        with pytest.raises(openai.APIStatusError) as too_big:
            cy.files.create(file=("big.bin", b"x" * (mib + 1)), purpose="user_data")
        assert too_big.value.status_code == 413
        assert "per learner" in too_big.value.message and "Delete" in too_big.value.message
        # a third learner's upload takes room from those above their fair share (a third of the room each)
        cys = cy.files.create(file=("c.bin", b"c" * 400_000), purpose="user_data")
        assert cy.files.content(cys.id).content == b"c" * 400_000
        assert len(ann.files.list().data) + len(bob.files.list().data) == 3
        assert server.state.files.usage()["bytes"] <= room_files
        # stored responses: each keeps its inline image (a ~200 KB data URL); Bob's 15 fill his MiB 3 times over
        hers = ann.responses.create(model=DEFAULT_MODEL, input="Remember: the code is 4721.")
        his = [bob.responses.create(model=DEFAULT_MODEL, input=[{"role": "user", "content": [
            {"type": "input_text", "text": f"Image {i}"}, {"type": "input_image", "image_url": noise_png(210)}]}])
            for i in range(15)]
        usage = server.state.responses.usage()
        assert usage["by_learner"]["learner-02"] <= mib and usage["bytes"] <= 3 * mib
        assert ann.responses.retrieve(hers.id).id == hers.id
        assert bob.responses.retrieve(his[-1].id).id == his[-1].id
        not_found(lambda: bob.responses.retrieve(his[0].id))
        files_usage = server.state.files.usage()
    print(f"byte budgets: stored responses {usage}, files {files_usage}")
    assert files_usage["by_learner"]["learner-02"] <= mib


def test_requests_naming_a_big_file_id_keep_memory_bounded(slow_analysis):
    """Issue 25: each ~300-byte request naming an 8-10 MiB file id kept another copy of it (its data URL) in the
    stored responses: 13 MB a request. Now a stored response keeps the file's id, not its bytes."""
    room, keys = generate_keys(1)
    data = base64.b64decode(noise_png(1800).split(",", 1)[1])
    assert 8 * 1024 * 1024 < len(data) < 10 * 1024 * 1024
    with OfflineServer(warm_ocr=False, classroom=room, workers=1) as server:
        client = client_for(server, keys["learner-01"])
        big = client.files.create(file=("noise.png", data), purpose="vision")
        del data
        request = image_question(big.id)
        client.responses.create(model=DEFAULT_MODEL, input=request)        # warm: first-use allocations
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(12):
                client.responses.create(model=DEFAULT_MODEL, input=request)
            gc.collect()
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        print(f"12 requests naming a {big.bytes / 2**20:.1f} MiB file id: memory grew {grown / 2**20:.1f} MiB")
        assert grown < 4 * 1024 * 1024
        stored = server.state.responses.usage()["bytes"]
    print(f"stored responses hold {stored / 1024:.0f} KiB")
    assert stored < 256 * 1024
