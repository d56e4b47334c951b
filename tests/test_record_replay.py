"""Record and replay (issue 13), end to end and fast: the course's own server, started as a separate process,
poses as the teacher's remote ``compatible`` provider; requests go through the recording proxy the way a
notebook's would (a public-copy URL, a data URL, a stream, a follow-up with history); then a learner with only
``VISION_RECORDING`` in ``.env`` runs ``setup()`` and sends the same requests the offline way (``/images/`` URLs).
The answers must be the recorded ones, byte for byte, under a label; a changed prompt falls back to local analysis
and says so; a recording of another course version is reported; the file holds no key.

Then the whole path: ``python -m helpers.teacher record 05`` against that server, and notebook 05 executed offline
with the recording: every recorded answer appears, labelled, and nothing falls back.

Slow (about two minutes: it starts servers and kernels and runs OCR), so marked ``recording`` and run in its own
CI step: ``pytest -m recording tests/test_record_replay.py``. The fast unit tests are ``tests/test_replay.py``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
import warnings
from pathlib import Path

import openai
import pytest

from helpers import client, config
from helpers.config import Settings
from helpers.course_images import course_image_path, public_copy
from helpers.errors import ConfigurationError
from helpers.images import to_data_url
from helpers.local import REPO_ROOT
from helpers.offline.replay import SOURCE_HEADER
from helpers.recordings import course_version, load_recording, normalise
from helpers.teacher.recording import PROXY_KEY, RecordingProxy, image_aliases, write_recording

pytestmark = pytest.mark.recording

KEY = "sk-" + "teacher-" + "Kq7" * 12 + "zz99"
MODEL = "gpt-4.1-mini"
TRANSCRIBE = "Describe this picture in two sentences."


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def remote():
    """``python -m helpers.offline`` in its own process: the stand-in for the teacher's provider."""
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_", "OPENAI_", "AZURE_"))}
    env.update(VISION_DOTENV="off", VISION_OFFLINE_DOWNLOADS="off", PYTHONPATH=str(REPO_ROOT))
    process = subprocess.Popen([sys.executable, "-m", "helpers.offline", "--port", str(port), "--no-warm"],
                               cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(url + "/v1/models", headers={"Authorization": "Bearer probe"})
            with urllib.request.urlopen(request, timeout=2):
                break
        except OSError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=30)


def _turns(cat: str, notes: str) -> list[dict]:
    """The requests of the test, with the two images given as ``cat`` and ``notes`` URLs."""
    first = [{"role": "user", "content": [{"type": "text", "text": TRANSCRIBE},
                                          {"type": "image_url", "image_url": {"url": notes}}]}]
    return [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "What animal is this?"},
                                                   {"type": "image_url", "image_url": {"url": cat, "detail": "low"}}]}],
         "max_completion_tokens": 300},
        {"messages": first, "stream": True, "stream_options": {"include_usage": True}},
    ]


@pytest.fixture(scope="module")
def recorded(remote, tmp_path_factory):
    """A recording of three requests (and a follow-up) made through the proxy; the answers as the SDK saw them."""
    settings = Settings(provider="compatible", model=MODEL, api_key=KEY, base_url=remote + "/v1")
    out = tmp_path_factory.mktemp("recordings") / "class.json"
    notes = to_data_url(course_image_path("spot_difference_a.png"), model=MODEL)   # what a real provider gets
    answers = []
    with RecordingProxy(settings, aliases=image_aliases(settings)) as proxy:
        sdk = openai.OpenAI(base_url=proxy.base_url + "/v1", api_key=PROXY_KEY, max_retries=0)
        for body in _turns(public_copy("cat.jpg").url, notes):
            if body.get("stream"):
                pieces = [c.choices[0].delta.content or "" for c in sdk.chat.completions.create(model=MODEL, **body)
                          if c.choices]
                answers.append("".join(pieces))
            else:
                answers.append(sdk.chat.completions.create(model=MODEL, **body).choices[0].message.content)
        history = _turns("", notes)[1]["messages"] + [{"role": "assistant", "content": answers[1]},
                                                      {"role": "user", "content": "And the second line?"}]
        answers.append(sdk.chat.completions.create(model=MODEL, messages=history).choices[0].message.content)
    summary = write_recording(proxy, ["03_multiple_images.ipynb"], out)
    assert summary["answers"] == 3 and not summary["failed"]
    return out, answers




