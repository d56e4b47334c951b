"""Fixtures several test modules share (the session-wide set-up is in the repository's conftest.py)."""

from __future__ import annotations

import openai
import pytest

from helpers import client as course_client
from helpers import config
from helpers.offline import ServerSettings, ensure_server, server_url
from helpers.offline.server import OfflineServer


@pytest.fixture
def offline(monkeypatch):
    """The session's own provider: the embedded offline backend (started once per process), no fault injected."""
    monkeypatch.setenv("VISION_PROVIDER", "offline")
    monkeypatch.delenv("VISION_OFFLINE_FAULT", raising=False)
    yield
    course_client.clear_clients()


@pytest.fixture(scope="module")
def server():
    """A private offline server for one test module (no OCR warm-up: the first request loads OCR)."""
    with OfflineServer(warm_ocr=False) as running:
        yield running


@pytest.fixture(scope="module")
def api(server):
    """The official SDK pointed at :func:`server`, no retries (a failure shows at once)."""
    return openai.OpenAI(base_url=server.base_url + "/v1", api_key="offline", max_retries=0, timeout=60)


@pytest.fixture
def learner(tmp_path, monkeypatch):
    """A learner's folder: no course variable in the environment, a .env file read from the cwd; the shared
    backend left as it was found (no recording)."""
    for name in (*config.ENV_VARS, "OPENAI_ORG_ID", "OPENAI_PROJECT_ID"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VISION_CATALOG_DATE", "2026-11-21")
    monkeypatch.chdir(tmp_path)
    course_client.clear_clients()
    yield tmp_path
    if server_url():
        ensure_server(ServerSettings())       # the shared backend: no recording
    course_client.clear_clients()
