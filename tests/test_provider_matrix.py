"""Every notebook runs against a remote provider, as a learner with a key would run it (issue 9).

The course's own server (``python -m helpers.offline``) plays the remote service in a separate process; every
notebook is executed once as ``compatible`` (``OPENAI_BASE_URL`` and a key, nothing else) and once as Azure (the
four ``AZURE_OPENAI_*`` variables, deployment ``my-vision``, which is not a model name). Outputs differ by
provider and are not compared; error cells are. See ``scripts/provider_matrix.py``.

Slow (several minutes), so the tests that execute notebooks are marked ``providers`` and left out of plain
``pytest`` (``-m 'not providers'`` in pyproject.toml). Run them with::

    pytest -m providers tests/test_provider_matrix.py
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from typing import Any

import pytest

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "provider_matrix.py"


def _load_script() -> Any:
    spec = importlib.util.spec_from_file_location("provider_matrix", _SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("provider_matrix", module)
    spec.loader.exec_module(module)
    return module


matrix = _load_script()
CONFIGURATIONS = list(matrix.CONFIGURATIONS)


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    """Both configurations, every notebook, two at a time (one run shared by the tests below)."""
    result = matrix.run_matrix(CONFIGURATIONS, workers=2, log=None)
    print(matrix.format_report(result))
    return result


def _results(report: dict[str, Any], configuration: str) -> list[dict[str, Any]]:
    found = [r for r in report["results"] if r["configuration"] == configuration]
    assert found, f"no notebook was executed for {configuration}"
    return found


@pytest.mark.providers
@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_every_notebook_runs_without_error_cells(report: dict[str, Any], configuration: str) -> None:
    problems = []
    for r in _results(report, configuration):
        problems += [f"{r['notebook']} cell {c['index']}: {c['ename']}: {c['evalue']}" for c in r["error_cells"]]
        problems += [f"{r['notebook']} cell {c['index']} (traceback on stderr): {c['ename']}: {c['evalue']}"
                     for c in r["stderr_tracebacks"]]
        if r["failure"]:
            problems.append(f"{r['notebook']} did not finish: {r['failure']}")
    total = report["configurations"][configuration]
    server = [f"{r['notebook']}: the stand-in server raised {count}x {line}"
              for r in _results(report, configuration) for line, count in r["server_exceptions"].items()]
    assert not problems, (f"{configuration}: {total['error_cells']} error cells in {total['notebooks_with_errors']} "
                          f"notebooks ({total['description']}):\n  " + "\n  ".join(problems + server))


@pytest.mark.providers
@pytest.mark.parametrize("configuration", CONFIGURATIONS)
def test_the_key_never_appears_in_an_output(report: dict[str, Any], configuration: str) -> None:
    leaks = [f"{r['notebook']} cells {r['leaked_key_cells']}" for r in _results(report, configuration)
             if r["leaked_key_cells"]]
    assert not leaks, f"{configuration}: the API key appears in the outputs of " + "; ".join(leaks)


@pytest.mark.providers
def test_every_notebook_reaches_the_remote_service(report: dict[str, Any]) -> None:
    """Not one silent fallback to an offline server of the kernel's own: each notebook calls the remote.

    One exception, by design: notebook 07 is about Azure, so with another provider its requests go to the
    course's Azure simulator (it says so in its output), and with Azure to the learner's deployment.
    """
    silent = [f"{r['configuration']}:{r['notebook']}" for r in report["results"]
              if r["requests"] is not None and r["requests"] == 0
              and not (r["notebook"].startswith("07") and r["configuration"] != "azure")]
    if all(r["requests"] is None for r in report["results"]):
        pytest.skip("the stand-in server does not log requests (no --verbose)")
    assert not silent, "these notebooks sent no request to the configured provider: " + ", ".join(silent)


@pytest.mark.providers
def test_azure_notebook_07_uses_the_learners_deployment(report: dict[str, Any]) -> None:
    [azure07] = [r for r in _results(report, "azure") if r["notebook"].startswith("07")]
    if azure07["requests"] is None:
        pytest.skip("the stand-in server does not log requests (no --verbose)")
    assert azure07["deployments"].get(matrix.AZURE_DEPLOYMENT, 0) >= 1, (
        f"notebook 07 sent no request to the configured deployment {matrix.AZURE_DEPLOYMENT!r}; "
        f"requests the remote service saw: {azure07['request_paths'] or 'none'}")


def test_the_kernel_environment_is_clean() -> None:
    """Nothing of the test session's own set-up (VISION_PROVIDER=offline, ...) reaches the kernels."""
    inherited = {"VISION_PROVIDER": "offline", "VISION_MODEL": "gpt-4o", "OPENAI_API_KEY": "sk-parent",
                 "COURSE_IMAGES_BASE_URL": "http://x", "AZURE_OPENAI_DEPLOYMENT": "x", "OPENAI_ORG_ID": "org",
                 "VISION_OFFLINE_DOWNLOADS": "off", "PATH": "/bin"}
    for name, build in matrix.CONFIGURATIONS.items():
        configuration = build("http://127.0.0.1:9")
        env = matrix.kernel_environment(configuration, base=inherited)
        course = {k for k in env if k.startswith(matrix.COURSE_PREFIXES)}
        assert course == set(configuration.variables) | {"VISION_DOTENV", "VISION_CATALOG_DATE"}, name
        assert env["VISION_DOTENV"] == "off" and env["PATH"] == "/bin"
        for secret in configuration.secrets:
            assert secret not in repr(matrix.mask(secret)) and matrix.mask(secret).endswith(secret[-4:])
