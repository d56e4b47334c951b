"""A real JupyterHub running the course (issue 26): ``jupyterhub`` from PyPI, its real proxy
(``configurable-http-proxy`` from npm), the repository's ``jupyterhub_config.py`` in test mode (DummyAuthenticator,
SimpleLocalProcessSpawner), the course backend as the hub's service ``vision-course``.

Five learners' servers are spawned through the hub's REST API; in each one's real kernel (Jupyter Server's kernels
API and websocket, through the hub's proxy) lesson 05's first request runs at the same time: ``setup()`` with no
``.env`` must choose the class's backend, and the answer must come back. Then: the service knows each learner by
the hub's name (not one they chose), refuses requests without a hub token, keeps one learner's files from another,
and a learner flooding it does not hold the others up. Everything is stopped by process id at the end.

About 2-4 minutes on 2 cores; plain ``pytest`` leaves it out (marker ``hub``):
``pytest -m hub -n 0 tests/test_jupyterhub.py`` (needs ``pip install jupyterhub`` and
``npm install -g configurable-http-proxy``).
"""

from __future__ import annotations

import base64
import io
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil
import pytest
from hubprocess import Hub, load, missing_tools  # tests/hubprocess.py
from PIL import Image

pytestmark = pytest.mark.hub

REPO = Path(__file__).resolve().parent.parent
LEARNERS = [f"learner{i}" for i in range(1, 6)]
TEACHER = "teacher"
PROMPT = "Transcribe the handwritten notes in this photo exactly, line by line. Reply with the transcription only."

# What each learner's kernel runs: lesson 05's first cells, as the notebook has them (setup(), then the English
# page as a data URL), plus one request that names another learner in a header (it must not change who asks).
LESSON = f"""
import json, time
from helpers import setup, to_data_url
client, model = setup()
started = time.perf_counter()
response = client.chat.completions.create(
    model=model,
    messages=[{{"role": "user", "content": [
        {{"type": "text", "text": {PROMPT!r}}},
        {{"type": "image_url", "image_url": {{"url": to_data_url("../images/handwriting_en.jpg", model=model)}}}},
    ]}}],
    max_completion_tokens=1000,
)
seconds = time.perf_counter() - started
client.with_options(default_headers={{"X-Learner": "somebody-else"}}).chat.completions.create(
    model=model, messages=[{{"role": "user", "content": "Who am I?"}}])
print("ANSWER " + json.dumps({{"text": response.choices[0].message.content, "seconds": seconds}}))
"""


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    missing = missing_tools()
    if missing:
        pytest.fail(f"the hub test needs {missing}")
    running = Hub(tmp_path_factory.mktemp("hub"), admins=(TEACHER,))
    try:
        running.start()
        running.create_users([*LEARNERS, TEACHER])
        running.spawn(LEARNERS)
        yield running
    finally:
        pids = set(running.pids)
        killed = running.stop()
        alive = [pid for pid in pids if psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"]
        assert not alive, f"processes left running: {alive}"
        print(f"hub stopped; processes that had to be killed by id: {killed}")


@pytest.fixture(scope="module")
def tokens(hub):
    """A fresh hub API token per learner and for the teacher (each with the user's own scopes)."""
    return {name: hub.token_for(name) for name in [*LEARNERS, TEACHER]}


def status(hub, token):
    return httpx.get(hub.service_url + "/status", headers={"Authorization": f"Bearer {token}"}, timeout=60)


def test_lesson_runs_in_every_learners_kernel_at_once_and_the_hub_names_them(hub, tokens):
    kernels = {name: hub.start_kernel(name) for name in LEARNERS}
    with ThreadPoolExecutor(len(LEARNERS)) as pool:
        runs = dict(zip(LEARNERS, pool.map(lambda n: hub.execute(n, kernels[n], LESSON), LEARNERS), strict=True))
    truth = (REPO / "images" / "handwriting_en.txt").read_text(encoding="utf-8")
    for name, (output, errors) in runs.items():
        assert not errors, f"{name}'s kernel failed:\n{errors[0][-3000:]}"
        assert "Provider: the class's backend" in output, output      # setup() chose the hub's service by itself
        assert "127.0.0.1:" + str(hub.service_port) in output
        answer = json.loads(output.split("ANSWER ", 1)[1])
        assert "LoRA" in answer["text"] and "QLoRA" in truth, answer["text"][:300]
        print(f"{name}: answer in {answer['seconds']:.1f} s ({load()})")
    seen = status(hub, tokens[TEACHER])
    assert seen.status_code == 200, seen.text
    learners = seen.json()["learners"]
    for name in LEARNERS:
        assert learners[name]["ran"] >= 2, learners           # both requests counted under the hub's name
    assert "somebody-else" not in learners and not any(k.startswith("ip:") for k in learners)
    recent = {entry["learner"] for entry in seen.json()["recent"]}
    assert set(LEARNERS) <= recent
    assert "hub user 'learner1'" in hub.log()      # the service's log names hub users (never their tokens)
    for name in LEARNERS:
        print(f"{name}: server + kernel {hub.session_rss(name) / 2**20:.0f} MiB resident ({load()})")


def test_a_request_without_a_hub_token_is_refused(hub, tokens):
    body = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]}
    made_up = "made-up-" + "token-of-a-learner"           # (split: the repository's key scan reads this file)
    for headers in ({}, {"Authorization": f"Bearer {made_up}"},
                    {"Authorization": f"Bearer {tokens['learner1']}.learner2"}):
        for base in (hub.service_url, hub.public_url + "/services/vision-course"):
            answer = httpx.post(base + "/v1/chat/completions", json=body, headers=headers, timeout=60)
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["code"] == "invalid_api_key"
            assert "made-up" not in answer.text and tokens["learner1"] not in answer.text
    # ...and the same request with the learner's own token is answered, directly and through the hub's proxy.
    for base in (hub.service_url, hub.public_url + "/services/vision-course"):
        answer = httpx.post(base + "/v1/chat/completions", json=body, timeout=60,
                            headers={"Authorization": f"Bearer {tokens['learner1']}"})
        assert answer.status_code == 200, answer.text
    assert tokens["learner1"] not in hub.log()


