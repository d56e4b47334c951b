"""The public checks of a homework notebook without otter-grader: ``grader.check("q1")`` after ``requirements.txt``.

otter-grader is a teacher tool (``requirements-teacher.txt``: heavy, and its docutils pin conflicts with other
tools), so a learner who installed only ``requirements.txt`` does not have it. Every student notebook starts with::

    try:
        import otter
    except ModuleNotFoundError:  # otter-grader is a teacher tool: homework_checks.py runs the same public checks
        import homework_checks as otter
    grader = otter.Notebook("hw01_images_base64.ipynb")

``homework/build.py`` copies this file next to the notebooks as ``homework_checks.py``. It runs the same public
tests, the way otter does: ``otter assign`` stores them (Python source) in the notebook's metadata
(``metadata.otter.tests``); each ``test_...`` function is called with the notebook's variables named by its
parameters, and passes when it returns without raising. A failure prints the test's message (the public checks
say what was expected and what came back), or the failing line when the assertion has none. The hidden tests are
not in the notebook: they run when the teacher grades.
"""

from __future__ import annotations

import json
import linecache
import re
import sys
import traceback
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["CheckResult", "Notebook"]


@dataclass
class CheckResult:
    """What ``grader.check`` returns: shown as the cell's output."""

    question: str
    tests: list[str] = field(default_factory=list)
    failures: dict[str, str] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.failures

    def __repr__(self) -> str:
        if self.passed:
            return f"{self.question} results: All test cases passed!"
        lines = [f"{self.question} results: {len(self.failures)} of {len(self.tests)} public checks failed"]
        lines += [f"    ❌ {name}: {why}" for name, why in self.failures.items()]
        return "\n".join(lines)


def _tests_in(path: Path) -> dict[str, str] | None:
    try:
        meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {}).get("otter", {})
    except (OSError, ValueError):
        return None
    return meta.get("tests") or None


def _why(exc: BaseException, filename: str) -> str:
    """The assertion's own message, else the test line that failed (a bare ``assert`` says nothing by itself)."""
    message = str(exc).strip()
    if message:
        return message if isinstance(exc, AssertionError) else f"{type(exc).__name__}: {message}"
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename == filename]
    line = frames[-1].line if frames else ""
    return f"{type(exc).__name__} at `{line}`" if line else type(exc).__name__


class Notebook:
    """``otter.Notebook``'s ``check`` for the public tests stored in the notebook (no otter needed)."""

    def __init__(self, nb_path: str | None = None, tests_dir: str = "./tests") -> None:
        self._nb_path = nb_path
        self._tests: dict[str, str] | None = None

    def _find_tests(self) -> dict[str, str]:
        if self._tests is not None:
            return self._tests
        name = Path(self._nb_path or "").stem
        candidates = [Path(self._nb_path)] if self._nb_path else []
        # A renamed copy (alice_hw01.ipynb): any notebook here that otter assign made for this assignment.
        candidates += sorted(Path.cwd().glob("*.ipynb"))
        for path in candidates:
            if not path.is_file():
                continue
            if path.name != Path(self._nb_path or "").name:
                try:
                    assignment = json.loads(path.read_text(encoding="utf-8"))["metadata"]["otter"]["assignment_name"]
                except (OSError, ValueError, KeyError, TypeError):
                    continue
                if assignment != name:
                    continue
            tests = _tests_in(path)
            if tests:
                self._tests = tests
                return tests
        raise FileNotFoundError(
            f"the public checks live in the notebook {self._nb_path!r}, which is not in {Path.cwd()}: open the "
            "homework notebook from its own folder (or install otter-grader: pip install -r requirements-teacher.txt)")

    def check(self, question: str, global_env: dict | None = None) -> CheckResult:
        """Run the public tests of ``question`` against the notebook's variables (the caller's globals)."""
        tests = self._find_tests()
        if question not in tests:
            raise ValueError(f"no public checks for {question!r}; this notebook has {', '.join(sorted(tests))}")
        env = global_env if global_env is not None else sys._getframe(1).f_globals
        found: list = []

        def test_case(points=None, hidden=False, success_message=None, failure_message=None):
            def register(function):
                found.append(function)
                return function
            return register

        filename = f"<public checks {question}>"
        source = re.sub(r"^from otter\.test_files import test_case$", "", tests[question], flags=re.M)
        linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
        exec(compile(source, filename, "exec"), {"test_case": test_case, "__name__": filename})
        result = CheckResult(question, [f.__name__ for f in found])
        for function in found:
            names = function.__code__.co_varnames[:function.__code__.co_argcount]
            missing = [n for n in names if n not in env]
            if missing:
                result.failures[function.__name__] = (f"{', '.join(missing)} is not defined: run the cells above "
                                                      "this one first")
                continue
            try:
                function(**{n: env[n] for n in names})
            except Exception as exc:  # a check reports every error as a failure, like otter
                result.failures[function.__name__] = _why(exc, filename)
        return result
