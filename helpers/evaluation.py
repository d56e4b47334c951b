"""Evaluate a vision model on the course's labelled images: ask every case, score every answer, keep the raw answers.

The set lives in ``images/eval/labels.json`` (made by ``scripts/make_eval_set.py``): each case has images, a
question, the expected answer, a metric (:mod:`helpers.scoring`) and how its label was made. :func:`run_eval`
sends each case through the configured provider, the same path as every lesson (:mod:`helpers.chat`), with the
``detail`` level and optional system message you choose:

- free-text cases (transcriptions, choices, cases that should be declined, prompt injection) ask a plain question;
- number, box and field cases ask for JSON with ``response_format`` (a strict JSON schema built from the case's
  ``schema``), so the answer is a value to compare, not prose to parse. A reply that does not parse is a wrong
  answer, not a crash; a refusal is kept as the reply.

Every answer is stored with the model, provider, detail, system message, date and token usage as one JSON line
per case in ``evaluations/NAME.jsonl`` (git-ignored), so two runs can be compared later with
:func:`helpers.eval_report.compare`. Offline, the answers come from the backend's local analysis (OCR, colours,
pixel differences), so the scores measure that analysis, not a language model.

>>> from helpers import setup; client, model = setup()                       # doctest: +SKIP
>>> run = run_eval("offline-high", detail="high")                              # doctest: +SKIP
>>> sum(r.correct for r in run.results), len(run.results)                     # doctest: +SKIP

Taught in notebooks/12_evaluation.ipynb.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from helpers.chat import Completion, request_body, send, target_for
from helpers.chat_parts import check_text, image_content, user_message
from helpers.errors import BadRequestError, CourseError, ServiceError
from helpers.local import IMAGES_DIR, REPO_ROOT
from helpers.scoring import METRICS, Score, score
from helpers.structured import response_format
from helpers.tokens import check_detail

__all__ = ["EVAL_LABELS", "EVALUATIONS_DIR", "CaseResult", "EvalCase", "Run", "load_cases", "load_run", "run_eval",
           "save_run"]

EVAL_LABELS = IMAGES_DIR / "eval" / "labels.json"
EVALUATIONS_DIR = REPO_ROOT / "evaluations"
JSON_METRICS = ("number", "iou", "fields")
_TYPES: dict[str, Any] = {"number": float | None, "integer": int | None, "string": str | None,
                          "box": list[float] | None}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,80}$")


@dataclass(frozen=True)
class EvalCase:
    """One labelled case: images (paths relative to ``images/``), the question, the expected answer and its metric."""

    id: str
    task: str
    images: tuple[str, ...]
    prompt: str
    metric: str
    expected: Any
    limitation: str = ""
    label_source: str = ""
    schema: dict[str, str] = field(default_factory=dict)
    options: tuple[str, ...] = ()
    tolerance: dict[str, float] = field(default_factory=dict)
    injected: str | None = None

    def paths(self, root: Path = IMAGES_DIR) -> list[Path]:
        return [root / name for name in self.images]


@dataclass(frozen=True)
class CaseResult:
    """One case's outcome: the raw reply, the value scored, the score, and what the request cost."""

    case: str
    task: str
    metric: str
    limitation: str
    expected: Any
    prompt: str
    reply: str
    answer: Any
    score: float
    correct: bool
    why: str
    prompt_tokens: int | None
    completion_tokens: int | None
    seconds: float
    error: str | None = None


@dataclass
class Run:
    """A whole evaluation: how it was asked, and one :class:`CaseResult` per case."""

    name: str
    model: str
    provider: str
    detail: str
    system: str | None
    date: str
    results: list[CaseResult]

    @property
    def accuracy(self) -> float:
        """The share of cases counted correct."""
        return sum(r.correct for r in self.results) / len(self.results) if self.results else 0.0


def _label_error(problem: str) -> BadRequestError:
    return BadRequestError(problem, code="invalid_label",
                           fix="fix images/eval/labels.json (or re-run python scripts/make_eval_set.py).")


