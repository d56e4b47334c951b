"""Faults: rate limits, server errors and timeouts are retried with backoff, then succeed or fail clearly; a turn is
never duplicated or lost; a saved conversation is never left half-written; the backend survives load.

Everything goes through the course's own code (``helpers.chat.Conversation`` and the cached SDK client of
``helpers.client``) against an offline backend started by this module, with its fault injection
(``VISION_OFFLINE_FAULT``, see ``helpers/offline/faults.py``). Retry timings are kept small: a 1 s client timeout
(``VISION_TIMEOUT``), two retries (``VISION_MAX_RETRIES``), ``retry_after`` of a fraction of a second.

What the server saw is observed, not guessed: every fault decision (``FaultBook.should_fail``) and every answer
computed (``ChatBackend.complete``) is recorded with its time, so "retried N times, answered once" is counted.

Run: cd /work/main && python -m pytest -q -o addopts="" tests/test_faults.py
"""

from __future__ import annotations

import copy
import importlib.util
import io
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers import client
from helpers.conversation import Conversation
from helpers.errors import NetworkError, RateLimitError, ServiceError
from helpers.models import DEFAULT_MODEL
from helpers.offline.backend import ChatBackend
from helpers.offline.faults import FaultBook
from helpers.offline.server import OfflineServer

REPO = Path(__file__).resolve().parent.parent
TIMEOUT_S = 1.0          # VISION_TIMEOUT for these tests
RETRIES = 2              # VISION_MAX_RETRIES for these tests


def png(seed: int = 0, size: tuple[int, int] = (96, 64)) -> bytes:
    rng = np.random.default_rng(seed)
    buffer = io.BytesIO()
    Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)).save(buffer, "PNG")
    return buffer.getvalue()


# --- fixtures ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def server():
    local = OfflineServer(warm_ocr=False)
    local.start()
    yield local
    local.stop()


@dataclass
class ServerLog:
    """What the backend did: one entry per fault decision (time, failed?) and the number of answers computed."""

    decisions: list[tuple[float, bool]] = field(default_factory=list)
    answers: int = 0

    @property
    def attempts(self) -> int:
        return len(self.decisions)

    @property
    def failed(self) -> list[bool]:
        return [failed for _, failed in self.decisions]

    def gaps(self) -> list[float]:
        times = [t for t, _ in self.decisions]
        return [b - a for a, b in zip(times, times[1:], strict=False)]


@pytest.fixture
def seen(monkeypatch) -> ServerLog:
    """Record the backend's fault decisions and computed answers (the real methods still run)."""
    log = ServerLog()
    real_should_fail = FaultBook.should_fail
    real_complete = ChatBackend.complete

    def should_fail(self, spec):
        failed = real_should_fail(self, spec)
        log.decisions.append((time.monotonic(), failed))
        return failed

    def complete(self, request, raw_body, *args, **kwargs):
        result = real_complete(self, request, raw_body, *args, **kwargs)
        log.answers += 1
        return result

    monkeypatch.setattr(FaultBook, "should_fail", should_fail)
    monkeypatch.setattr(ChatBackend, "complete", complete)
    return log


@pytest.fixture
def provider(server, monkeypatch):
    """The course configured like a learner's .env, pointed at this module's backend; returns a setter that
    switches between the offline provider and Azure (the AzureOpenAI client against the same backend)."""
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "VISION_MODEL", "VISION_OFFLINE_FAULT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("VISION_DOTENV", "off")
    monkeypatch.setenv("VISION_TIMEOUT", str(TIMEOUT_S))
    monkeypatch.setenv("VISION_MAX_RETRIES", str(RETRIES))
    monkeypatch.setattr(client, "offline_server_url", lambda port=None: server.base_url)

    def use(name: str) -> None:
        if name == "azure":
            monkeypatch.setenv("VISION_PROVIDER", "azure")
            monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.base_url)
            monkeypatch.setenv("AZURE_OPENAI_API_KEY", "0123456789abcdef" * 2)
            monkeypatch.setenv("AZURE_OPENAI_API_VERSION", "2024-10-21")
            monkeypatch.setenv("AZURE_OPENAI_DEPLOYMENT", "course-vision")
            monkeypatch.setenv("VISION_MODEL", DEFAULT_MODEL)
        else:
            monkeypatch.setenv("VISION_PROVIDER", "offline")
        client.clear_clients()

    use("offline")
    yield use
    client.clear_clients()


def fault(monkeypatch, spec: str | None) -> None:
    """Inject ``spec`` (a unique ``key`` is added, so no other test shares its counter), or clear it."""
    if spec is None:
        monkeypatch.delenv("VISION_OFFLINE_FAULT", raising=False)
    else:
        monkeypatch.setenv("VISION_OFFLINE_FAULT", f"{spec};key={uuid.uuid4().hex}")


