"""What a class will cost: the tokens and dollars of a full run of the notebooks, per notebook and for N learners.

``python -m helpers.teacher cost --learners 30 [--model gpt-4.1-mini] [05 09]`` prices the course's own usage
counts. They are measured by running each notebook in a kernel set up as a learner with a real provider would be
(provider ``compatible``, so course images go as a real provider receives them: public-copy URLs or data URLs)
against an offline backend in this process that adds up the ``usage`` of every answer. Input is exact: image
tokens by the requested model's rules for each image's decoded size, text tokens with the model's encoding.
Output is an estimate: it is the length of the offline backend's answers, which are not a model's; a request
that sets ``max_tokens`` (or ``max_completion_tokens``) cannot get more than that, and the table gives that upper
bound. Prices follow the rules: a request above 272,000 input tokens on a model with the long-context tier is
priced at that tier (2x input, 1.5x output), request by request; input a request shares as a prefix with the
notebook's previous request (at least 1024 tokens, in 128-token steps: OpenAI's prompt-caching rule) is priced
at the cached-input rate, and the table also gives the price without any cache hit. Demos that stay local whatever the provider (notebook 09's fault injection, notebook 07's simulator) are
not counted: they spend nothing. Counts are cached per model in ``.cache/class_usage.json`` (git-ignored), keyed by
each notebook's code (:func:`helpers.recordings.course_version`); ``--refresh`` measures again. Until the first
measurement the counts committed in ``benchmarks/class_usage.json`` (the figures benchmarks/README.md quotes) are
read; that file is never written.

>>> table = price({"05_handwriting_ocr.ipynb": Usage(requests=2, text=100, image=1000, output=50, bounded=1,
...                                                   bound=20, unbounded=1)}, "gpt-4o", 30)
>>> table.splitlines()[-1].startswith("class of 30")
True
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from helpers import model_costs, models, tokens
from helpers.config import OFFLINE_API_KEY, load_settings
from helpers.errors import CourseError, UnknownModelError
from helpers.local import REPO_ROOT
from helpers.offline.backend import ChatBackend
from helpers.offline.completions import Completion, prompt_tokens
from helpers.offline.fetch import Budget
from helpers.offline.protocol import ChatRequest
from helpers.recordings import course_version
from helpers.teacher.recording import SECRET_VARS
from helpers.tokens import REPLY_PRIMING_TOKENS

__all__ = ["CACHE_FILE", "CountingBackend", "Usage", "cacheable", "count_usage", "dollars", "main", "price"]

LONG_CONTEXT_NOTE = "Long context: {n} request(s) above {threshold:,} input tokens ({priced})."

#: Where measured counts are written: a git-ignored folder, so a teacher's run leaves tracked files alone.
CACHE_FILE = REPO_ROOT / ".cache" / "class_usage.json"
#: The counts measured for the course as committed (read when CACHE_FILE does not exist yet; never written).
SEED_FILE = REPO_ROOT / "benchmarks" / "class_usage.json"


@dataclass
class Usage:
    """One notebook's requests and tokens: input text and image tokens (exact), output (the offline answers'
    length), and for the output bound: requests with a token limit, the sum of those limits, requests without."""

    requests: int = 0
    text: int = 0
    image: int = 0
    output: int = 0
    bounded: int = 0
    bound: int = 0
    unbounded: int = 0
    cached: int = 0          # input tokens a prompt cache can serve (a prefix shared with the previous request)
    long_requests: int = 0   # requests above the long-context threshold, and their tokens:
    long_input: int = 0
    long_cached: int = 0
    long_output: int = 0
    long_bound: int = 0


#: OpenAI's prompt caching: prompts of 1024 tokens or more, cache hits in 128-token increments
#: (https://developers.openai.com/api/docs/guides/prompt-caching).
CACHE_MIN, CACHE_STEP = 1024, 128


def cacheable(prefix_tokens: int) -> int:
    """The input tokens a cache hit can cover, for a prefix of ``prefix_tokens`` shared with an earlier request.

    >>> cacheable(1023), cacheable(1024), cacheable(1300)
    (0, 1024, 1280)
    """
    return 0 if prefix_tokens < CACHE_MIN else CACHE_MIN + (prefix_tokens - CACHE_MIN) // CACHE_STEP * CACHE_STEP


class CountingBackend(ChatBackend):
    """The offline backend, adding up the ``usage`` of every answer under the current ``notebook``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notebook = ""
        self.counts: dict[str, Usage] = {}
        self._previous: dict[str, list[dict[str, Any]]] = {}
        self._lock = threading.Lock()

    def complete(self, request: ChatRequest, digest: str,
                 cancelled: Callable[[], bool] = lambda: False) -> Completion:
        completion = super().complete(request, digest, cancelled)
        image = 0
        sizes: dict[tuple[int, int], tuple[int, int, str]] = {}
        for part in request.image_parts:       # sizes are cached by content: this re-reads, it does not re-decode
            loaded = self.inspect(part, self.fetch(part, Budget.for_request(2**62, cancelled)))
            sizes[(part.message_index, part.part_index)] = (loaded.width, loaded.height, part.detail)
            image += tokens.image_tokens(loaded.width, loaded.height, part.detail, request.model)
        prompt = completion.usage.prompt_tokens
        bound = request.max_tokens * completion.n if request.max_tokens is not None else 0
        with self._lock:
            previous = self._previous.get(self.notebook, [])
            shared = next((i for i, (a, b) in enumerate(zip(previous, request.messages, strict=False)) if a != b),
                          min(len(previous), len(request.messages)))
            shared_sizes = {key: size for key, size in sizes.items() if key[0] < shared}
            cached = cacheable(prompt_tokens(request.messages[:shared], shared_sizes, request.model)
                               - REPLY_PRIMING_TOKENS) if shared else 0
            self._previous[self.notebook] = request.messages
            usage = self.counts.setdefault(self.notebook, Usage())
            usage.requests += 1
            usage.image += image
            usage.text += prompt - image
            usage.output += completion.usage.completion_tokens
            usage.cached += cached
            if prompt > model_costs.LONG_CONTEXT["threshold"]:
                usage.long_requests += 1
                usage.long_input += prompt
                usage.long_cached += cached
                usage.long_output += completion.usage.completion_tokens
                usage.long_bound += bound
            if request.max_tokens is not None:
                usage.bounded += 1
                usage.bound += bound
            else:
                usage.unbounded += 1
        return completion