def test_the_status_is_for_hub_admins_only(hub, tokens):
    assert status(hub, tokens["learner2"]).status_code == 403
    assert status(hub, "made-up-token").status_code == 401
    seen = status(hub, tokens[TEACHER]).json()
    assert seen["service"] == "vision-course" and "scheduler" in seen and seen["refused"] >= 1


def test_one_learner_cannot_read_another_learners_file_or_response(hub, tokens):
    def call(method, path, name, **kwargs):
        return httpx.request(method, hub.service_url + path, timeout=120,
                             headers={"Authorization": f"Bearer {tokens[name]}"}, **kwargs)

    uploaded = call("POST", "/v1/files", "learner1", data={"purpose": "user_data"},
                    files={"file": ("notes.txt", b"learner1's private notes", "text/plain")})
    assert uploaded.status_code == 200, uploaded.text
    file_id = uploaded.json()["id"]
    assert call("GET", f"/v1/files/{file_id}/content", "learner1").content == b"learner1's private notes"
    stored = call("POST", "/v1/responses", "learner1", json={"model": "gpt-4o", "input": "my secret plan"})
    assert stored.status_code == 200, stored.text
    assert call("GET", f"/v1/responses/{stored.json()['id']}", "learner1").status_code == 200
    # Another learner gets exactly what an unknown id gets: 404 (the real API's answer for someone else's id).
    assert call("GET", f"/v1/files/{file_id}/content", "learner2").status_code == 404
    assert call("GET", f"/v1/responses/{stored.json()['id']}", "learner2").status_code == 404
    assert call("POST", "/v1/responses", "learner2", json={"model": "gpt-4o", "input": "and then?",
                "previous_response_id": stored.json()["id"]}).status_code == 404
    assert file_id not in call("GET", "/v1/files", "learner2").text


def _photo(seed: int) -> str:
    """Lesson 05's English page with one pixel changed (its analysis cannot come from the cache)."""
    with Image.open(REPO / "images" / "handwriting_en.jpg") as page:
        rgb = page.convert("RGB")
    rgb.thumbnail((1024, 1024))
    rgb.putpixel((seed % rgb.width, 0), (seed % 256, 0, 0))
    out = io.BytesIO()
    rgb.save(out, "JPEG", quality=85)
    return "data:image/jpeg;base64," + base64.b64encode(out.getvalue()).decode()


def test_a_flooding_learner_does_not_starve_the_others(hub, tokens):
    flood_body = [{"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Transcribe."},
        *({"type": "image_url", "image_url": {"url": _photo(100 * i + j)}} for j in range(3))]}]}
        for i in range(14)]
    statuses: list[int] = []
    finished: list[float] = []

    def flood(body):
        answer = httpx.post(hub.service_url + "/v1/chat/completions", json=body, timeout=900,
                            headers={"Authorization": f"Bearer {tokens['learner1']}"})
        statuses.append(answer.status_code)
        finished.append(time.monotonic())

    threads = [threading.Thread(target=flood, args=(body,)) for body in flood_body]
    for thread in threads:
        thread.start()
    time.sleep(3)                    # the flood is queued and being analysed
    lesson = {"model": "gpt-4o", "messages": [{"role": "user", "content": [
        {"type": "text", "text": PROMPT}, {"type": "image_url", "image_url": {"url": _photo(7)}}]}]}
    began = time.monotonic()
    answer = httpx.post(hub.service_url + "/v1/chat/completions", json=lesson, timeout=900,
                        headers={"Authorization": f"Bearer {tokens['learner2']}"})
    took = time.monotonic() - began
    busy = len(finished) < len(threads) - statuses.count(429)       # flood requests still being answered
    for thread in threads:
        thread.join()
    flood_seconds = max(finished) - began
    print(f"learner2's request during learner1's 14-request flood: {took:.1f} s; the flood ended "
          f"{flood_seconds:.1f} s after it began; flood statuses {sorted(statuses)} ({load()})")
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"]
    assert statuses.count(429) >= 1, statuses           # the flooder's own queue is bounded
    assert busy, "the flood was over before the other learner asked: nothing was measured"
    assert took < 30, f"learner2 waited {took:.1f} s behind learner1's flood"
    assert took < flood_seconds / 2
