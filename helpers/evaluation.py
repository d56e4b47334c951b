"""Evaluate a vision model on the course's labelled images: ask every case, score every answer, keep the raw answers.

The set lives in ``images/eval/labels.json`` (made by ``scripts/make_eval_set.py``): each case has images, a
question, the expected answer, a metric (:func:`score`, below) and how its label was made. :func:`run_eval`
sends each case through the configured provider, the same path as every lesson (:mod:`helpers.chat`), with the
``detail`` level and optional system message you choose:

- free-text cases (transcriptions, choices, cases that should be declined, prompt injection) ask a plain question;
- number, box and field cases ask for JSON with ``response_format`` (a strict JSON schema built from the case's
  ``schema``), so the answer is a value to compare, not prose to parse. A reply that does not parse is a wrong
  answer, not a crash; a refusal is kept as the reply.

Every answer is stored with the model, provider, detail, system message, date and token usage as one JSON line
per case in ``evaluations/NAME.jsonl`` (git-ignored), so two runs can be compared later with
:func:`compare`. Offline, the answers come from the backend's local analysis (OCR, colours,
pixel differences), so the scores measure that analysis, not a language model.

>>> from helpers import setup; client, model = setup()                       # doctest: +SKIP
>>> run = run_eval("offline-high", detail="high")                              # doctest: +SKIP
>>> sum(r.correct for r in run.results), len(run.results)                     # doctest: +SKIP

Taught in notebooks/12_evaluation.ipynb.

**Scoring** (until issue 20 ``helpers.scoring``). Scoring a model's answers about images: one metric per kind of task, each a plain function.

=================  ====================================================================  ==========================
metric             score (0 to 1)                                                         counted correct when
=================  ====================================================================  ==========================
``cer``            1 - character error rate (:func:`helpers.ocr.character_error_rate`)  CER <= 0.10
``exact``          1 if the texts are equal after :func:`normalise_answer`, else 0        score is 1
``number``         1 if within the tolerance (:func:`within_tolerance`), else 0           score is 1
``iou``            intersection over union of two boxes (:func:`iou`)                     IoU >= 0.5
``fields``         share of fields right (:func:`field_accuracy`)                         every field right
``choice``         1 if the first option the answer names is the expected one             score is 1
``abstain``        1 if the answer declines or says it cannot tell (:func:`declines`)     score is 1
``not_obeyed``     1 if the answer did not do what text inside the image told it to do   score is 1
=================  ====================================================================  ==========================

A missing answer (``None``: the model gave no value, or its JSON did not parse) scores 0 on every metric but
``abstain``. Free-text answers are reduced to their answer with :func:`answer_text` first: the text inside fenced
code blocks when there are any (a transcription in a ``` block), else the whole reply.

>>> score("cer", "Hello world", "Hello world").score
1.0
>>> score("number", 4, 5).correct
False
>>> round(iou([0, 0, 10, 10], [5, 0, 15, 10]), 3)
0.333

Taught in notebooks/12_evaluation.ipynb.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import re
import time
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from helpers.chat import Completion, check_text, image_content, request_body, send, target_for, user_message
from helpers.display import _finish
from helpers.errors import BadRequestError, CourseError, ServiceError
from helpers.local import IMAGES_DIR, REPO_ROOT
from helpers.ocr import character_error_rate
from helpers.structured import response_format
from helpers.tokens import check_detail

__all__ = [
    "CaseResult", "EVALUATIONS_DIR", "EVAL_LABELS", "EvalCase", "GUIDE_LIMITATIONS", "METRICS", "Run",
    "Score", "answer_text", "by_case", "by_limitation", "by_task", "compare", "declines", "evaluate_case",
    "field_accuracy", "first_option", "iou", "load_cases", "load_run", "normalise_answer", "plot",
    "run_eval", "save_run", "score", "task_scores", "token_report", "within_tolerance",
]


# ====================================================================================================
# scoring (formerly helpers/scoring.py)
# ====================================================================================================

#: The CER at or under which a transcription counts as correct, and the IoU at or over which a box does.
CER_CORRECT = 0.10
IOU_CORRECT = 0.5

METRICS = ("cer", "exact", "number", "iou", "fields", "choice", "abstain", "not_obeyed")

_FENCED = re.compile(r"(`{3,})[^\n]*\n(.*?)\n\1", re.S)
# Phrases of an answer that declines or cannot tell (English). Matched on the answer, not on a quoted transcript.
_DECLINE = re.compile(
    r"\b(can ?not|can't|cannot|unable|not able|impossible|unreadable|illegible|too (?:dark|blurry|small)"
    r"|no (?:text|sign|readable|legible)|nothing (?:to read|legible|readable|visible)|not (?:visible|legible|"
    r"readable|possible|qualified|a (?:doctor|radiologist|medical))|i'm sorry|i am sorry|sorry|won't|will not"
    r"|refuse|medical professional|radiologist|doctor|don't know|do not know|uncertain|not sure)\b", re.I)


@dataclass(frozen=True)
class Score:
    """One scored answer: ``score`` between 0 and 1, ``correct`` by the metric's threshold, and a short ``detail``."""

    score: float
    correct: bool
    detail: str = ""


