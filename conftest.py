"""Test-session set-up shared by the unit tests and the nbval notebook runs.

`pytest` must pass on a fresh machine with no key and no network, and must never spend a tester's money:
whatever `.env` or the shell says, the tests and the re-executed notebooks talk to the offline backend.
Notebook kernels are child processes, so they inherit this environment.
"""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile

_SECRETS_AND_ENDPOINTS = (
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "OPENAI_ORG_ID",
    "OPENAI_PROJECT_ID",
    "AZURE_OPENAI_ENDPOINT",
    "AZURE_OPENAI_API_KEY",
    "AZURE_OPENAI_DEPLOYMENT",
    "AZURE_OPENAI_API_VERSION",
    "COURSE_IMAGES_BASE_URL",
    "VISION_MODEL",
    "VISION_OFFLINE_FAULT",
    "VISION_RECORDING",
    "VISION_HUB_SERVICE_URL",     # inside a JupyterHub session: the class's backend (tests use their own)
)
for _name in _SECRETS_AND_ENDPOINTS:
    os.environ.pop(_name, None)
os.environ["VISION_PROVIDER"] = "offline"
# ...and a learner's .env (VISION_MODEL, keys) must not change what the notebooks print.
os.environ["VISION_DOTENV"] = "off"
# Retirement checks compare with the date the course's facts were checked, not the calendar, so a model
# shut down next month does not change what the stored notebooks print (helpers.models.today).
os.environ["VISION_CATALOG_DATE"] = "2026-12-07"
# The offline backend never fetches images from the internet during tests, so the hot-link lesson
# (notebooks/01_image_urls.ipynb) stores the same download error whether or not the machine is online.
os.environ["VISION_OFFLINE_DOWNLOADS"] = "off"
# Identical OCR numbers on every run: one intra-op thread per ONNX session.
os.environ.setdefault("OMP_NUM_THREADS", "1")
# Analyses kept on disk (helpers.offline.stored) are shared by this run's notebook kernels, never taken from an
# earlier run: a fresh folder per test session (xdist workers and kernels inherit it from the controller).
if "VISION_OFFLINE_CACHE" not in os.environ:
    os.environ["VISION_OFFLINE_CACHE"] = tempfile.mkdtemp(prefix="gpt-vision-course-analysis-")
    atexit.register(shutil.rmtree, os.environ["VISION_OFFLINE_CACHE"], ignore_errors=True)

# matplotlib builds its font cache the first time it is imported on a machine and, when that takes more than 5 s (a
# fresh machine under load), logs "Matplotlib is building the font cache; this may take a moment." to the stderr of
# whichever notebook kernel got there first; nbval then reports an output the stored notebook does not have (seen in
# CI on lesson 04, 2026-12-07). Build the cache here, once, in the pytest process, before any kernel starts.
import matplotlib.font_manager  # noqa: E402,F401
