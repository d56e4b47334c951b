"""A real JupyterHub for tests and benchmarks: the repository's ``jupyterhub_config.py`` in test mode, started with
``jupyterhub`` from PyPI and its real proxy (``configurable-http-proxy`` from npm), on free ports in a temporary
folder; learners' servers spawned through the hub's REST API; code run in a learner's real kernel through Jupyter
Server's kernels API and websocket. Every process is stopped by its id at the end (:meth:`Hub.stop`).

Used by tests/test_jupyterhub.py and benchmarks/hub_class.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import psutil

REPO = Path(__file__).resolve().parent.parent
SERVICE = "vision-course"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def missing_tools() -> str | None:
    """What is missing to run a hub here (None: nothing), with the commands that install it."""
    problems = []
    try:
        import jupyterhub  # noqa: F401
    except ImportError:
        problems.append("jupyterhub (pip install jupyterhub)")
    if shutil.which("configurable-http-proxy") is None:
        problems.append("configurable-http-proxy (npm install -g configurable-http-proxy)")
    return ", ".join(problems) or None


class Hub:
    """One hub in ``folder``: :meth:`start`, then users, servers and kernels; :meth:`stop` ends everything."""

    def __init__(self, folder: Path, *, admins: tuple[str, ...] = ("teacher",), workers: int | None = None) -> None:
        self.folder = folder
        self.port, self.api_port, self.proxy_api_port, self.service_port = (free_port() for _ in range(4))
        self.admin_token = secrets.token_hex(24)
        self.admins = admins
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = folder / "hub.log"
        self.pids: set[int] = set()

    @property
    def public_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}/hub/api"

    @property
    def service_url(self) -> str:
        """The course backend, directly (what learners' kernels use: VISION_HUB_SERVICE_URL)."""
        return f"http://127.0.0.1:{self.service_port}"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTERHUB_", "VISION_", "OPENAI_",
                                                                           "AZURE_OPENAI_"))}
        homes = self.folder / "homes"
        homes.mkdir(exist_ok=True)
        env.update(PYTHONPATH=str(REPO), VISION_HUB_TEST="1", VISION_HUB_TEST_PASSWORD=secrets.token_hex(12),
                   VISION_HUB_HOMES=str(homes), VISION_HUB_TEST_ADMIN_TOKEN=self.admin_token,
                   VISION_HUB_PORT=str(self.port), VISION_HUB_API_PORT=str(self.api_port),
                   VISION_HUB_PROXY_API_PORT=str(self.proxy_api_port), VISION_HUB_SERVICE_PORT=str(self.service_port),
                   VISION_HUB_ADMINS=",".join(self.admins), VISION_OFFLINE_CACHE="off")
        if self.workers:
            env["VISION_HUB_WORKERS"] = str(self.workers)
        return env

    # --- the hub ------------------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> None:
        jupyterhub = shutil.which("jupyterhub") or "jupyterhub"
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen([jupyterhub, "-f", str(REPO / "jupyterhub_config.py")], cwd=self.folder,
                                            env=self.environment(), stdout=log, stderr=subprocess.STDOUT,
                                            stdin=subprocess.DEVNULL, start_new_session=True)
        self.pids.add(self.process.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"jupyterhub exited ({self.process.returncode}):\n{self.log()[-4000:]}")
            try:
                if (httpx.get(self.public_url + "/hub/api/", timeout=2).status_code == 200
                        and httpx.get(self.service_url + "/v1/models", timeout=2).status_code == 401):
                    self._note_children()
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        raise RuntimeError(f"the hub did not start within {timeout:g} s:\n{self.log()[-4000:]}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def _note_children(self) -> None:
        """Remember the hub's processes (proxy, service, learners' servers and kernels) by id, to stop them."""
        if self.process is None:
            return
        try:
            for child in psutil.Process(self.process.pid).children(recursive=True):
                self.pids.add(child.pid)
        except psutil.NoSuchProcess:
            pass

    def stop(self) -> list[int]:
        """SIGTERM to the hub (it stops the learners' servers, the service and the proxy), then any process of
        ours still alive is killed by its id; returns the ids that had to be killed."""
        self._note_children()
        killed = []
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=90)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        deadline = time.monotonic() + 15
        for pid in sorted(self.pids):
            try:
                proc = psutil.Process(pid)
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except psutil.NoSuchProcess:
                continue
            except psutil.TimeoutExpired:
                proc.kill()
                killed.append(pid)
        return killed

    # --- REST API -------------------------------------------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"token {token or self.admin_token}"}
        return httpx.request(method, self.api_url + path, headers=headers, timeout=60, **kwargs)

    def create_users(self, names: list[str]) -> None:
        answer = self.api("POST", "/users", json={"usernames": names})
        assert answer.status_code in (201, 409), answer.text

    def token_for(self, name: str, note: str = "test") -> str:
        """A new API token of hub user ``name`` (its scopes: the user's own)."""
        answer = self.api("POST", f"/users/{name}/tokens", json={"note": note, "expires_in": 3600})
        assert answer.status_code == 201, answer.text
        return str(answer.json()["token"])

    def spawn(self, names: list[str], timeout: float = 400) -> None:
        """Start each learner's server, then wait until every one is ready."""
        for name in names:
            answer = self.api("POST", f"/users/{name}/server")
            assert answer.status_code in (201, 202), answer.text
        deadline = time.monotonic() + timeout
        waiting = set(names)
        while waiting and time.monotonic() < deadline:
            for name in list(waiting):
                server = self.api("GET", f"/users/{name}").json().get("servers", {}).get("")
                if server and server.get("ready"):
                    waiting.discard(name)
            time.sleep(1)
        self._note_children()
        if waiting:
            raise RuntimeError(f"servers not ready after {timeout:g} s: {sorted(waiting)}\n{self.log()[-4000:]}")

    def server_pid(self, name: str) -> int:
        return int(self.api("GET", f"/users/{name}").json()["servers"][""]["state"]["pid"])

    # --- kernels --------------------------------------------------------------------------------------------

    def start_kernel(self, name: str, path: str = "gpt-vision-course/notebooks") -> str:
        """A new python3 kernel in learner ``name``'s server (through the hub's proxy), its working directory
        ``path`` under their home; returns its id."""
        answer = httpx.post(f"{self.public_url}/user/{name}/api/kernels", json={"name": "python3", "path": path},
                            headers={"Authorization": f"token {self.admin_token}"}, timeout=120)
        assert answer.status_code == 201, answer.text
        self._note_children()
        return str(answer.json()["id"])

    def execute(self, name: str, kernel: str, code: str, timeout: float = 600) -> tuple[str, list[str]]:
        """Run ``code`` in the kernel; ``(stdout and stderr text, error tracebacks)``."""
        import websocket

        url = f"ws://127.0.0.1:{self.port}/user/{name}/api/kernels/{kernel}/channels"
        ws = websocket.create_connection(url, header=[f"Authorization: token {self.admin_token}"], timeout=timeout)
        msg_id = uuid.uuid4().hex
        try:
            ws.send(json.dumps({
                "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test",
                           "session": uuid.uuid4().hex, "version": "5.3", "date": ""},
                "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
                "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                            "allow_stdin": False, "stop_on_error": True}}))
            out: list[str] = []
            errors: list[str] = []
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                message = json.loads(ws.recv())
                if message.get("parent_header", {}).get("msg_id") != msg_id:
                    continue
                kind, content = message["msg_type"], message.get("content", {})
                if kind == "stream":
                    out.append(content["text"])
                elif kind == "error":
                    errors.append("\n".join(content.get("traceback", [])))
                elif kind == "status" and content.get("execution_state") == "idle":
                    return "".join(out), errors
            raise TimeoutError(f"kernel {kernel} of {name} did not finish within {timeout:g} s")
        finally:
            ws.close()

    def session_rss(self, name: str) -> int:
        """Resident memory in bytes of learner ``name``'s server and everything it started (its kernels)."""
        root = psutil.Process(self.server_pid(name))
        total = 0
        for proc in (root, *root.children(recursive=True)):
            with contextlib.suppress(psutil.NoSuchProcess):
                total += proc.memory_info().rss
        return total

    def service_pid(self) -> int:
        for conn in psutil.net_connections("tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == self.service_port:
                return int(conn.pid)
        raise RuntimeError("the course service is not listening")


def load() -> str:
    """The load average now, for reports."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} ({os.cpu_count()} cores)"


if __name__ == "__main__":     # a manual check: start a hub, print its addresses, stop on Enter
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        hub = Hub(Path(tmp))
        hub.start()
        print(hub.public_url, hub.service_url, file=sys.stderr)
        input("Enter stops the hub. ")
        print("killed:", hub.stop())