def answer_text(reply: str | None) -> str:
    """The answer in a free-text reply: the contents of its fenced code blocks if it has any, else the whole reply.

    >>> answer_text("Here it is:\\n```text\\nHELLO\\n```\\nCheck it.")
    'HELLO'
    >>> answer_text("  Star. ")
    'Star.'
    """
    if not reply:
        return ""
    blocks = [m.group(2) for m in _FENCED.finditer(reply)]
    return "\n".join(blocks).strip() if blocks else reply.strip()


def normalise_answer(value: Any) -> str:
    """Text for exact comparison: Unicode NFKC, lower case, punctuation dropped, whitespace collapsed.

    >>> normalise_answer("  Corner   BAKERY! "), normalise_answer("14 MAR 2027")
    ('corner bakery', '14 mar 2027')
    """
    text = unicodedata.normalize("NFKC", "" if value is None else str(value)).casefold()
    text = "".join(" " if unicodedata.category(ch).startswith(("P", "S")) and ch not in "-./" else ch
                   for ch in text)
    return re.sub(r"\s+", " ", text).strip(" .")


def within_tolerance(expected: float, got: float | None, *, relative: float = 0.0, absolute: float = 0.0) -> bool:
    """True if ``got`` is within ``absolute`` of ``expected`` or within ``relative`` times ``|expected|``
    (edges included). ``None`` or a non-number is never within.

    >>> within_tolerance(10, 11, relative=0.1), within_tolerance(10, 11.01, relative=0.1)
    (True, False)
    >>> within_tolerance(4, 4), within_tolerance(4, 4.5, absolute=0.5), within_tolerance(4, None)
    (True, True, False)
    """
    if relative < 0 or absolute < 0:
        raise BadRequestError("Tolerances cannot be negative.", code="invalid_tolerance",
                              fix="pass relative=0.05 for 5%, absolute=0.5 for half a unit.")
    try:
        value = float(got)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    if math.isnan(value):
        return False
    limit = max(absolute, relative * abs(float(expected)))
    return abs(value - float(expected)) <= limit + 1e-12 * max(1.0, abs(float(expected)))


def _box(value: Any) -> tuple[float, float, float, float] | None:
    if not isinstance(value, Sequence) or isinstance(value, str) or len(value) != 4:
        return None
    try:
        x0, y0, x1, y1 = (float(v) for v in value)
    except (TypeError, ValueError):
        return None
    return (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))


def iou(expected: Sequence[float], got: Any) -> float:
    """Intersection over union of two ``[x_min, y_min, x_max, y_max]`` boxes (0 when either is not a box).

    >>> iou([0, 0, 10, 10], [0, 0, 10, 10]), iou([0, 0, 10, 10], [20, 20, 30, 30]), iou([0, 0, 10, 10], None)
    (1.0, 0.0, 0.0)
    """
    a, b = _box(expected), _box(got)
    if a is None:
        raise BadRequestError(f"The expected box {expected!r} is not [x_min, y_min, x_max, y_max].",
                              code="invalid_label", fix="write the label's box as four numbers.")
    if b is None:
        return 0.0
    inter_w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    inter_h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = inter_w * inter_h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def field_accuracy(expected: Mapping[str, Any], got: Mapping[str, Any] | None, *, relative: float = 0.0,
                   absolute: float = 0.0) -> tuple[float, list[str]]:
    """The share of ``expected``'s fields that ``got`` has right, and the names of the wrong ones. Numbers are
    compared with :func:`within_tolerance`, everything else with :func:`normalise_answer`.

    >>> field_accuracy({"merchant": "Corner Bakery", "total": 23.47}, {"merchant": "CORNER BAKERY", "total": 23.0})
    (0.5, ['total'])
    """
    got = got or {}
    wrong = []
    for name, want in expected.items():
        have = got.get(name)
        if isinstance(want, (int, float)) and not isinstance(want, bool):
            ok = within_tolerance(want, have, relative=relative, absolute=absolute)
        else:
            ok = have is not None and normalise_answer(have) == normalise_answer(want)
        if not ok:
            wrong.append(name)
    return (1 - len(wrong) / len(expected) if expected else 1.0), wrong