def _setup(folder: Path, recording: Path, capsys) -> tuple[openai.OpenAI, str, str]:
    (folder / ".env").write_text(f"VISION_RECORDING={recording}\n")
    sdk, model = client.setup()
    return sdk, model, capsys.readouterr().out


def test_a_learner_gets_the_recorded_answers_byte_for_byte_and_labelled(recorded, learner, capsys):
    path, answers = recorded
    sdk, model, printed = _setup(learner, path, capsys)
    assert model == MODEL                         # no VISION_MODEL: the recording's model, so requests match
    assert f"Replaying {path.name}: 3 answers of {MODEL} recorded" in printed
    offline_urls = _turns(client.course_image_url("cat.jpg"), client.course_image_url("spot_difference_a.png"))
    label = f"*Recorded answer of {MODEL} on "

    raw = sdk.chat.completions.with_raw_response.create(model=model, **offline_urls[0])
    first = raw.parse().choices[0].message.content
    assert first.startswith(label) and first.endswith("\n\n" + answers[0])
    assert first.split("\n\n", 1)[1] == answers[0]
    assert raw.headers[SOURCE_HEADER].startswith(f"recorded; model={MODEL}")

    stream = sdk.chat.completions.create(model=model, **offline_urls[1])
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert len(chunks) > 3 and streamed.split("\n\n", 1)[1] == answers[1] and streamed.startswith(label)

    # the follow-up's history holds the replayed (labelled) answer: it still matches the recorded request
    history = offline_urls[1]["messages"] + [{"role": "assistant", "content": streamed},
                                             {"role": "user", "content": "And the second line?"}]
    follow = sdk.chat.completions.create(model=model, messages=history).choices[0].message.content
    assert follow.split("\n\n", 1)[1] == answers[2]


def test_a_changed_prompt_falls_back_to_local_analysis_and_says_so(recorded, learner, capsys):
    path, answers = recorded
    sdk, model, _ = _setup(learner, path, capsys)
    raw = sdk.chat.completions.with_raw_response.create(model=model, messages=[
        {"role": "user", "content": "What animal is this? Answer in one word."}])
    text = raw.parse().choices[0].message.content
    assert text.startswith(f"*No recorded answer in {path.name} matches this request: answered by local analysis.*")
    assert text.count("\n") >= 2 and text not in answers
    assert raw.headers[SOURCE_HEADER].startswith("local; no recorded answer")


def test_a_recording_of_another_course_version_is_reported(recorded, learner, capsys, tmp_path):
    path, _ = recorded
    data = json.loads(path.read_text())
    assert data["course_version"] == course_version(["03_multiple_images.ipynb"])
    data["course_version"] = "0.0.9+nb.000000000000"
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _setup(learner, older, capsys)
    said = " ".join(str(w.message) for w in caught)
    assert "0.0.9+nb.000000000000" in said and course_version(["03_multiple_images.ipynb"]) in said


def test_the_recording_is_plain_json_with_images_by_hash_and_no_key(recorded):
    path, _ = recorded
    text = path.read_text()
    for secret in (KEY, KEY[3:20], "Authorization", "Bearer", "api-key", "base64,"):
        assert secret not in text
    data = json.loads(text)
    assert data["model"] == MODEL and data["provider"] == "compatible"
    assert set(data["images"].values()) == {"cat.jpg", "spot_difference_a.png"}
    first = data["entries"][0]["request"]
    assert first["params"] == {"max_tokens": 300}
    assert first["messages"][0]["content"][1] == {"type": "image", "detail": "low", "name": "cat.jpg",
                                                  "sha256": next(k for k, v in data["images"].items() if v == "cat.jpg")}
    assert data["entries"][1]["stream"] is True
    assert len(text) < 40_000


def test_a_missing_or_wrong_recording_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigurationError, match="VISION_RECORDING points to .*does not exist"):
        config.load_settings({"VISION_DOTENV": "off", "VISION_RECORDING": str(tmp_path / "nope.json")})
    (tmp_path / "x.json").write_text('{"hello": 1}')
    with pytest.raises(ConfigurationError, match="not a course recording"):
        load_recording(tmp_path / "x.json")