def chat_with_one_turn() -> Conversation:
    chat = Conversation("Answer in one sentence.")
    assert chat.ask("First question: what is this?", images=[png(1)])
    return chat


# --- retried, then answered -------------------------------------------------------------------------------

RECOVERS = {
    # name: (fault spec, provider, failures before success)
    "429-retry-after": ("429;times=2;retry_after=0.3", "offline", 2),
    "429-retry-after-azure": ("429;times=2;retry_after=0.3", "azure", 2),
    "500": ("500;times=2", "offline", 2),
    "503": ("503;times=1", "offline", 1),
    "timeout": ("timeout;times=1;seconds=3", "offline", 1),
}


@pytest.mark.parametrize("name", list(RECOVERS))
def test_transient_faults_are_retried_and_the_turn_is_added_exactly_once(name, provider, seen, monkeypatch):
    spec, which, failures = RECOVERS[name]
    provider(which)
    chat = chat_with_one_turn()
    before = copy.deepcopy(chat.messages)
    seen.decisions.clear()
    seen.answers = 0

    fault(monkeypatch, spec)
    started = time.monotonic()
    reply = chat.ask("Second question: and now?", images=[png(2)])
    elapsed = time.monotonic() - started

    # The server: `failures` refused attempts, then one answered; one answer computed in all.
    assert seen.failed == [True] * failures + [False]
    assert seen.answers == 1
    # The history: the old turns untouched, then exactly one new question and its answer.
    assert chat.messages[:len(before)] == before
    assert chat.messages[len(before):] == [chat.last_request["messages"][-1], {"role": "assistant", "content": reply}]
    assert chat.messages[-2]["content"][0] == {"type": "text", "text": "Second question: and now?"}
    assert len(chat.turns) == 2 and chat.turns[-1].user_index == len(before)
    assert reply

    gaps = seen.gaps()
    if name.startswith("429"):
        # Retry-After (retry-after-ms: 300) is honoured, instead of the SDK's own exponential backoff.
        assert all(0.28 <= gap < 0.9 for gap in gaps), gaps
    elif name == "timeout":
        # The first attempt was abandoned after VISION_TIMEOUT, then retried after a short backoff.
        assert gaps[0] >= TIMEOUT_S + 0.3, gaps
        assert elapsed < TIMEOUT_S + 2.5
    else:
        # No Retry-After: the SDK's exponential backoff (0.5 s x 2^n, with jitter down to 75 %).
        assert gaps[0] >= 0.35, gaps
        if len(gaps) > 1:
            assert gaps[1] > gaps[0], gaps


# --- retried, then given up clearly -----------------------------------------------------------------------

GIVES_UP = {
    # name: (fault spec, course exception, key phrase, HTTP status)
    "429": ("429;times=9;retry_after=0.1", RateLimitError, f"still rate limited after {RETRIES} retries", 429),
    "500": ("500;times=9", ServiceError, f"still failing after {RETRIES} retries", 500),
    "timeout": ("timeout;times=9;seconds=3", NetworkError,
                f"before the timeout ({TIMEOUT_S:g} s each) after {RETRIES} retries", None),
}


@pytest.mark.parametrize("name", list(GIVES_UP))
def test_persistent_faults_fail_clearly_and_leave_the_history_unchanged(name, provider, seen, monkeypatch):
    spec, expected, phrase, status = GIVES_UP[name]
    chat = chat_with_one_turn()
    before_messages = copy.deepcopy(chat.messages)
    before_turns = list(chat.turns)
    seen.decisions.clear()
    seen.answers = 0

    fault(monkeypatch, spec)
    with pytest.raises(expected) as caught:
        chat.ask("Second question: and now?", images=[png(3)])
    err = caught.value
    assert phrase in str(err) and err.status == status
    assert "VISION_MAX_RETRIES" in err.fix or "VISION_TIMEOUT" in err.fix
    assert seen.failed == [True] * (RETRIES + 1) and seen.answers == 0
    assert chat.messages == before_messages and chat.turns == before_turns

    fault(monkeypatch, None)                      # the service recovers: the same conversation carries on
    assert chat.ask("Second question, again.")
    assert chat.messages[:len(before_messages)] == before_messages
    assert [m["role"] for m in chat.messages[len(before_messages):]] == ["user", "assistant"]