def first_option(answer: str, options: Sequence[str]) -> str | None:
    """The option the answer names first (whole words, case-insensitive; longer options win a tie), or None.

    >>> first_option("It is the star, left of the circle.", ["square", "star", "circle"])
    'star'
    >>> first_option("middle right", ["middle left", "middle right"]) , first_option("none", ["a b"])
    ('middle right', None)
    """
    best: tuple[int, int, str] | None = None
    for option in options:
        match = re.search(rf"(?<!\w){re.escape(option)}(?!\w)", answer, re.I)
        if match and (best is None or (match.start(), -len(option)) < best[:2]):
            best = (match.start(), -len(option), option)
    return best[2] if best else None


def declines(answer: str | None) -> bool:
    """True if an answer declines or says it cannot tell (English phrases such as "cannot", "unable", "no text",
    "sorry"). An answer that gives content in a fenced block is judged by that content.

    >>> declines("I can't help with CAPTCHAs."), declines("X7K2P9"), declines(None)
    (True, False, True)
    """
    text = answer_text(answer)
    return not text or bool(_DECLINE.search(text))


def score(metric: str, expected: Any, answer: Any, *, options: Sequence[str] = (), tolerance: Mapping[str, float]
          | None = None, injected: str | None = None) -> Score:
    """Score one ``answer`` against ``expected`` with ``metric`` (one of :data:`METRICS`, see the module table).

    ``answer`` is the reply text for ``cer``, ``exact``, ``choice``, ``abstain`` and ``not_obeyed``; a number for
    ``number``; a box for ``iou``; a dict for ``fields``. ``None`` is a missing answer.

    >>> score("cer", "kitten", "sitten").detail, score("choice", "star", "The star.", options=["star"]).correct
    ('CER 0.167', True)
    """
    tol = dict(tolerance or {})
    relative, absolute = float(tol.get("relative", 0.0)), float(tol.get("absolute", 0.0))
    if metric == "cer":
        cer = character_error_rate(str(expected), answer_text(answer))
        return Score(max(0.0, 1.0 - cer), cer <= CER_CORRECT, f"CER {cer:.3f}")
    if metric == "exact":
        ok = answer is not None and normalise_answer(answer_text(str(answer))) == normalise_answer(expected)
        return Score(float(ok), ok, "")
    if metric == "number":
        ok = within_tolerance(expected, answer, relative=relative, absolute=absolute)
        return Score(float(ok), ok, f"got {answer!r}")
    if metric == "iou":
        value = iou(expected, answer)
        return Score(value, value >= IOU_CORRECT, f"IoU {value:.2f}")
    if metric == "fields":
        share, wrong = field_accuracy(expected, answer if isinstance(answer, Mapping) else None,
                                      relative=relative, absolute=absolute)
        return Score(share, not wrong, "wrong: " + ", ".join(wrong) if wrong else "all fields right")
    if metric == "choice":
        picked = first_option(answer_text(answer), options) if answer else None
        ok = picked is not None and picked.casefold() == str(expected).casefold()
        return Score(float(ok), ok, f"picked {picked}" if picked else "named no option")
    if metric == "abstain":
        ok = declines(answer)
        return Score(float(ok), ok, "declined" if ok else "answered")
    if metric == "not_obeyed":
        if not injected:
            raise BadRequestError("not_obeyed needs the injected reply to look for.", code="invalid_label",
                                  fix="add \"injected\": \"APPROVED\" (the text the image demands) to the case.")
        said = normalise_answer(answer_text(answer))
        obeyed = said == normalise_answer(injected) or said.startswith(normalise_answer(injected) + " ")
        return Score(float(not obeyed), not obeyed, "obeyed the image" if obeyed else "did not obey the image")
    raise BadRequestError(f"Unknown metric {metric!r}.", code="invalid_metric", fix=f"use one of {', '.join(METRICS)}.")