def count_usage(paths: Sequence[Path], model: str, run: Callable[[Path, dict[str, str]], tuple[float, int]], *,
                warm: bool = True) -> dict[str, Usage]:
    """Run each notebook (``run(path, env)``, not saved) against a counting offline backend; usage per notebook.
    ``env`` is a learner's with a real provider: ``compatible``, pointed at that backend, ``VISION_MODEL=model``."""
    from helpers.offline.server import OfflineServer

    server = OfflineServer(port=0, warm_ocr=warm)
    backend = CountingBackend(server.policy)
    server.state.backend = backend
    env = {k: v for k, v in os.environ.items() if k not in SECRET_VARS}
    with server:
        env.update(VISION_DOTENV="off", VISION_PROVIDER="compatible", OPENAI_BASE_URL=server.base_url + "/v1",
                   OPENAI_API_KEY=OFFLINE_API_KEY, VISION_MODEL=model)
        env.pop("COURSE_IMAGES_BASE_URL", None)
        for path in paths:
            backend.notebook = path.name
            backend.counts[path.name] = Usage()
            seconds, errors = run(path, env)
            print(f"  {path.name}: {backend.counts[path.name].requests} requests, {seconds:.0f} s"
                  + (f", {errors} cell(s) ended in an error" if errors else ""), flush=True)
    return backend.counts


def _load_cache() -> dict[str, Any]:
    """The cache, or (before the first measurement on this machine) the committed counts, or nothing."""
    for path in (CACHE_FILE, SEED_FILE):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict):
            return data
    return {}


