"""Replaying a recording in the offline backend (issue 13), fast: the backend's one hook, the label, streams,
structured answers, the fallback line, the version check, and the normalisation that decides what matches.

The end-to-end test (the course's server as a separate process posing as the remote provider, the recording
proxy, a whole notebook recorded and replayed) is ``tests/test_record_replay.py`` (its own CI step).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from helpers import config
from helpers.course_images import course_image_path, public_copy
from helpers.errors import ConfigurationError
from helpers.local import REPO_ROOT
from helpers.offline.backend import ChatBackend
from helpers.offline.fetch import DownloadPolicy
from helpers.offline.protocol import Route, parse_chat_request
from helpers.recordings import (
    FORMAT,
    course_version,
    load_recording,
    normalise,
    strip_label,
    version_warning,
)
from helpers.teacher.recording import assemble_stream

MODEL = "gpt-4.1-mini"
HELLO = {"model": MODEL, "messages": [{"role": "user", "content": "Say hello to the class."}]}
ANSWER = "Hello, class! Today we look at pictures.\n\n- one\n- two  (double space kept)"
USAGE = {"prompt_tokens": 14, "completion_tokens": 15, "total_tokens": 29}


def _response(content: str | None, **message: object) -> dict:
    return {"id": "chatcmpl-real123", "object": "chat.completion", "created": 1764633600, "model": MODEL + "-2025-04-14",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content, **message},
                         "finish_reason": "tool_calls" if message else "stop"}], "usage": USAGE}


def _recording(tmp_path: Path, pairs: list[tuple[dict, dict]], version: str | None = None) -> Path:
    entries = [{**normalise(request), "stream": False, "response": response} for request, response in pairs]
    document = {"format": FORMAT, "model": MODEL, "provider": "openai", "recorded": "2026-12-01",
                "course_version": version or course_version(["00_setup.ipynb"]), "notebooks": ["00_setup.ipynb"],
                "entries": entries}
    path = tmp_path / "class.json"
    path.write_text(json.dumps(document))
    return path


def _ask(backend: ChatBackend, payload: dict):
    body = json.dumps(payload).encode()
    return backend.complete(parse_chat_request(payload, Route("openai")), hashlib.sha256(body).hexdigest())


def _backend(path: Path | None) -> ChatBackend:
    return ChatBackend(DownloadPolicy(), load_recording(path) if path else None)


def test_a_matching_request_gets_the_recorded_answer_under_a_label(tmp_path):
    backend = _backend(_recording(tmp_path, [(HELLO, _response(ANSWER))]))
    done = _ask(backend, {**HELLO, "user": "learner-7", "stream": False})      # delivery fields do not count
    label = f"*Recorded answer of {MODEL}-2025-04-14 on 2026-12-01, replayed offline.*\n\n"
    assert done.content == label + ANSWER
    assert done.usage.prompt_tokens == 14 and done.usage.completion_tokens == 15     # the real model's usage
    assert done.source == f"recorded; model={MODEL}-2025-04-14; date=2026-12-01; recording=class.json"
    body = done.body()
    assert body["id"] == "chatcmpl-real123" and body["choices"][0]["message"]["content"] == label + ANSWER
    # a stream of it adds up to the same text, byte for byte
    streamed = assemble_stream(b"".join(done.events(include_usage=True)))
    assert streamed["choices"][0]["message"]["content"] == label + ANSWER
    assert streamed["usage"]["total_tokens"] == 29


def test_structured_and_tool_answers_are_replayed_without_a_label(tmp_path):
    schema = {"type": "json_schema", "json_schema": {"name": "n", "schema": {
        "type": "object", "properties": {"animal": {"type": "string"}}, "required": ["animal"]}}}
    structured = {**HELLO, "response_format": schema}
    tool = {**HELLO, "tools": [{"type": "function", "function": {"name": "tag", "parameters": {"type": "object"}}}],
            "tool_choice": "required"}
    call = {"id": "call_1", "type": "function", "function": {"name": "tag", "arguments": '{"label": "cat"}'}}
    backend = _backend(_recording(tmp_path, [(structured, _response('{"animal": "cat"}')),
                                             (tool, _response(None, tool_calls=[call]))]))
    assert json.loads(_ask(backend, structured).content) == {"animal": "cat"}
    replayed = _ask(backend, tool).body()["choices"][0]
    assert replayed["finish_reason"] == "tool_calls"
    assert replayed["message"]["tool_calls"][0]["function"] == {"name": "tag", "arguments": '{"label": "cat"}'}


def test_a_changed_prompt_is_answered_by_local_analysis_with_one_line_saying_so(tmp_path):
    backend = _backend(_recording(tmp_path, [(HELLO, _response(ANSWER))]))
    changed = {**HELLO, "messages": [{"role": "user", "content": "Say hello to the class!"}]}
    done = _ask(backend, changed)
    first, rest = done.content.split("\n\n", 1)
    assert first == "*No recorded answer in class.json matches this request: answered by local analysis.*"
    assert ANSWER not in done.content and rest == _ask(_backend(None), changed).content
    assert done.source == "local; no recorded answer in class.json"
    assert _ask(_backend(None), changed).source is None          # no recording: no line, no header


def test_a_parameter_that_changes_the_answer_is_part_of_the_match(tmp_path):
    backend = _backend(_recording(tmp_path, [({**HELLO, "max_completion_tokens": 50}, _response(ANSWER))]))
    assert _ask(backend, {**HELLO, "max_completion_tokens": 50}).content.endswith(ANSWER)
    assert not _ask(backend, {**HELLO, "max_completion_tokens": 51}).content.endswith(ANSWER)
    assert not _ask(backend, {**HELLO, "temperature": 0}).content.endswith(ANSWER)


def test_a_follow_up_matches_although_its_history_holds_the_labelled_replay(tmp_path):
    follow = {"model": MODEL, "messages": [*HELLO["messages"], {"role": "assistant", "content": ANSWER},
                                           {"role": "user", "content": "Again, shorter."}]}
    backend = _backend(_recording(tmp_path, [(HELLO, _response(ANSWER)), (follow, _response("Hi!"))]))
    replayed = _ask(backend, HELLO).content
    assert strip_label(replayed) == ANSWER
    again = {**follow, "messages": [*HELLO["messages"], {"role": "assistant", "content": replayed},
                                    {"role": "user", "content": "Again, shorter."}]}
    assert _ask(backend, again).content.endswith("\n\nHi!")


def test_one_course_image_sent_four_ways_is_one_request():
    cat = course_image_path("cat.jpg")
    ways = [f"http://127.0.0.1:9/images/{cat.name}", f"http://localhost:8000/images/{cat.name}",
            public_copy(cat.name).url, "data:image/jpeg;base64," + base64.b64encode(cat.read_bytes()).decode()]
    normal = [normalise({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": url}}]}]}) for url in ways]
    assert len({n["key"] for n in normal}) == 1
    assert normal[0]["request"]["messages"][0]["content"][0]["name"] == "cat.jpg"


def test_an_image_elsewhere_is_keyed_by_its_url_without_writing_down_its_query():
    signed = "https://storage.example.org/a.png?sig=TOKEN123&se=2027"
    part = normalise({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "image_url", "image_url": {"url": signed}}]}]})["request"]["messages"][0]["content"][0]
    assert part["url"] == "https://storage.example.org/a.png" and "TOKEN123" not in json.dumps(part)


def test_another_course_version_is_reported_naming_both(tmp_path):
    same = load_recording(_recording(tmp_path, [(HELLO, _response(ANSWER))]))
    assert version_warning(same) is None
    (tmp_path / "old").mkdir()
    old = load_recording(_recording(tmp_path / "old", [(HELLO, _response(ANSWER))], version="0.0.1+nb.aaaaaaaaaaaa"))
    said = version_warning(old)
    assert said is not None and "0.0.1+nb.aaaaaaaaaaaa" in said and course_version(["00_setup.ipynb"]) in said


def test_vision_recording_is_checked_and_sets_the_model(tmp_path):
    path = _recording(tmp_path, [(HELLO, _response(ANSWER))])
    settings = config.load_settings({"VISION_DOTENV": "off", "VISION_RECORDING": str(path)})
    assert settings.recording == str(path.resolve()) and settings.model == MODEL
    pinned = config.load_settings({"VISION_DOTENV": "off", "VISION_RECORDING": str(path), "VISION_MODEL": "gpt-4o"})
    assert pinned.model == "gpt-4o"
    with pytest.raises(ConfigurationError, match="VISION_RECORDING points to .*does not exist"):
        config.load_settings({"VISION_DOTENV": "off", "VISION_RECORDING": str(tmp_path / "missing.json")})
    (tmp_path / "notes.json").write_text('{"hello": 1}')
    with pytest.raises(ConfigurationError, match="not a course recording"):
        config.load_settings({"VISION_DOTENV": "off", "VISION_RECORDING": str(tmp_path / "notes.json")})


def test_a_stream_of_tool_call_pieces_is_assembled():
    chunks = [{"id": "c", "created": 1, "model": "m", "choices": [{"index": 0, "delta": {"tool_calls": [
                  {"index": 0, "id": "call_9", "function": {"name": "tag", "arguments": ""}}]}}]},
              {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
                  "arguments": '{"a": '}}]}}]},
              {"id": "c", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {
                  "arguments": "1}"}}]}, "finish_reason": "tool_calls"}]}]
    raw = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    message = assemble_stream(raw)["choices"][0]["message"]
    assert message["tool_calls"][0]["function"] == {"name": "tag", "arguments": '{"a": 1}'}
    assert message["content"] is None


def test_recording_without_a_real_provider_says_what_to_set():
    from helpers.teacher.recording import RecordingProxy

    with pytest.raises(ConfigurationError, match="Recording needs a real provider.*OPENAI_API_KEY"):
        RecordingProxy(config.offline_settings())


def test_a_classroom_server_started_with_a_recording_replays_it_to_every_learner(tmp_path):
    """What a teacher runs in a room: ``python -m helpers.offline --classroom --recording FILE``; a learner's
    request with the room's token gets the recorded answer, labelled; without the token, a 401."""
    path = _recording(tmp_path, [(HELLO, _response(ANSWER))])
    token = "room-token-for-the-test"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "VISION_CLASSROOM_TOKEN": token}
    process = subprocess.Popen([sys.executable, "-m", "helpers.offline", "--classroom", "--port", "0", "--no-warm",
                                "--recording", str(path)], cwd=REPO_ROOT, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        printed = []
        while not any("OPENAI_BASE_URL=" in line for line in printed):
            line = process.stdout.readline()
            assert line, "the server stopped before printing its .env lines: " + process.stderr.read()
            printed.append(line)
        assert any(MODEL in line and "2026-12-01" in line for line in printed)    # which recording it serves
        base = next(line for line in printed if "OPENAI_BASE_URL=" in line).split("=", 1)[1].strip()
        base = "http://127.0.0.1:" + base.rsplit(":", 1)[1]            # the printed LAN address, reached locally
        asked = requests.post(base + "/chat/completions", json=HELLO, timeout=30,
                              headers={"Authorization": f"Bearer {token}.ann"})
        assert asked.status_code == 200, asked.text
        assert asked.json()["choices"][0]["message"]["content"].endswith(ANSWER)
        assert asked.headers["x-offline-source"].startswith("recorded; model=")
        assert requests.post(base + "/chat/completions", json=HELLO, timeout=30).status_code == 401
        assert token not in "".join(printed)                            # a token the teacher chose is not printed
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_the_recording_proxy_forwards_only_this_runs_kernels_and_a_recordings_routes():
    """Issue 25: anything on the computer (or a web page through DNS rebinding) could send any request through the
    proxy with the teacher's key. Now: this run's random key, the proxy's own Host, and only what a recording
    needs (chat completions, responses, the notebooks' own uploads); the rest gets 401/421/403 and never
    leaves."""
    from helpers.offline.server import OfflineServer
    from helpers.teacher.recording import RecordingProxy

    with OfflineServer(warm_ocr=False) as remote:           # stands in for the provider (any key works there)
        settings = config.Settings(provider="compatible", model=MODEL, api_key="sk-teacher-real-key",
                                   base_url=remote.base_url + "/v1")
        with RecordingProxy(settings) as proxy:
            url, own = proxy.base_url, {"Authorization": f"Bearer {proxy.key}"}
            attacks = {
                "no key": requests.post(url + "/v1/chat/completions", json=HELLO, timeout=30),
                "old fixed key": requests.post(url + "/v1/chat/completions", json=HELLO, timeout=30,
                                               headers={"Authorization": "Bearer recording-proxy"}),
                "rebinding Host": requests.post(url + "/v1/chat/completions", json=HELLO, timeout=30,
                                                headers={**own, "Host": f"evil.example:{proxy.port}"}),
                "org users": requests.get(url + "/v1/organization/users", headers=own, timeout=30),
                "delete a file": requests.delete(url + "/v1/files/file-abc123", headers=own, timeout=30),
                "models": requests.get(url + "/v1/models", headers=own, timeout=30),
            }
            statuses = {name: answer.status_code for name, answer in attacks.items()}
            print("recording proxy, attacks:", statuses)
            assert statuses == {"no key": 401, "old fixed key": 401, "rebinding Host": 421, "org users": 403,
                                "delete a file": 403, "models": 403}
            assert all("sk-teacher" not in answer.text for answer in attacks.values())
            # what a recording needs still goes through: a chat completion, an upload and deleting that upload
            assert requests.post(url + "/v1/chat/completions", json=HELLO, headers=own, timeout=60).status_code == 200
            uploaded = requests.post(url + "/v1/files", headers=own, timeout=30, data={"purpose": "vision"},
                                     files={"file": ("a.png", base64.b64decode(
                                         "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="),
                                         "image/png")})
            assert uploaded.status_code == 200, uploaded.text
            deleted = requests.delete(url + "/v1/files/" + uploaded.json()["id"], headers=own, timeout=30)
            assert deleted.status_code == 200 and deleted.json()["deleted"] is True
            assert len(proxy.entries) == 1


@pytest.mark.parametrize(("name", "damage", "field"), [
    ("deep array", lambda data: "[" * 200_000 + "]" * 200_000, "JSON"),
    ("entries is an object", lambda data: {**data, "entries": {"a": 1}}, "entries"),
    ("an entry is a list", lambda data: {**data, "entries": [[1, 2]]}, "entries.0"),
    ("notebooks is an int", lambda data: {**data, "notebooks": 5}, "notebooks"),
    ("notebooks is binary", lambda data: {**data, "notebooks": "\x00\x01"}, "notebooks"),
    ("notebooks outside notebooks/", lambda data: {**data, "notebooks": ["../README.md"]}, "notebooks.0"),
    ("content is a number", lambda data: {**data, "entries": [{**data["entries"][0], "response": {
        **data["entries"][0]["response"], "choices": [{"message": {"content": 5}}]}}]}, "content"),
    ("usage of the wrong type", lambda data: {**data, "entries": [{**data["entries"][0], "response": {
        **data["entries"][0]["response"], "usage": {"prompt_tokens": "many"}}}]}, "usage"),
])
def test_a_damaged_or_hostile_recording_is_a_configuration_error_naming_the_field(tmp_path, name, damage, field):
    """Issue 25: each of these crashed at start (a traceback) or gave 500s at request time."""
    good = _recording(tmp_path, [(HELLO, _response(ANSWER))])
    data = json.loads(good.read_text())
    damaged = damage(data)
    path = tmp_path / "damaged.json"
    path.write_text(damaged if isinstance(damaged, str) else json.dumps(damaged))
    with pytest.raises(ConfigurationError) as caught:
        load_recording(path)
    message = str(caught.value)
    assert str(path) in message and field in message, message