def test_a_run_of_mixed_faults_keeps_exactly_the_successful_turns_in_order(provider, seen, monkeypatch):
    chat = Conversation()
    plan = [("Q1", None, True), ("Q2", "500;times=9", False), ("Q3", "429;times=1;retry_after=0.05", True),
            ("Q4", "503;times=9", False), ("Q5", "500;times=1", True)]
    monkeypatch.setenv("VISION_MAX_RETRIES", "1")
    client.clear_clients()
    replies = {}
    for question, spec, succeeds in plan:
        fault(monkeypatch, spec)
        if succeeds:
            replies[question] = chat.ask(question)
        else:
            with pytest.raises(ServiceError):
                chat.ask(question)
    asked = [m["content"][0]["text"] for m in chat.messages if m["role"] == "user"]
    answered = [m["content"] for m in chat.messages if m["role"] == "assistant"]
    assert asked == ["Q1", "Q3", "Q5"]
    assert answered == [replies["Q1"], replies["Q3"], replies["Q5"]]
    assert [t.user_index for t in chat.turns] == [0, 2, 4]
    assert seen.answers == 3


# --- saving is atomic --------------------------------------------------------------------------------------

_BIG_SAVE = r"""
import sys
from helpers.conversation import Conversation

chat = Conversation.load(sys.argv[1])
filler = "word " * 400
for i in range(20000):       # about 80 MB of JSON: long enough to be caught in the middle of writing
    chat.messages.append({"role": "user", "content": [{"type": "text", "text": f"Question {i}: {filler}"}]})
    chat.messages.append({"role": "assistant", "content": f"Answer {i}: {filler}"})
print("saving", flush=True)
chat.save(sys.argv[1])
print("saved", flush=True)
"""


def temp_files(folder: Path, name: str) -> list[Path]:
    """The temporary files Conversation.save writes next to ``name`` (``.NAME.XXXX.tmp``)."""
    return sorted(folder.glob(f".{name}.*.tmp"))


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL (POSIX)")
def test_a_save_killed_mid_write_leaves_the_previous_file_intact(tmp_path):
    chat = Conversation("Keep me.")
    chat.messages += [{"role": "user", "content": [{"type": "text", "text": "Hello"}]},
                      {"role": "assistant", "content": "Hi."}]
    path = chat.save(tmp_path / "chat.json")
    original = path.read_bytes()

    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    process = subprocess.Popen([sys.executable, "-c", _BIG_SAVE, str(path)], cwd=REPO, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout.readline().strip() == "saving"
        deadline = time.monotonic() + 30
        partial: list[Path] = []
        while time.monotonic() < deadline:          # wait until the new JSON is being written...
            partial = [p for p in temp_files(tmp_path, "chat.json") if p.stat().st_size > 4 * 2**20]
            if partial:
                break
            time.sleep(0.002)
        assert partial, "the save never started writing"
        process.send_signal(signal.SIGKILL)         # ...and pull the plug in the middle
    finally:
        process.kill()
        process.wait(timeout=10)
    assert process.returncode == -signal.SIGKILL

    assert path.read_bytes() == original                        # the previous file, byte for byte
    assert json.loads(original)["messages"][-1]["content"] == "Hi."
    assert len(Conversation.load(path).messages) == 3
    left = temp_files(tmp_path, "chat.json")
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == ["chat.json"]
    # A SIGKILL cannot be cleaned up after: the half-written temporary file stays (hidden, never loaded).
    assert len(left) == 1 and left[0].stat().st_size < 80 * 2**20
    with pytest.raises(json.JSONDecodeError):
        json.loads(left[0].read_text(encoding="utf-8"))


def test_the_next_save_removes_a_temp_file_left_by_a_killed_save(tmp_path):
    """What a SIGKILL'd save leaves (see the test above): a hidden, half-written ``.chat.json.XXXX.tmp``. The next
    successful save of the same file should remove such leftovers once they are clearly abandoned (an hour old)."""
    chat = Conversation("Keep me.")
    path = chat.save(tmp_path / "chat.json")
    stale = tmp_path / ".chat.json.k1ll3d_.tmp"
    stale.write_text('{"format": "gpt-vision-course/conversation", "messages": [{"role": "us', encoding="utf-8")
    an_hour_ago = time.time() - 3600
    os.utime(stale, (an_hour_ago, an_hour_ago))

    chat.save(path)
    assert json.loads(path.read_text(encoding="utf-8"))["system"] == "Keep me."
    assert temp_files(tmp_path, "chat.json") == [], "stale temporary files pile up next to the conversation"


# --- load -------------------------------------------------------------------------------------------------

def _load_benchmark():
    spec = importlib.util.spec_from_file_location("load_offline", REPO / "benchmarks" / "load_offline.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module           # dataclasses look their module up while the file executes
    spec.loader.exec_module(module)
    return module


def test_64_requests_at_concurrency_32_are_all_answered(server, monkeypatch):
    """The CI-sized run of benchmarks/load_offline.py (500 requests there): text, cached and new images."""
    monkeypatch.delenv("VISION_OFFLINE_FAULT", raising=False)
    bench = _load_benchmark()
    report = bench.run_load(server.base_url, total=64, concurrency=32, timeout=60)
    assert report.failures == {} and report.answered == 64
    assert set(report.latencies) == {"text", "course image", "distinct image"}
    assert len(report.all_latencies()) == 64