def cached_usage(paths: Sequence[Path], model: str, run: Callable[[Path, dict[str, str]], tuple[float, int]],
                 refresh: bool = False) -> dict[str, Usage]:
    """Usage per notebook from the cache where the notebook's code is unchanged; the others are measured (all of
    them with ``refresh``) and the cache updated."""
    cache = _load_cache()
    rows = cache.setdefault("models", {}).setdefault(model, {})
    found: dict[str, Usage] = {}
    stale = []
    for path in paths:
        row = rows.get(path.name)
        if (not refresh and row and row.get("course_version") == course_version([path.name])
                and set(row.get("usage", {})) == set(asdict(Usage()))):       # counted with today's fields
            found[path.name] = Usage(**row["usage"])
        else:
            stale.append(path)
    if stale:
        print(f"Measuring {len(stale)} notebook(s) offline for {model} (about 10-40 s each; cached afterwards)...",
              flush=True)
        for name, usage in count_usage(stale, model, run).items():
            found[name] = usage
            rows[name] = {"course_version": course_version([name]), "usage": asdict(usage),
                          "measured": dt.datetime.now(dt.timezone.utc).date().isoformat()}
        cache["about"] = ("Token counts of one run of each notebook, measured offline by `python -m helpers.teacher "
                          "cost` (helpers/teacher/class_cost.py); input exact, output the offline answers' length.")
        CACHE_FILE.parent.mkdir(parents=True, exist_ok=True)
        CACHE_FILE.write_text(json.dumps(cache, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return {p.name: found[p.name] for p in paths}


def _check_priced(model: str) -> model_costs.ModelCost:
    """The cost row of ``model``; :class:`UnknownModelError` naming the known models if it has no price."""
    priced = [m for m in model_costs.known_models() if model_costs.model_cost(m).input_per_million is not None]
    try:
        cost = model_costs.model_cost(model)
    except UnknownModelError:
        cost = None
    if cost is None or cost.input_per_million is None or cost.output_per_million is None:
        raise UnknownModelError(f"The course's price table has no price for the model {model!r}. Priced: "
                                f"{', '.join(priced)}.",
                                fix="pass --model with one of those (dated snapshots such as gpt-4o-2024-08-06 "
                                    "work too), or set VISION_MODEL to it.")
    return cost


def dollars(cost: model_costs.ModelCost, u: Usage, *, bound: bool = False, cache: bool = True) -> float:
    """USD for a notebook's usage: requests above the long-context threshold at that tier (if the model has
    it), cacheable input at the cached rate (``cache=False``: none), output as counted or, with ``bound``, every
    bounded request at its limit."""
    output = max(u.bound, u.output) if bound else u.output
    long_output = max(u.long_bound, u.long_output) if bound else u.long_output
    cached, long_cached = (u.cached, u.long_cached) if cache else (0, 0)
    return (model_costs.price_tokens(cost, u.text + u.image - u.long_input, output - long_output,
                                     cached - long_cached)
            + model_costs.price_tokens(cost, u.long_input, long_output, long_cached, long_context=True))


def price(usage: dict[str, Usage], model: str, learners: int) -> str:
    """The cost table: per notebook for one learner, the total, and the total for ``learners``."""
    cost = _check_priced(model)

    lines = [f"{'notebook':<26}{'requests':>9}{'text in':>10}{'image in':>10}{'output*':>9}{'$ / learner':>13}"
             f"{'$ bound**':>11}"]
    total = Usage()
    for name, u in usage.items():
        lines.append(f"{name.removesuffix('.ipynb'):<26}{u.requests:>9,}{u.text:>10,}{u.image:>10,}{u.output:>9,}"
                     f"{dollars(cost, u):>13.4f}{dollars(cost, u, bound=True):>11.4f}"
                     + (" +" if u.unbounded else ""))
        for key in asdict(total):
            setattr(total, key, getattr(total, key) + getattr(u, key))
    row = f"{total.requests:>9,}{total.text:>10,}{total.image:>10,}{total.output:>9,}"
    lines.append(f"{'total, 1 learner':<26}{row}{dollars(cost, total):>13.4f}"
                 f"{dollars(cost, total, bound=True):>11.4f}")
    cached_price = cost.cached_input_per_million
    head = (f"{cost.name}: ${cost.input_per_million:g} input, "
            + (f"${cached_price:g} cached input, " if cached_price is not None else "")
            + f"${cost.output_per_million:g} output per 1M tokens (standard tier; {cost.price_evidence}: "
            f"{cost.prices_source}, "
            f"checked {cost.checked})." + (f" {cost.note}" if cost.estimate_of else ""))
    caching = (f"Cached input: {total.cached:,} of the input tokens repeat the start of the notebook's previous "
               "request (>= 1024 tokens, 128-token steps: OpenAI's prompt-caching rule) and are priced at the "
               "cached rate" + ("" if cached_price is not None else " (none recorded: the input rate)")
               + f"; with no cache hit at all, 1 learner: ${dollars(cost, total, cache=False):.4f}.")
    tier = LONG_CONTEXT_NOTE.format(n=total.long_requests, threshold=model_costs.LONG_CONTEXT["threshold"],
                                    priced="priced at the long-context tier (2x input, 1.5x output, whole "
                                           "request)" if cost.long_context else "this model has no such tier")
    reasoning = (" It is a reasoning model: its hidden reasoning tokens are billed as output too; they are not in "
                 "the estimate, but they are within the bound (max_completion_tokens caps reasoning and answer "
                 "together)." if models.is_reasoning_model(cost.name) else "")
    notes = [head, caching, tier,
             "* Output is an estimate: the offline backend's answers' length, not a model's. Input (text and "
             "image tokens) is exact." + reasoning,
             f"** With every request that sets max_tokens answering up to its limit ({total.bounded} of "
             f"{total.requests} requests set one); '+' marks notebooks with requests that set none "
             f"({total.unbounded}), whose answers have no bound.",
             f"class of {learners}: {total.requests * learners:,} requests, "
             f"{(total.text + total.image) * learners:,} input tokens ({total.image * learners:,} of them image), "
             f"~{total.output * learners:,} output: ${dollars(cost, total) * learners:.2f} "
             f"(bounded requests at their limits: ${dollars(cost, total, bound=True) * learners:.2f})"]
    return "\n".join(lines + [""] + notes)


def main(paths: Sequence[Path], run: Callable[[Path, dict[str, str]], tuple[float, int]], *, learners: int,
         model: str | None, refresh: bool) -> int:
    """``python -m helpers.teacher cost``: print the table; 2 with a clear message (an unknown model, no
    notebooks). ``run(path, env)`` executes one notebook without saving it."""
    try:
        if learners < 1:
            raise CourseError(f"--learners is {learners}.", fix="pass the number of learners, e.g. --learners 30.")
        name = model or load_settings().model
        cost = _check_priced(name)                # before measuring anything
        if not paths:
            raise CourseError("No notebook matches.", fix="run `python -m helpers.teacher list` to see their names.")
        # A model not in the catalogue yet is measured as the model whose rules it borrows (same token maths;
        # the offline backend serves catalogued models only) and priced as an estimate, which the table says.
        usage = cached_usage(paths, cost.estimate_of or name, run, refresh)
        print(price(usage, name, learners))
    except CourseError as err:
        print(err, file=sys.stderr)
        return 2
    return 0
