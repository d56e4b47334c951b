"""The course backend as a JupyterHub service (helpers/offline/hub.py) and ``setup()`` inside a hub session
(helpers/config.py), against a stand-in for the hub's API (``GET /hub/api/user``, the hub's "who am I", answered
as JupyterHub 6 answers it) and the real offline server. The real hub: tests/test_jupyterhub.py (marker ``hub``).
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import openai
import pytest
from localhttp import QuietHandler, base_url, serve, stop  # tests/localhttp.py

from helpers import client as course_client
from helpers.errors import ConfigurationError
from helpers.offline.hub import HubRoom
from helpers.offline.server import OfflineServer

SERVICE = "vision-course"
ACCESS = f"access:services!service={SERVICE}"
USERS = {   # token -> what the hub's /user answers for it
    "tok-ann-0123456789": {"kind": "user", "name": "ann", "admin": False, "scopes": [ACCESS]},
    "tok-bob-0123456789": {"kind": "user", "name": "bob", "admin": False, "scopes": [ACCESS]},
    "tok-boss-012345678": {"kind": "user", "name": "boss", "admin": True, "scopes": ["access:services"]},
    "tok-noscope-012345": {"kind": "user", "name": "eve", "admin": False, "scopes": ["users:activity!user=eve"]},
    "tok-service-012345": {"kind": "service", "name": "other", "admin": False, "scopes": [ACCESS]},
    "tok-slow-012345678": {"kind": "user", "name": "slowpoke", "admin": False, "scopes": [ACCESS]},
}


class FakeHub(QuietHandler):
    asked: list[str] = []
    down = False

    def do_GET(self):  # noqa: N802 - http.server's naming
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        type(self).asked.append(token)
        if type(self).down:
            return self.send_json(502, {"status": 502, "message": "proxy error"})
        if self.path != "/hub/api/user" or scheme != "token":
            return self.send_json(404, {"status": 404})
        if token.startswith("tok-slow"):
            time.sleep(2)
        user = USERS.get(token)
        if user is None:
            return self.send_json(403, {"status": 403, "message": "Missing or invalid credentials."})
        self.send_json(200, {**user, "groups": [], "token_id": "a1", "session_id": None})


@pytest.fixture(scope="module")
def fake_hub():
    FakeHub.asked = []
    httpd = serve(FakeHub)
    yield httpd
    stop(httpd)


@pytest.fixture(scope="module")
def service(fake_hub):
    room = HubRoom(base_url(fake_hub) + "/hub/api", service=SERVICE, prefix=f"/services/{SERVICE}/")
    server = OfflineServer(warm_ocr=False, classroom=room)  # type: ignore[arg-type]
    server.start()
    yield server
    server.stop()


def ask(service, token, path="/v1/chat/completions", **headers):
    auth = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.post(service.base_url + path, timeout=30, headers={**auth, **headers},
                      json={"model": "gpt-4o", "messages": [{"role": "user", "content": "hello"}]})


def status(service, token):
    return httpx.get(service.base_url + "/status", headers={"Authorization": f"Bearer {token}"}, timeout=30)


# --- the service ------------------------------------------------------------------------------------------------

def test_the_hub_names_the_learner_once_per_token_and_a_chosen_name_changes_nothing(service):
    FakeHub.asked.clear()
    for _ in range(4):
        assert ask(service, "tok-ann-0123456789", **{"X-Learner": "bob"}).status_code == 200
    assert FakeHub.asked == ["tok-ann-0123456789"]          # cached: the hub was asked once
    learners = status(service, "tok-boss-012345678").json()["learners"]
    assert learners["ann"]["ran"] >= 4 and "bob" not in learners


def test_unknown_missing_or_decorated_tokens_are_the_apis_401(service):
    for token in ("", "not-a-hub-token", "tok-ann-0123456789.bob", "tok-service-012345"):
        answer = ask(service, token)
        assert answer.status_code == 401, (token, answer.text)
        assert answer.json()["error"]["code"] == "invalid_api_key"
        assert "hub API token" in answer.json()["error"]["message"]
        assert not token or token not in answer.text
    FakeHub.asked.clear()
    for _ in range(3):
        ask(service, "still-not-a-hub-token")
    assert FakeHub.asked == ["still-not-a-hub-token"]      # a refusal is cached too (a few seconds)


def test_a_token_without_access_to_the_service_is_a_403_naming_the_scope(service):
    answer = ask(service, "tok-noscope-012345")
    assert answer.status_code == 403
    assert ACCESS in answer.json()["error"]["message"] and "eve" in answer.json()["error"]["message"]


def test_requests_through_the_hubs_proxy_keep_the_service_prefix(service):
    answer = ask(service, "tok-bob-0123456789", path=f"/services/{SERVICE}/v1/chat/completions")
    assert answer.status_code == 200, answer.text
    assert httpx.get(service.base_url + f"/services/{SERVICE}/images/handwriting_en.jpg").status_code == 200


def test_the_status_is_for_the_hubs_admins(service):
    ask(service, "tok-bob-0123456789")
    assert status(service, "tok-bob-0123456789").status_code == 403
    assert status(service, "nobody").status_code == 401
    seen = status(service, "tok-boss-012345678").json()
    assert seen["learners"]["bob"]["ran"] >= 1 and seen["refused"] >= 1
    assert {"free", "waiting", "running"} <= set(seen["scheduler"])
    last = seen["recent"][-1]
    assert set(last) == {"at", "learner", "method", "path", "status", "ms"}     # never a body or a token


def test_a_slow_hub_does_not_hold_up_learners_it_already_knows(service):
    ask(service, "tok-ann-0123456789")                 # ann's token is cached
    slow = threading.Thread(target=ask, args=(service, "tok-slow-012345678"))
    slow.start()
    time.sleep(0.3)                                    # the hub is now taking 2 s for the new token
    began = time.perf_counter()
    assert ask(service, "tok-ann-0123456789").status_code == 200
    took = time.perf_counter() - began
    assert slow.is_alive(), "the slow lookup was over before the other request: nothing was measured"
    slow.join()
    assert took < 1.0, f"a known learner waited {took:.2f} s behind the hub's slow answer for someone else"


def test_concurrent_requests_with_a_new_token_ask_the_hub_once(service, fake_hub):
    FakeHub.asked.clear()
    room = HubRoom(base_url(fake_hub) + "/hub/api", service=SERVICE)
    with OfflineServer(warm_ocr=False, classroom=room) as fresh, ThreadPoolExecutor(6) as pool:  # type: ignore[arg-type]
        codes = list(pool.map(lambda _: ask(fresh, "tok-slow-012345678").status_code, range(6)))
    assert codes == [200] * 6
    assert FakeHub.asked.count("tok-slow-012345678") == 1


def test_a_hub_that_does_not_answer_is_a_503_the_sdk_retries(service, fake_hub):
    FakeHub.down = True
    try:
        answer = ask(service, "tok-new-never-seen-1")
    finally:
        FakeHub.down = False
    assert answer.status_code == 503, answer.text
    assert "hub answered 502" in answer.json()["error"]["message"]


def test_the_blocking_check_has_the_classrooms_interface(fake_hub):
    room = HubRoom(base_url(fake_hub) + "/hub/api", service=SERVICE)
    assert room.check({"authorization": "Bearer tok-bob-0123456789"}, "10.0.0.7") == "bob"
    assert room.check({"api-key": "tok-ann-0123456789"}, None) == "ann"      # Azure's header, as the classroom's
    with pytest.raises(Exception, match="Incorrect API key"):
        room.check({"authorization": "Bearer nope"}, None)
    assert "tok-" not in repr(room)


# --- setup() inside a hub session ---------------------------------------------------------------------------

@pytest.fixture
def hub_session(learner, monkeypatch, service):
    """A learner's kernel on the hub: no .env, the hub's variables in the environment."""
    monkeypatch.setenv("VISION_HUB_SERVICE_URL", service.base_url)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-ann-0123456789")
    monkeypatch.setenv("JUPYTERHUB_USER", "ann")
    return learner


def test_setup_on_a_hub_uses_the_classs_backend_with_the_hub_token(hub_session, service, capsys):
    client, model = course_client.setup()
    printed = capsys.readouterr().out
    assert "Provider: the class's backend" in printed and f"127.0.0.1:{service.port}" in printed
    assert "tok-ann" not in printed
    assert str(client.base_url).rstrip("/") == service.base_url + "/v1"
    answer = client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])
    assert answer.choices[0].message.content
    assert course_client.course_image_url("handwriting_en.jpg") == service.base_url + "/images/handwriting_en.jpg"
    assert "ann" in status(service, "tok-boss-012345678").json()["learners"]


@pytest.mark.parametrize(("dotenv", "provider"), [
    ("OPENAI_API_KEY=sk-" + "own" * 14 + "\n", "openai"),
    ("OPENAI_BASE_URL=http://localhost:11434/v1\n", "compatible"),
    ("VISION_PROVIDER=offline\n", "offline"),
    ("VISION_PROVIDER=compatible\nOPENAI_BASE_URL=http://localhost:11434/v1\n", "compatible"),
])
def test_a_learners_own_settings_in_dotenv_still_win(hub_session, dotenv, provider):
    (hub_session / ".env").write_text(dotenv, encoding="utf-8")
    settings = course_client.load_settings()
    assert settings.provider == provider and not settings.hub
    assert settings.api_key != "tok-ann-0123456789"


def test_without_the_course_service_a_hub_session_keeps_the_embedded_backend(learner, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-ann-0123456789")     # a hub, but not this course's config
    assert course_client.load_settings().provider == "offline"


def test_a_broken_service_url_is_an_error_naming_the_variable(hub_session, monkeypatch):
    monkeypatch.setenv("VISION_HUB_SERVICE_URL", "vision-course:8765")
    with pytest.raises(ConfigurationError, match="VISION_HUB_SERVICE_URL"):
        course_client.load_settings()


def test_a_learner_the_hub_does_not_know_gets_a_clear_401_in_the_notebook(hub_session, monkeypatch):
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-revoked-01234567")
    client, model = course_client.setup(verbose=False)
    with pytest.raises(openai.AuthenticationError, match="Restart your server from the hub"):
        client.chat.completions.create(model=model, messages=[{"role": "user", "content": "hello"}])


def test_the_course_says_what_to_do_when_the_hub_token_is_refused(hub_session, monkeypatch):
    from helpers.chat import complete
    from helpers.errors import AuthenticationError

    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "tok-revoked-76543210")
    course_client.setup(verbose=False)
    with pytest.raises(AuthenticationError) as caught:
        complete([{"role": "user", "content": "hello"}])
    assert "Hub Control Panel" in str(caught.value) and "OPENAI_API_KEY" not in str(caught.value)
    assert "tok-revoked" not in str(caught.value)


def test_the_service_as_the_hub_starts_it_serves_the_teachers_recording_and_stops_on_sigint(fake_hub, tmp_path):
    """``python -m helpers.offline --hub`` with what the hub passes a managed service (its URL, the hub's API) and
    the teacher's ``VISION_RECORDING``: the class gets the recorded answer; the hub stops it with SIGINT."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    from pathlib import Path

    from test_replay import ANSWER, HELLO, _recording, _response  # tests/test_replay.py

    repo = Path(__file__).resolve().parent.parent
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "JUPYTERHUB_SERVICE_URL": f"http://127.0.0.1:{port}",
           "JUPYTERHUB_API_URL": base_url(fake_hub) + "/hub/api", "JUPYTERHUB_SERVICE_NAME": SERVICE,
           "JUPYTERHUB_SERVICE_PREFIX": f"/services/{SERVICE}/", "JUPYTERHUB_API_TOKEN": "service-own-token",
           "VISION_RECORDING": str(_recording(tmp_path, [(HELLO, _response(ANSWER))]))}
    process = subprocess.Popen([sys.executable, "-m", "helpers.offline", "--hub", "--no-warm"], cwd=repo, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        printed = [process.stdout.readline()]
        assert printed[0].startswith("Course backend for the hub"), printed[0] + (process.stdout.read() or "")
        printed.append(process.stdout.readline())
        assert "2026-12-01" in printed[1]                                  # which recording it serves
        url = f"http://127.0.0.1:{port}/services/{SERVICE}/v1/chat/completions"
        asked = httpx.post(url, json=HELLO, headers={"Authorization": "Bearer tok-ann-0123456789"}, timeout=30)
        assert asked.status_code == 200, asked.text
        assert asked.json()["choices"][0]["message"]["content"].endswith(ANSWER)
        assert asked.headers["x-offline-source"].startswith("recorded; model=")
        seen = httpx.get(f"http://127.0.0.1:{port}/status", headers={"Authorization": "Bearer tok-boss-012345678"})
        assert "2026-12-01" in seen.json()["recording"] and seen.json()["learners"]["ann"]["ran"] == 1
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert "service-own-token" not in (process.stdout.read() or "")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