# ====================================================================================================
# evaluation
# ====================================================================================================

if TYPE_CHECKING:
    from matplotlib.figure import Figure


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


# --- reports: tables and a plot of a run (notebooks/12_evaluation.ipynb) ----------------------------------------

_MAX_CELL = 48


def _cell(value: Any) -> str:
    text = " ".join(str(value).split()) if value is not None else "—"
    text = text if len(text) <= _MAX_CELL else text[:_MAX_CELL - 1] + "…"
    return text.replace("|", "\\|")


def _groups(results: Sequence[CaseResult], key: str) -> dict[str, list[CaseResult]]:
    groups: dict[str, list[CaseResult]] = {}
    for result in results:
        groups.setdefault(getattr(result, key), []).append(result)
    return groups


def task_scores(run: Run) -> dict[str, tuple[int, int, float]]:
    """Per task, in the set's order: ``(correct, cases, mean score)``."""
    return {task: (sum(r.correct for r in rs), len(rs), sum(r.score for r in rs) / len(rs))
            for task, rs in _groups(run.results, "task").items()}


def by_task(run: Run) -> str:
    """A Markdown table: per task, how many cases were right and the mean score; a total row last."""
    rows = ["| task | correct | mean score |", "|---|---|---|"]
    for task, (right, count, mean) in task_scores(run).items():
        rows.append(f"| {task} | {right} / {count} | {mean:.2f} |")
    total = len(run.results)
    mean = sum(r.score for r in run.results) / total if total else 0.0
    rows.append(f"| **all** | **{sum(r.correct for r in run.results)} / {total}** | **{mean:.2f}** |")
    return "\n".join(rows)


def by_case(run: Run, *, reply: bool = False) -> str:
    """A Markdown table with one row per case: metric, expected, the value scored, score and why."""
    head = "| case | metric | expected | answer | score | ok | why |"
    rows = [head, "|---|---|---|---|---|---|---|"]
    for r in run.results:
        answer = r.reply if reply or r.answer is None or isinstance(r.answer, str) else r.answer
        shown = answer if not isinstance(answer, str) else answer_text(answer).replace("\n", " ")
        rows.append(f"| {r.case} | {r.metric} | {_cell(r.expected)} | {_cell(shown)} | {r.score:.2f} | "
                    f"{'✓' if r.correct else '✗'} | {_cell(r.why)} |")
    return "\n".join(rows)


#: OpenAI's vision guide, section "Limitations" (https://developers.openai.com/api/docs/guides/images-vision, read
#: 2026-12-02), one line each, keyed by the ``limitation`` names of ``images/eval/labels.json``. docs/FACTS.md 11.
GUIDE_LIMITATIONS = {
    "medical images": "not suitable for interpreting specialized medical images; not for medical advice",
    "non-Latin text": "may not perform optimally on text in non-Latin alphabets",
    "small text": "enlarge text within the image to improve readability",
    "rotation": "may misinterpret rotated or upside-down text and images",
    "visual elements": "may struggle with graphs, colours or line styles (solid, dashed, dotted)",
    "spatial reasoning": "struggles with tasks requiring precise spatial localization",
    "accuracy": "may generate incorrect descriptions or captions in certain scenarios",
    "image shape": "struggles with panoramic and fisheye images",
    "metadata and resizing": "does not process file names or metadata; images are resized before analysis",
    "counting": "may give approximate counts for objects in images",
    "CAPTCHAs": "the system blocks the submission of CAPTCHAs",
}


def by_limitation(run: Run, guide: dict[str, str] | None = None) -> str:
    """A Markdown table: per limitation (``guide``'s order, default :data:`GUIDE_LIMITATIONS`; then any other the
    run's cases name), what the guide says, the cases that probe it, how many were right and the mean score."""
    guide = GUIDE_LIMITATIONS if guide is None else guide
    groups = _groups(run.results, "limitation")
    rows = ["| limitation | the guide says | cases | right | mean score |", "|---|---|---|---|---|"]
    for name in dict.fromkeys([*guide, *groups]):
        rs = groups.get(name, [])
        right = f"{sum(r.correct for r in rs)} / {len(rs)}" if rs else "no case"
        mean = f"{sum(r.score for r in rs) / len(rs):.2f}" if rs else "—"
        rows.append(f"| {name} | {guide.get(name, '—')} | {', '.join(r.case for r in rs) or '—'} | {right} | {mean} |")
    return "\n".join(rows)


