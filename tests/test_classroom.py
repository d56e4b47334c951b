"""The classroom server (``python -m helpers.offline --classroom``): the access token, the Host names it answers
to, and fair scheduling between learners (helpers/offline/classroom.py, helpers/offline/classroom.py).

The fairness tests replace the image analysis by a stand-in that keeps a core busy for a fixed time (the real one
is OCR, about 0.3 s an image after a 5 s model load: too slow for plain pytest); everything else is the real
path: HTTP, the token check, the scheduler, the worker threads, the backend's checks between images.
``benchmarks/classroom.py`` measures the real thing with 30 learners.
"""

from __future__ import annotations

import base64
import io
import json
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import openai
import pytest
import requests
from PIL import Image

from helpers.models import DEFAULT_MODEL
from helpers.offline import analysis
from helpers.offline.classroom import Classroom, FairScheduler, QueueFull
from helpers.offline.server import OfflineServer

TOKEN = "class-Test-Token-Xy7q9Lm2"
LEAN = 0.06          # seconds of CPU per image in the stand-in analysis


def png(seed: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (24 + seed % 50, 24), (seed * 37 % 256, 90, 160)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def body(*urls: str) -> dict:
    content = [{"type": "text", "text": "What is in these images?"}]
    content += [{"type": "image_url", "image_url": {"url": u}} for u in urls]
    return {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": content}]}


def post(server: OfflineServer, payload: dict, key: str | None = TOKEN + ".ann", **headers: str) -> requests.Response:
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    return requests.post(server.base_url + "/v1/chat/completions", json=payload, headers=headers, timeout=60)


@pytest.fixture()
def busy_analysis(monkeypatch):
    """Image analysis that keeps the CPU busy for LEAN seconds (instead of 0.3 s of OCR) and finds nothing."""
    def analyze(picture: analysis.Picture, **options: object) -> analysis.ImageReport:
        ends = time.perf_counter() + LEAN
        while time.perf_counter() < ends:
            pass
        return analysis.ImageReport(sha256="0" * 64, width=24, height=24, mime_type="image/png",
                                    orientation="square", lines=(), faces=(), colours=(), phash="0" * 16)
    monkeypatch.setattr(analysis, "analyze_picture", analyze)


@pytest.fixture()
def room():
    with OfflineServer(warm_ocr=False, classroom=Classroom(TOKEN), workers=1, max_queued=16) as server:
        yield server


# --- the access token ----------------------------------------------------------------------------------------

def test_requests_without_the_token_get_openais_401_and_never_see_it(room):
    for key in (None, "offline", TOKEN[:-1], TOKEN + "x", TOKEN + ".", "x" + TOKEN):
        answer = post(room, body(), key=key)
        assert answer.status_code == 401, key
        error = answer.json()["error"]
        assert error["code"] == "invalid_api_key" and error["type"] == "invalid_request_error"
        assert "OPENAI_API_KEY=TOKEN.YOUR-NAME" in error["message"]
        assert TOKEN not in answer.text and TOKEN[:12] not in answer.text
    models = requests.get(room.base_url + "/v1/models", timeout=10, headers={"Authorization": "Bearer nope-nope"})
    assert models.status_code == 401
    azure = requests.post(room.base_url + "/openai/deployments/d/chat/completions?api-version=2024-10-21",
                          json=body(), headers={"api-key": "wrong-key-123"}, timeout=10)
    assert azure.status_code == 401


def test_the_token_opens_every_route_alone_or_with_a_name(room):
    assert post(room, body(), key=TOKEN).status_code == 200
    assert post(room, body(), key=TOKEN + ".ann").status_code == 200
    azure = requests.post(room.base_url + "/openai/deployments/d/chat/completions?api-version=2024-10-21",
                          json=body(), headers={"api-key": TOKEN + ".bob"}, timeout=10)
    assert azure.status_code == 200
    # the course images stay public (a real provider would fetch them without a key too)
    assert requests.get(room.base_url + "/images/handwriting_en.jpg", timeout=10).status_code == 200


def test_a_learner_connects_the_way_the_printed_env_lines_say(room, busy_analysis):
    """VISION_PROVIDER=compatible, OPENAI_BASE_URL, OPENAI_API_KEY=TOKEN.NAME: the SDK gets answers, including
    for a course image sent by the URL of its public copy (served from the local file)."""
    from helpers.client import course_image_url
    from helpers.config import load_settings

    settings = load_settings({"VISION_PROVIDER": "compatible", "OPENAI_BASE_URL": room.base_url + "/v1",
                              "OPENAI_API_KEY": TOKEN + ".ann"}, dotenv_path=None)
    assert settings.provider == "compatible"
    client = openai.OpenAI(base_url=settings.base_url, api_key=settings.api_key, max_retries=0)
    url = course_image_url("rocket.jpg", settings)          # handwriting_*.jpg have no public copy
    assert url.startswith("https://")
    answer = client.chat.completions.create(model=settings.model, messages=body(url)["messages"])
    assert answer.choices[0].message.content
    bad = openai.OpenAI(base_url=settings.base_url, api_key="sk-not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model=settings.model, messages=body()["messages"])


def test_the_token_never_appears_in_logs_or_reprs(caplog):
    room = Classroom(TOKEN)
    with caplog.at_level(logging.DEBUG), OfflineServer(warm_ocr=False, classroom=room, verbose=True) as server:
        post(server, body(), key=TOKEN + ".ann")
        post(server, body(), key=TOKEN[:-2] + "zz")
        shown = " ".join([repr(server), repr(server.state), repr(room), repr(server.state.scheduler)])
    assert caplog.records, "verbose logs one line per request"
    for text in (caplog.text, shown):
        assert TOKEN not in text and TOKEN[:-2] not in text


def run_command(monkeypatch, capsys, *args: str, token: str = "") -> tuple[int, str]:
    """``python -m helpers.offline --classroom ...`` in this process, stopped as Ctrl-C would stop it."""
    from helpers.offline import __main__ as command

    def interrupted_at_once(self: OfflineServer) -> int:       # Ctrl-C as soon as it serves
        print("Stopping.", flush=True)
        self.stop()
        return 0

    monkeypatch.setattr(OfflineServer, "serve_until_stopped", interrupted_at_once)
    monkeypatch.setenv("VISION_CLASSROOM_TOKEN", token)
    status = command.main(["--classroom", "--port", "0", "--no-warm", "--verbose", *args])
    out = capsys.readouterr()
    return status, out.out + out.err


def test_the_command_prints_a_new_token_once_and_a_chosen_one_never(monkeypatch, capsys, caplog):
    status, chosen = run_command(monkeypatch, capsys, token=TOKEN)
    assert status == 0 and TOKEN not in chosen + caplog.text
    assert "OPENAI_API_KEY=TOKEN.YOUR-NAME" in chosen and "VISION_PROVIDER=compatible" in chosen
    assert "OPENAI_BASE_URL=http://127.0.0.1:" in chosen
    status, fresh = run_command(monkeypatch, capsys)
    token = next(w for w in fresh.split() if w.startswith("class-"))
    assert fresh.count(token) == 2      # the "shown once" line and the .env line learners copy
    assert f"OPENAI_API_KEY={token}.YOUR-NAME" in fresh and token not in caplog.text
    status, too_short = run_command(monkeypatch, capsys, "--token", "short")
    assert status == 2 and "at least 12" in too_short and "short" not in too_short.replace("--token", "")


# --- Host names (DNS rebinding) --------------------------------------------------------------------------------

def test_a_shared_server_answers_its_lan_address_and_allowed_names_but_not_other_domains():
    with OfflineServer("0.0.0.0", warm_ocr=False, classroom=Classroom(TOKEN),
                       allow_hosts=["teacher.school.example"]) as server:
        auth = {"Authorization": f"Bearer {TOKEN}"}
        for host, status in (("192.168.1.20:8000", 200), ("teacher.school.example:8000", 200),
                             ("rebind.example:8000", 421)):
            answer = requests.get(server.base_url + "/v1/models", headers={**auth, "Host": host}, timeout=10)
            assert answer.status_code == status, host
        assert "--allow-host" in answer.json()["error"]["message"]


# --- fair scheduling ------------------------------------------------------------------------------------------

def test_scheduler_serves_learners_in_turn_and_refuses_only_the_flooders_extra_requests():
    scheduler = FairScheduler(workers=1, max_queued=3)
    order: list[str] = []

    def job(name: str, steps: int) -> None:
        def work(check):
            for _ in range(steps):
                check()
                order.append(name)
                time.sleep(0.01)
        scheduler.admit(name[0]).run_now(work)

    threads = [threading.Thread(target=job, args=("A1", 10))]
    threads[0].start()
    time.sleep(0.02)
    threads += [threading.Thread(target=job, args=(n, 2)) for n in ("B1", "C1")]
    for thread in threads[1:]:
        thread.start()
    for thread in threads:
        thread.join(5)
    assert sorted(order) == sorted(["A1"] * 10 + ["B1"] * 2 + ["C1"] * 2), "nothing lost"
    a_last = len(order) - 1 - order[::-1].index("A1")
    assert order.index("B1") < order.index("C1") < a_last, f"B and C waited for all of A's steps: {order}"
    after = order[order.index("C1"):a_last]
    assert "A1A1" not in "".join(after[:4]), f"A ran twice in a row while B or C waited: {order}"
    for _ in range(3):
        scheduler.admit("A")
    with pytest.raises(QueueFull) as full:
        scheduler.admit("A")
    assert full.value.retry_after >= 1
    scheduler.admit("B")                      # another learner is still admitted


def test_one_learners_flood_does_not_starve_another(room, busy_analysis):
    """A sends a 20-image request and six 2-image requests at once (32 images: about 2 s of work on the one
    worker); B's single image, sent just after, is answered within a few analyses instead of after all of
    them, and every request of both is answered."""
    flood = [body(*(png(i) for i in range(20)))] + [body(png(100 + 2 * i), png(101 + 2 * i)) for i in range(6)]
    started = time.perf_counter()
    with ThreadPoolExecutor(len(flood)) as pool:
        floods = [pool.submit(post, room, p, TOKEN + ".flood") for p in flood]
        time.sleep(0.3)
        sent = time.perf_counter()
        ann = post(room, body(png(999)), TOKEN + ".ann")
        ann_seconds = time.perf_counter() - sent
        statuses = [f.result().status_code for f in floods]
    flood_seconds = time.perf_counter() - started
    assert ann.status_code == 200 and statuses == [200] * len(flood), statuses
    assert flood_seconds > 32 * LEAN * 0.9
    assert ann_seconds < 0.25 * flood_seconds, f"B waited {ann_seconds:.2f} s of the flood's {flood_seconds:.2f} s"


def test_a_full_queue_is_a_429_with_retry_after_for_that_learner_only(busy_analysis):
    with (OfflineServer(warm_ocr=False, classroom=Classroom(TOKEN), workers=1, max_queued=1) as server,
          ThreadPoolExecutor(5) as pool):
        floods = [pool.submit(post, server, body(png(i), png(50 + i)), TOKEN + ".flood") for i in range(4)]
        time.sleep(0.05)
        ann = post(server, body(png(999)), TOKEN + ".ann")
        answers = [f.result() for f in floods]
    assert ann.status_code == 200
    refused = [a for a in answers if a.status_code == 429]
    assert refused and all(a.status_code in (200, 429) for a in answers)
    assert refused[0].json()["error"]["code"] == "rate_limit_exceeded"
    assert int(refused[0].headers["Retry-After"]) >= 1
    assert "queues at most 1 per learner" in refused[0].json()["error"]["message"]
    json.dumps(refused[0].json())


def test_a_learner_who_leaves_while_queued_or_running_gives_the_slot_back(room, busy_analysis):
    """B gives up (client timeout) at once, while it waits behind A (or just as its one image starts: either way
    before its answer, which takes LEAN), C while its 10-image request runs: the server stops their work, the slot
    is not lost, and the next request is answered. (B's timeout must be shorter than one analysis: with fair
    turns B's whole request takes only about two of them, so a longer timeout would not fire on a quiet machine.)"""
    with ThreadPoolExecutor(3) as pool:
        a = pool.submit(post, room, body(*(png(i) for i in range(8))), TOKEN + ".a")
        time.sleep(0.1)
        for name, images, timeout in (("b", 1, LEAN / 4), ("c", 10, 0.3)):
            with pytest.raises(requests.exceptions.Timeout):
                requests.post(room.base_url + "/v1/chat/completions", json=body(*(png(200 + i) for i in range(images))),
                              headers={"Authorization": f"Bearer {TOKEN}.{name}"}, timeout=timeout)
        assert a.result().status_code == 200
    deadline = time.monotonic() + 5
    while room.state.scheduler.snapshot() != {"free": 1, "waiting": {}, "running": {}} and time.monotonic() < deadline:
        time.sleep(0.05)
    assert room.state.scheduler.snapshot() == {"free": 1, "waiting": {}, "running": {}}
    assert post(room, body(png(777)), TOKEN + ".d").status_code == 200


def test_each_learner_reads_the_hint_once(room):
    """A classroom server keys the set-up hint per learner: ann's and bob's first answers end with it, their
    later ones do not."""
    from helpers.offline.answers import HINT

    hello = {"model": DEFAULT_MODEL, "messages": [{"role": "user", "content": "Hi"}]}

    def say(key: str) -> str:
        return post(room, hello, key=key).json()["choices"][0]["message"]["content"]

    assert say(TOKEN + ".ann").endswith(HINT)
    assert HINT not in say(TOKEN + ".ann")
    assert say(TOKEN + ".bob").endswith(HINT)
    assert HINT not in say(TOKEN + ".bob") and HINT not in say(TOKEN + ".ann")


def _start_roster_server(roster, tmp_path):
    """``python -m helpers.offline --classroom --roster FILE`` as a process; its printed lines up to Ctrl-C."""
    import os
    import subprocess
    import sys

    from helpers.local import REPO_ROOT

    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    env.pop("VISION_CLASSROOM_TOKEN", None)
    process = subprocess.Popen([sys.executable, "-m", "helpers.offline", "--classroom", "--port", "0", "--no-warm",
                                "--roster", str(roster)], cwd=tmp_path, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    printed: list[str] = []
    while not printed or "Press Ctrl-C" not in printed[-1]:
        line = process.stdout.readline()
        assert line, "the server stopped: " + process.stderr.read()
        printed.append(line)
    return process, "".join(printed)


def _keys_and_url(printed: str) -> tuple[dict[str, str], str]:
    keys, name = {}, None
    for line in printed.splitlines():
        if line.startswith("# "):
            name = line[2:]
        elif line.startswith("OPENAI_API_KEY=") and name:
            keys[name] = line.split("=", 1)[1]
        elif line.startswith("OPENAI_BASE_URL="):
            url = line.split("=", 1)[1]
    return keys, url


def test_a_roster_gives_each_learner_a_key_printed_once_stored_hashed_and_revocable(tmp_path):
    roster = tmp_path / "roster.txt"
    roster.write_text("ann\nbob  # the second learner\n")
    process, printed = _start_roster_server(roster, tmp_path)
    try:
        keys, url = _keys_and_url(printed)
        assert sorted(keys) == ["ann", "bob"] and keys["ann"] != keys["bob"]
        stored = (tmp_path / "roster.txt.keys").read_text()
        assert "ann\t" in stored and keys["ann"] not in stored and keys["bob"] not in stored
        ok = requests.get(url + "/models", headers={"Authorization": f"Bearer {keys['ann']}"}, timeout=10)
        assert ok.status_code == 200
        borrowed = requests.get(url + "/models", headers={"Authorization": f"Bearer {keys['bob']}.ann"}, timeout=10)
        assert borrowed.status_code == 401 and keys["bob"] not in borrowed.text
    finally:
        process.terminate()
        process.wait(10)
    roster.write_text("ann\ncarl\n")                          # bob revoked, carl added
    process, printed = _start_roster_server(roster, tmp_path)
    try:
        again, url = _keys_and_url(printed)
        assert list(again) == ["carl"]                        # only the new learner's key is printed
        assert keys["ann"] not in printed and keys["bob"] not in printed
        for key, status in ((keys["ann"], 200), (keys["bob"], 401), (again["carl"], 200)):
            answer = requests.get(url + "/models", headers={"Authorization": f"Bearer {key}"}, timeout=10)
            assert answer.status_code == status
    finally:
        process.terminate()
        process.wait(10)


def test_a_damaged_roster_is_refused_naming_the_line(tmp_path, capsys):
    from helpers.offline.__main__ import main

    roster = tmp_path / "roster.txt"
    roster.write_text("ann\nbob smith\n")
    assert main(["--classroom", "--roster", str(roster), "--port", "0", "--no-warm"]) == 2
    assert "line 2" in capsys.readouterr().err
    roster.write_text("ann\nann\n")
    assert main(["--classroom", "--roster", str(roster), "--port", "0", "--no-warm"]) == 2
    assert "listed twice" in capsys.readouterr().err


def test_the_command_line_server_stops_on_sigterm_as_on_ctrl_c():
    """``python -m helpers.offline`` and the hub service block in ``serve_until_stopped`` until Ctrl-C, SIGTERM
    (`kill PID`) or SIGINT (how JupyterHub stops its services); each stops the server and returns 0."""
    import os
    import signal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    server = OfflineServer(warm_ocr=False)
    server.start()
    url = server.base_url
    try:
        assert requests.get(url + "/v1/models", timeout=30, headers={"Authorization": "Bearer any"}).status_code == 200
        threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGTERM)).start()
        assert server.serve_until_stopped() == 0
        with pytest.raises(requests.ConnectionError):
            requests.get(url + "/v1/models", timeout=5)
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        server.stop()
