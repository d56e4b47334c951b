"""A JupyterHub for one class on one server: `jupyterhub -f jupyterhub_config.py` (docs/TEACHING.md section 12).

What it sets up:

- every learner's Jupyter server runs as a local process with this Python (the course's environment: the one
  `pip install -r requirements.txt jupyterhub` was run in), and finds a copy of the course's notebooks in
  `~/gpt-vision-course/notebooks` (copied on first start; the images are linked, not copied);
- one offline backend for the whole hub, run by the hub as the service `vision-course`
  (`python -m helpers.offline --hub`): learners' kernels reach it with their own hub token, with no key to hand out;
  `setup()` finds it from `VISION_HUB_SERVICE_URL`, which this file puts in every learner's environment;
- the roles that let learners' servers use that service (`access:services!service=vision-course`).

Who logs in: by default the hub's PAM authenticator with the machine's own accounts and LocalProcessSpawner (each
learner's server runs as their Unix user; start the hub as root). For a school, use its single sign-on instead,
e.g. `pip install oauthenticator` and `c.JupyterHub.authenticator_class = "generic-oauth"` (or "google",
"azuread"), with `c.Authenticator.allowed_users` or the provider's groups; TEACHING.md section 12 has the lines.
`VISION_HUB_TEST=1` (the CI test, tests/test_jupyterhub.py) switches to JupyterHub's DummyAuthenticator (any name,
one shared password from VISION_HUB_TEST_PASSWORD) and SimpleLocalProcessSpawner (every learner's server runs as
the hub's own user, homes under VISION_HUB_HOMES): for tests only, never for a class.

Environment variables read here (all optional): VISION_HUB_PORT (public port, default 8000), VISION_HUB_API_PORT
(hub's internal API, 8081), VISION_HUB_PROXY_API_PORT (proxy's API, 8001), VISION_HUB_SERVICE_PORT (the course
backend, 8765), VISION_RECORDING (a teacher's recording the backend serves to the class), VISION_HUB_ADMINS
(comma-separated hub admins: they read the backend's GET /status), VISION_HUB_WORKERS (image analyses at once),
VISION_HUB_GROUP (with PAM: the Unix group whose members may log in, default "students").
"""

import os
import shutil
import sys
from pathlib import Path

c = get_config()  # noqa: F821 - JupyterHub's config loader provides get_config

HERE = Path(__file__).resolve().parent
SERVICE = "vision-course"
TEST = os.environ.get("VISION_HUB_TEST", "").strip().lower() in ("1", "true", "yes", "on")


def port(name, default):
    return int(os.environ.get(name, "").strip() or default)


SERVICE_URL = f"http://127.0.0.1:{port('VISION_HUB_SERVICE_PORT', 8765)}"

# --- the hub and its proxy (configurable-http-proxy from npm, started by the hub) ------------------------------
c.JupyterHub.bind_url = f"http://{'127.0.0.1' if TEST else ''}:{port('VISION_HUB_PORT', 8000)}"
c.JupyterHub.hub_port = port("VISION_HUB_API_PORT", 8081)
c.ConfigurableHTTPProxy.api_url = f"http://127.0.0.1:{port('VISION_HUB_PROXY_API_PORT', 8001)}"

# --- learners' servers: the course's Python, a copy of the course per learner ---------------------------------
c.Spawner.cmd = [sys.executable, "-m", "jupyterhub.singleuser"]
c.Spawner.default_url = "/lab/tree/gpt-vision-course/notebooks/00_setup.ipynb"
c.Spawner.notebook_dir = "~"
c.Spawner.start_timeout = 180          # a loaded 2-core machine starts 30 servers slowly
c.Spawner.http_timeout = 120
# PYTHONPATH: a checkout used without installing helpers (CI); the rest is what a Python needs to run.
c.Spawner.env_keep = ["PATH", "PYTHONPATH", "LANG", "LC_ALL", "JUPYTERHUB_SINGLEUSER_APP"]
c.Spawner.environment = {"VISION_HUB_SERVICE_URL": SERVICE_URL}
# The learner's server's token (JUPYTERHUB_API_TOKEN) may use the course backend; with the "user" role below.
c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                 f"access:services!service={SERVICE}"]