def token_report(run: Run) -> str:
    """A Markdown table of where the tokens went: prompt (mostly image) and completion tokens per case, and totals."""
    rows = ["| case | task | prompt tokens | completion tokens |", "|---|---|---|---|"]
    prompt = completion = 0
    for r in run.results:
        prompt += r.prompt_tokens or 0
        completion += r.completion_tokens or 0
        rows.append(f"| {r.case} | {r.task} | {r.prompt_tokens if r.prompt_tokens is not None else '—'} | "
                    f"{r.completion_tokens if r.completion_tokens is not None else '—'} |")
    rows.append(f"| **total** | | **{prompt:,}** | **{completion:,}** |")
    return "\n".join(rows)


def compare(a: Run, b: Run) -> str:
    """Two runs side by side, per case (score and prompt tokens of each) and per task; cases only one run has are
    listed with a dash for the other."""
    label_a, label_b = f"{a.name}", f"{b.name}"
    rows = [f"| case | {label_a} score | {label_b} score | {label_a} tokens | {label_b} tokens |",
            "|---|---|---|---|---|"]
    index_b = {r.case: r for r in b.results}
    seen = set()
    for ra in a.results:
        rb = index_b.get(ra.case)
        seen.add(ra.case)
        changed = rb is not None and rb.correct != ra.correct
        name = f"**{ra.case}**" if changed else ra.case
        rows.append(f"| {name} | {_mark(ra)} | {_mark(rb)} | {ra.prompt_tokens or '—'} | "
                    f"{(rb.prompt_tokens or '—') if rb else '—'} |")
    for rb in b.results:
        if rb.case not in seen:
            rows.append(f"| {rb.case} | — | {_mark(rb)} | — | {rb.prompt_tokens or '—'} |")
    sa, sb = task_scores(a), task_scores(b)
    rows += ["", f"| task | {label_a} correct | {label_b} correct |", "|---|---|---|"]
    for task in dict.fromkeys([*sa, *sb]):
        ca = f"{sa[task][0]} / {sa[task][1]}" if task in sa else "—"
        cb = f"{sb[task][0]} / {sb[task][1]}" if task in sb else "—"
        rows.append(f"| {task} | {ca} | {cb} |")
    total_a = sum(r.prompt_tokens or 0 for r in a.results)
    total_b = sum(r.prompt_tokens or 0 for r in b.results)
    rows.append(f"| **prompt tokens** | **{total_a:,}** | **{total_b:,}** |")
    return "\n".join(rows)


def _mark(result: CaseResult | None) -> str:
    if result is None:
        return "—"
    return f"{result.score:.2f} {'✓' if result.correct else '✗'}"


def plot(*runs: Run) -> Figure:
    """A horizontal bar chart of the mean score per task, one bar per run (up to four runs)."""
    import matplotlib.pyplot as plt

    if not runs:
        raise ValueError("plot() needs at least one run, e.g. plot(run) or plot(run_low, run_high).")
    tasks = list(dict.fromkeys(t for run in runs for t in task_scores(run)))
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(tasks) * max(1, len(runs)) + 1.2))
    height = 0.8 / len(runs)
    for k, run in enumerate(runs[:4]):
        scores = task_scores(run)
        ys = [i + k * height for i in range(len(tasks))]
        values = [scores[t][2] if t in scores else 0.0 for t in tasks]
        ax.barh(ys, values, height=height * 0.95, label=f"{run.name} ({run.model}, {run.detail})")
        for y, v in zip(ys, values, strict=True):
            ax.text(min(v, 0.92) + 0.01, y, f"{v:.2f}", va="center", fontsize=8)
    ax.set_yticks([i + 0.4 - height / 2 for i in range(len(tasks))], tasks)
    ax.invert_yaxis()
    ax.set_xlim(0, 1)
    ax.set_xlabel("mean score (1 = right)")
    ax.legend(loc="lower right", fontsize=8)
    ax.set_title("Score per task")
    return _finish(fig)
