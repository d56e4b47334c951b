"""Secrets never reach the repository: no key-shaped strings in any committed file or notebook output,
and `.env` (where learners put their keys) is ignored by git.

One of the source notebooks shipped a live-looking key inside a notebook cell; this test makes that
mistake fail CI instead of reaching a public repository.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# OpenAI keys (sk-..., sk-proj-...), Azure keys (32 hex characters) assigned to something named like a key,
# and bearer tokens written into code.
KEY_PATTERNS = {
    "OpenAI API key": re.compile(r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}"),
    "Azure API key": re.compile(r"(?i)(?:api[-_]?key|subscription[-_]?key)[\"']?\s*[:=]\s*[\"']?[0-9a-f]{32}\b"),
    "Bearer token": re.compile(r"(?i)bearer\s+(?!offline\b)[A-Za-z0-9_\-.]{24,}"),
}


def repository_files() -> list[Path]:
    """Tracked files plus untracked ones git would add (what a commit could contain)."""
    try:
        out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=REPO,
                             capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    return [REPO / line for line in out.splitlines() if (REPO / line).is_file()]


def find_keys(text: str) -> list[str]:
    return [f"{name}: {m.group(0)[:12]}..." for name, rx in KEY_PATTERNS.items() for m in rx.finditer(text)]


def test_patterns_catch_real_key_shapes():
    # The detector itself must work, or the scan below proves nothing.
    assert find_keys('client = OpenAI(api_key="sk-proj-' + "a1B2" * 12 + '")')
    assert find_keys("api-key: " + "0123456789abcdef" * 2)
    assert find_keys("Authorization: Bearer " + "x" * 40)
    assert not find_keys("OPENAI_API_KEY=sk-...  # your key here")
    assert not find_keys('{"Authorization": "Bearer offline"}')


def test_no_key_shaped_strings_in_repository_files():
    leaks = []
    for path in repository_files():
        if path.stat().st_size > 20_000_000 or path.suffix.lower() in {".png", ".jpg", ".jpeg", ".gif", ".webp", ".mp4"}:
            continue
        text = path.read_text(encoding="utf-8", errors="ignore")
        leaks += [f"{path.relative_to(REPO)}: {hit}" for hit in find_keys(text)]
    assert not leaks, "Remove these keys and keep keys in .env:\n" + "\n".join(leaks)


def test_no_key_shaped_strings_in_notebook_outputs():
    leaks = []
    for path in sorted((REPO / "notebooks").glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for i, cell in enumerate(nb.get("cells", [])):
            for output in cell.get("outputs", []):
                text = json.dumps(output)
                leaks += [f"{path.name} cell {i}: {hit}" for hit in find_keys(text)]
    assert not leaks, "\n".join(leaks)


def test_env_file_is_ignored_and_example_is_committed():
    try:
        ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO).returncode == 0
    except OSError:
        pytest.skip("git not available")
    assert ignored, ".env must be listed in .gitignore: it holds the learner's keys"
    assert (REPO / ".env.example").is_file(), ".env.example documents every variable and is committed"
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    assert not find_keys(example)