def test_the_same_image_sent_three_ways_normalises_to_one_request():
    cat = course_image_path("cat.jpg")
    ways = [f"http://127.0.0.1:9/images/{cat.name}", public_copy(cat.name).url,
            "data:image/jpeg;base64," + __import__("base64").b64encode(cat.read_bytes()).decode()]
    keys = {normalise({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]})["key"] for url in ways}
    assert len(keys) == 1
    other = normalise({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": "https://example.org/a.png?sig=SECRET"}}]}]})
    assert "SECRET" not in json.dumps(other["request"])


def test_recording_notebook_05_with_the_command_and_replaying_it_offline(remote, tmp_path):
    """What a teacher and a learner type: the record command, then the notebook with VISION_RECORDING."""
    import nbformat
    from nbclient import NotebookClient

    from helpers.teacher import NOTEBOOKS_DIR

    out = tmp_path / "class.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VISION_", "OPENAI_", "AZURE_"))}
    env.update(PYTHONPATH=str(REPO_ROOT), VISION_DOTENV="off", VISION_CATALOG_DATE="2026-11-21",
               VISION_PROVIDER="compatible", OPENAI_BASE_URL=remote + "/v1", OPENAI_API_KEY=KEY)
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "helpers.teacher", "record", "05", "--out", str(out)], cwd=REPO_ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    seconds = time.perf_counter() - started
    assert done.returncode == 0, done.stdout + done.stderr
    assert KEY not in done.stdout + done.stderr
    text = out.read_text()
    assert KEY not in text and "Bearer" not in text
    data = json.loads(text)
    print(f"recorded notebook 05 in {seconds:.0f} s: {len(data['entries'])} answers, {len(text.encode()) / 1024:.1f} KB")
    assert len(data["entries"]) >= 4 and data["error_cells"] == {"05_handwriting_ocr.ipynb": 0}

    learner = {k: v for k, v in env.items() if not k.startswith(("OPENAI_", "VISION_PROVIDER"))}
    learner.update(VISION_PROVIDER="offline", VISION_RECORDING=str(out))
    nb = nbformat.read(NOTEBOOKS_DIR / "05_handwriting_ocr.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, resources={"metadata": {"path": str(NOTEBOOKS_DIR)}}).execute(env=learner)
    shown = "\n".join("".join(o.get("text", "")) + "".join(o.get("data", {}).get("text/markdown", ""))
                      + "".join(o.get("data", {}).get("text/plain", ""))
                      for cell in nb.cells for o in cell.get("outputs", []))
    assert f"Replaying {out.name}" in shown
    assert "No recorded answer" not in shown
    for entry in data["entries"]:
        answer = entry["response"]["choices"][0]["message"]["content"]
        assert f"replayed offline.*\n\n{answer}" in shown


def test_an_azure_deployment_is_recorded_under_its_model_and_replays_offline(remote, tmp_path):
    """Azure requests name a deployment; the recording names the model behind it, as the learner's offline
    requests do. The Azure key goes out as ``api-key`` and is not in the file."""
    azure_key = "a9b8c7d6" * 4
    settings = Settings(provider="azure", model=MODEL, api_key=azure_key, azure_endpoint=remote,
                        azure_api_version="2024-10-21", azure_deployment="my-vision")
    out = tmp_path / "azure.json"
    with RecordingProxy(settings) as proxy:
        sdk = openai.AzureOpenAI(azure_endpoint=proxy.base_url, api_key=PROXY_KEY, api_version="2024-10-21",
                                 max_retries=0)
        said = sdk.chat.completions.create(model="my-vision", messages=[{"role": "user", "content": "Hello?"}])
    write_recording(proxy, ["07_azure.ipynb"], out)
    text = out.read_text()
    assert azure_key not in text and "api-key" not in text
    entry = json.loads(text)["entries"][0]
    assert entry["request"]["model"] == MODEL
    from helpers.offline.backend import ChatBackend
    from helpers.offline.fetch import DownloadPolicy
    from helpers.offline.protocol import Route, parse_chat_request

    payload = {"model": MODEL, "messages": [{"role": "user", "content": "Hello?"}]}
    backend = ChatBackend(DownloadPolicy(), load_recording(out))
    replayed = backend.complete(parse_chat_request(payload, Route("openai")), json.dumps(payload).encode())
    assert replayed.content.split("\n\n", 1)[1] == said.choices[0].message.content
