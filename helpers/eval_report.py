"""Reading an evaluation: Markdown tables per task and per case, a bar chart, and two runs side by side.

Works on :class:`helpers.evaluation.Run` objects, fresh from :func:`helpers.evaluation.run_eval` or loaded from
``evaluations/NAME.jsonl`` with :func:`helpers.evaluation.load_run`. Tables are Markdown strings (show them with
:func:`helpers.display.show_markdown`); :func:`plot` returns a matplotlib figure.

>>> print(by_task(run))                                   # doctest: +SKIP
>>> print(compare(load_run("offline-low"), load_run("offline-high")))   # doctest: +SKIP

Taught in notebooks/12_evaluation.ipynb.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from helpers.display import _finish
from helpers.evaluation import CaseResult, Run
from helpers.scoring import answer_text

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["GUIDE_LIMITATIONS", "by_case", "by_limitation", "by_task", "compare", "plot", "task_scores", "tokens"]

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


def tokens(run: Run) -> str:
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