def _case(raw: dict[str, Any], root: Path) -> EvalCase:
    missing = [k for k in ("id", "task", "images", "prompt", "metric", "expected") if k not in raw]
    if missing:
        raise _label_error(f"Case {raw.get('id', '?')!r} lacks {', '.join(missing)}.")
    if raw["metric"] not in METRICS:
        raise _label_error(f"Case {raw['id']!r} has unknown metric {raw['metric']!r} (known: {', '.join(METRICS)}).")
    if raw["metric"] in JSON_METRICS and not raw.get("schema"):
        raise _label_error(f"Case {raw['id']!r} uses {raw['metric']} but has no schema of fields to ask for.")
    unknown = [t for t in (raw.get("schema") or {}).values() if t not in _TYPES]
    if unknown:
        raise _label_error(f"Case {raw['id']!r} has field types {unknown}; use {', '.join(_TYPES)}.")
    case = EvalCase(id=raw["id"], task=raw["task"], images=tuple(raw["images"]), prompt=raw["prompt"],
                    metric=raw["metric"], expected=raw["expected"], limitation=raw.get("limitation", ""),
                    label_source=raw.get("label_source", ""), schema=dict(raw.get("schema") or {}),
                    options=tuple(raw.get("options") or ()), tolerance=dict(raw.get("tolerance") or {}),
                    injected=raw.get("injected"))
    absent = [str(p) for p in case.paths(root) if not p.is_file()]
    if absent:
        raise _label_error(f"Case {case.id!r} names images that do not exist: {absent}.")
    return case


def load_cases(path: str | Path = EVAL_LABELS, *, ids: Iterable[str] | None = None,
               tasks: Iterable[str] | None = None) -> list[EvalCase]:
    """The cases of a labels file (default: the course's set), optionally only some ``ids`` or ``tasks``.

    Image paths in the file are relative to ``images/`` when the file sits in ``images/eval/``, else to the file's
    own folder (a set of your own: ``my_set/labels.json`` beside ``my_set/photo.png``).

    >>> [c.id for c in load_cases(ids=["printed"])]
    ['printed']
    """
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _label_error(f"No labels file at {path}.") from None
    except json.JSONDecodeError as err:
        raise _label_error(f"{path} is not valid JSON ({err.msg}, line {err.lineno}).") from None
    cases = [_case(c, path.parent.parent if path.parent.name == "eval" else path.parent) for c in raw["cases"]]
    if ids is not None:
        wanted = list(ids)
        unknown = sorted(set(wanted) - {c.id for c in cases})
        if unknown:
            raise _label_error(f"No case with id {unknown} in {path.name}.")
        cases = [c for c in cases if c.id in wanted]
    if tasks is not None:
        wanted_tasks = set(tasks)
        cases = [c for c in cases if c.task in wanted_tasks]
    return cases


def _schema_model(case: EvalCase) -> type[BaseModel]:
    fields: dict[str, Any] = {name: (_TYPES[kind], ...) for name, kind in case.schema.items()}
    return create_model("Answer", __config__=ConfigDict(extra="forbid"), **fields)


def _messages(case: EvalCase, text: str, detail: str, cost_model: str | None, system: str | None,
              root: Path) -> list[dict[str, Any]]:
    parts = [image_content(path, detail, cost_model, i)[0] for i, path in enumerate(case.paths(root))]
    messages = [{"role": "system", "content": system}] if system else []
    return [*messages, user_message(text, parts)]


def _ask(case: EvalCase, detail: str, model: str | None, system: str | None, max_tokens: int,
         root: Path) -> tuple[Completion, Any]:
    """Send one case; return the completion and the value to score (reply text, or the JSON field(s))."""
    target = target_for(model)
    body = request_body(target, _messages(case, case.prompt, detail, target.cost_model, system, root), max_tokens)
    if case.metric not in JSON_METRICS:
        completion = send(target, body)
        return completion, completion.reply
    schema = _schema_model(case)
    completion = send(target, {**body, "response_format": response_format(schema)})
    message = completion.response.choices[0].message if completion.response is not None else None
    if getattr(message, "refusal", None):
        return completion, None
    try:
        value = schema.model_validate_json(completion.reply).model_dump()
    except ValidationError:
        return completion, None
    return completion, value if case.metric == "fields" else next(iter(value.values()))


def _result(case: EvalCase, reply: str, answer: Any, outcome: Score, completion: Completion | None,
            seconds: float, error: str | None = None) -> CaseResult:
    return CaseResult(case=case.id, task=case.task, metric=case.metric, limitation=case.limitation,
                      expected=case.expected, prompt=case.prompt, reply=reply, answer=answer, score=round(outcome.score, 4),
                      correct=outcome.correct, why=outcome.detail,
                      prompt_tokens=completion.prompt_tokens if completion else None,
                      completion_tokens=completion.completion_tokens if completion else None,
                      seconds=round(seconds, 3), error=error)