def copy_course(spawner):
    """Before a learner's server starts: their own copy of the notebooks in ~/gpt-vision-course (kept across
    restarts: their work is never overwritten), with the course's images linked from this checkout."""
    import pwd

    if TEST:
        home = Path(spawner.home_dir)
        owner = None
    else:
        entry = pwd.getpwnam(spawner.user.name)
        home, owner = Path(entry.pw_dir), (entry.pw_uid, entry.pw_gid)
    course = home / "gpt-vision-course"
    made = []
    if not (course / "notebooks").exists():
        course.mkdir(parents=True, exist_ok=True)
        shutil.copytree(HERE / "notebooks", course / "notebooks")
        made.append(course)
    for shared in ("images", "recordings"):
        link = course / shared
        if not link.exists() and (HERE / shared).exists():
            link.symlink_to(HERE / shared)
    if owner is not None:
        for folder in made:
            for path in (folder, *folder.rglob("*")):
                if not path.is_symlink():
                    os.chown(path, *owner)


c.Spawner.pre_spawn_hook = copy_course

if TEST:
    from jupyterhub.auth import DummyAuthenticator

    c.JupyterHub.authenticator_class = DummyAuthenticator
    c.DummyAuthenticator.password = os.environ["VISION_HUB_TEST_PASSWORD"]
    c.Authenticator.allow_all = True
    c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
    c.SimpleLocalProcessSpawner.home_dir_template = os.environ["VISION_HUB_HOMES"] + "/{username}"
    if os.geteuid() == 0:      # a CI container runs as root; SimpleLocalProcessSpawner then runs servers as root
        c.Spawner.args = ["--allow-root"]
else:
    c.JupyterHub.spawner_class = "jupyterhub.spawner.LocalProcessSpawner"
    # PAM (the default authenticator): the machine's accounts, those in the Unix group VISION_HUB_GROUP (default
    # "students": `sudo groupadd students; sudo useradd -m -G students ann`) and the admins. Replace with your
    # school's sign-on (see above).
    c.PAMAuthenticator.allowed_groups = {os.environ.get("VISION_HUB_GROUP", "").strip() or "students"}

c.Authenticator.admin_users = {name.strip() for name in os.environ.get("VISION_HUB_ADMINS", "").split(",")
                               if name.strip()}

# --- the course backend, one for the hub (helpers/offline/hub.py) ----------------------------------------------
service_env = {key: os.environ[key] for key in ("PATH", "PYTHONPATH", "LANG", "HOME", "VISION_OFFLINE_CACHE",
                                                "XDG_CACHE_HOME") if key in os.environ}
service_env["VISION_HUB_SERVICE_URL"] = SERVICE_URL
if os.environ.get("VISION_RECORDING"):
    service_env["VISION_RECORDING"] = str(Path(os.environ["VISION_RECORDING"]).resolve())
command = [sys.executable, "-m", "helpers.offline", "--hub"]
if os.environ.get("VISION_HUB_WORKERS"):
    command += ["--workers", os.environ["VISION_HUB_WORKERS"]]
c.JupyterHub.services = [{"name": SERVICE, "url": SERVICE_URL, "command": command, "cwd": str(HERE),
                          "environment": service_env, "display": False}]

# Learners (the "user" role every hub user has) may use the course backend; the service itself needs no scope:
# it asks the hub "who is this" with the learner's own token (GET /hub/api/user), which every token may ask.
c.JupyterHub.load_roles = [
    {"name": "user", "scopes": ["self", f"access:services!service={SERVICE}"]},
]
if TEST and os.environ.get("VISION_HUB_TEST_ADMIN_TOKEN"):
    # The CI test's own admin client: a service with a token it chose and the admin role (create users, start
    # their servers, read their tokens' owners).
    c.JupyterHub.services.append({"name": "ci-admin", "api_token": os.environ["VISION_HUB_TEST_ADMIN_TOKEN"]})
    c.JupyterHub.load_roles.append({"name": "ci-admin", "scopes": ["admin:users", "admin:servers", "tokens",
                                                                   "access:servers", "list:users", "read:users"],
                                    "services": ["ci-admin"]})