def evaluate_case(case: EvalCase, *, detail: str = "auto", model: str | None = None, system: str | None = None,
                  max_tokens: int = 1500, root: Path = IMAGES_DIR) -> CaseResult:
    """Ask one case and score it. A refusal or a rejected request (400, 5xx after retries) is recorded as the
    reply and scored like any answer; configuration and network errors are raised."""
    start = time.perf_counter()
    try:
        completion, answer = _ask(case, detail, model, system, max_tokens, root)
    except (BadRequestError, ServiceError) as err:
        message = f"{type(err).__name__}: {err.problem}"
        # No answer: wrong for every metric but "abstain" (a blocked request declined) and "not_obeyed".
        outcome = score(case.metric, case.expected, None, options=case.options, tolerance=case.tolerance,
                        injected=case.injected)
        return _result(case, message, None, outcome, None, time.perf_counter() - start, error=message)
    refusal = getattr(completion.response.choices[0].message, "refusal", None) if completion.response else None
    reply = completion.reply or (f"[refusal] {refusal}" if refusal else "")
    if refusal and case.metric in ("abstain", "not_obeyed", "choice", "cer", "exact"):
        answer = reply
    outcome = score(case.metric, case.expected, answer, options=case.options, tolerance=case.tolerance,
                    injected=case.injected)
    return _result(case, reply, answer, outcome, completion, time.perf_counter() - start)


def run_eval(name: str, cases: Sequence[EvalCase] | None = None, *, detail: str = "auto", model: str | None = None,
             system: str | None = None, save: bool = True, directory: str | Path = EVALUATIONS_DIR,
             max_tokens: int = 1500) -> Run:
    """Run ``cases`` (default: the whole course set) with ``model`` (default: the configured one) at ``detail``,
    with ``system`` as a system message if given; save to ``directory/NAME.jsonl`` unless ``save=False``.

    >>> run = run_eval("offline-low", load_cases(ids=["printed"]), detail="low", save=False)   # doctest: +SKIP
    """
    if not isinstance(name, str) or not _NAME.match(name):
        raise BadRequestError(f"Run name {name!r} cannot be a file name.", code="invalid_name",
                              fix="use letters, digits, '.', '_' or '-', e.g. 'gpt-4.1-low'.")
    check_detail(detail)
    if system is not None:
        system = check_text(system, "system")
    cases = list(load_cases() if cases is None else cases)
    target = target_for(model)
    results = [evaluate_case(case, detail=detail, model=model, system=system, max_tokens=max_tokens)
               for case in cases]
    run = Run(name=name, model=target.model, provider=target.settings.provider, detail=detail, system=system,
              date=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), results=results)
    if save:
        save_run(run, directory)
    return run


def save_run(run: Run, directory: str | Path = EVALUATIONS_DIR) -> Path:
    """Write ``run`` as JSON lines (one per case, each with the run's model, provider, detail, system, date)."""
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{run.name}.jsonl"
    head = {"run": run.name, "model": run.model, "provider": run.provider, "detail": run.detail,
            "system": run.system, "date": run.date}
    lines = [json.dumps({**head, **asdict(r)}, ensure_ascii=False) for r in run.results]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def load_run(name_or_path: str | Path, directory: str | Path = EVALUATIONS_DIR) -> Run:
    """Read a run saved by :func:`save_run`, by name (``evaluations/NAME.jsonl``) or path."""
    path = Path(name_or_path)
    if path.suffix != ".jsonl":
        path = Path(directory) / f"{name_or_path}.jsonl"
    try:
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except FileNotFoundError:
        raise CourseError(f"No saved run at {path}.", fix="run run_eval(NAME) first, or check the name.") from None
    if not rows:
        raise CourseError(f"{path} holds no results.", fix="run run_eval again.")
    keys = {f for f in CaseResult.__dataclass_fields__}
    first = rows[0]
    return Run(name=first["run"], model=first["model"], provider=first["provider"], detail=first["detail"],
               system=first.get("system"), date=first["date"],
               results=[CaseResult(**{k: v for k, v in row.items() if k in keys}) for row in rows])
