"""What a class will cost (issue 13): usage counted by the offline backend the way a learner's run sends it,
priced with helpers.model_costs, cached per notebook; an unknown model is a clear error. Issue 22: requests
above 272K input tokens at the long-context tier, input a prompt cache can serve at the cached rate."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import asdict
from pathlib import Path

import openai
import pytest
from PIL import Image

from helpers import model_costs, tokens
from helpers.recordings import course_version
from helpers.teacher import class_cost, notebook_paths
from helpers.teacher.class_cost import Usage, cached_usage, count_usage, main, price


def _png(width: int, height: int) -> str:
    buf = io.BytesIO()
    Image.new("RGB", (width, height), (30, 120, 200)).save(buf, "PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _fake_notebook(path: Path, env: dict[str, str]) -> tuple[float, int]:
    """Stands in for a kernel: sends what a learner's notebook would, to where the kernel's env points."""
    assert env["VISION_PROVIDER"] == "compatible" and "OPENAI_API_KEY" in env and env["VISION_DOTENV"] == "off"
    sdk = openai.OpenAI(base_url=env["OPENAI_BASE_URL"], api_key=env["OPENAI_API_KEY"], max_retries=0)
    sdk.chat.completions.create(model=env["VISION_MODEL"], max_completion_tokens=40, messages=[
        {"role": "user", "content": [{"type": "text", "text": "Which colour is this?"},
                                     {"type": "image_url", "image_url": {"url": _png(1024, 512), "detail": "high"}}]}])
    sdk.chat.completions.create(model=env["VISION_MODEL"], messages=[{"role": "user", "content": "And now?"}])
    return 0.0, 0


def test_usage_is_counted_per_notebook_with_exact_image_tokens():
    path = notebook_paths(["00"])[0]
    counts = count_usage([path], "gpt-4o", _fake_notebook, warm=False)[path.name]
    assert counts.requests == 2
    assert counts.image == tokens.image_tokens(1024, 512, "high", "gpt-4o") == 85 + 170 * 2   # 2x1 tiles of 512
    assert counts.text > 10 and counts.output > 0
    assert (counts.bounded, counts.bound, counts.unbounded) == (1, 40, 1)


def test_the_table_prices_each_notebook_and_the_class():
    usage = {"04_detail_levels.ipynb": Usage(3, 300, 2000, 400, 1, 100, 2),
             "05_handwriting_ocr.ipynb": Usage(2, 100, 1000, 50, 2, 2000, 0)}
    table = price(usage, "gpt-4o", 30)
    one = model_costs.estimate_cost("gpt-4o", 3400, 450)
    assert f"{one:.4f}" in table.splitlines()[3]                       # total, 1 learner
    assert f"${one * 30:.2f}" in table.splitlines()[-1]
    assert "class of 30: 150 requests, 102,000 input tokens (90,000 of them image)" in table
    assert "Output is an estimate" in table and model_costs.model_cost("gpt-4o").prices_source in table
    assert table.splitlines()[1].endswith(" +") and not table.splitlines()[2].endswith(" +")


def test_an_unknown_model_names_the_known_ones_and_runs_nothing(capsys):
    def must_not_run(path: Path, env: dict[str, str]) -> tuple[float, int]:
        raise AssertionError("no notebook should run for an unknown model")

    assert main(notebook_paths(["05"]), must_not_run, learners=30, model="my-llava", refresh=False) == 2
    said = capsys.readouterr().err
    assert "my-llava" in said and "gpt-4o" in said and "gpt-5.4-mini" in said and "What to do" in said


def test_a_new_openai_model_is_priced_as_a_labelled_estimate(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(class_cost, "CACHE_FILE", tmp_path / "class_usage.json")
    measured_as: list[str] = []
    monkeypatch.setattr(class_cost, "count_usage", lambda paths, model, run: measured_as.append(model)
                        or {p.name: Usage(1, 100, 1000, 50, 0, 0, 1) for p in paths})
    with pytest.warns(model_costs.EstimateWarning, match="gpt-9-vision"):
        assert main(notebook_paths(["05"]), _fake_notebook, learners=2, model="gpt-9-vision", refresh=False) == 0
    table = capsys.readouterr().out
    assert measured_as == ["gpt-6.2-astra"]             # the nearest known model: same token maths
    assert "\nnotebook" in table and "Estimate: not in the catalogue; rules and prices of gpt-6.2-astra" in table


def test_a_second_call_uses_the_cache_until_the_notebook_changes(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(class_cost, "CACHE_FILE", tmp_path / "class_usage.json")
    monkeypatch.setattr(class_cost, "SEED_FILE", tmp_path / "no_seed.json")
    path = notebook_paths(["00"])[0]
    runs: list[str] = []

    def measured(paths, model, run):        # count_usage itself is tested above; here only what is re-run
        runs.extend(p.name for p in paths)
        return {p.name: Usage(1, 10, 20, 5, 0, 0, 1) for p in paths}

    monkeypatch.setattr(class_cost, "count_usage", measured)
    counting_run = _fake_notebook

    first = cached_usage([path], "gpt-4o", counting_run)
    again = cached_usage([path], "gpt-4o", counting_run)
    assert runs == [path.name] and first == again
    data = json.loads((tmp_path / "class_usage.json").read_text())
    assert data["models"]["gpt-4o"][path.name]["course_version"] == course_version([path.name])
    data["models"]["gpt-4o"][path.name]["course_version"] = "0.0.1+nb.000000000000"   # the notebook changed
    (tmp_path / "class_usage.json").write_text(json.dumps(data))
    cached_usage([path], "gpt-4o", counting_run)
    assert runs == [path.name, path.name]


@pytest.mark.parametrize("model", ["gpt-5.4-mini", "gpt-4.1-mini"])
def test_prices_used_say_where_they_come_from_and_when(model):
    cost = model_costs.model_cost(model)
    assert cost.input_per_million and cost.output_per_million and cost.checked and cost.prices_source
    assert cost.prices_source in price({"x.ipynb": Usage(1, 1, 1, 1, 0, 0, 1)}, model, 1)


def _conversation_notebook(path: Path, env: dict[str, str]) -> tuple[float, int]:
    """Two turns of one conversation: the second resends the first (a 1200-word question and its answer)."""
    sdk = openai.OpenAI(base_url=env["OPENAI_BASE_URL"], api_key=env["OPENAI_API_KEY"], max_retries=0)
    history = [{"role": "user", "content": [{"type": "text", "text": "Describe this. " + "word " * 1200},
                                            {"type": "image_url", "image_url": {"url": _png(1024, 512)}}]}]
    first = sdk.chat.completions.create(model=env["VISION_MODEL"], messages=history)
    history += [{"role": "assistant", "content": first.choices[0].message.content},
                {"role": "user", "content": "And the colour?"}]
    sdk.chat.completions.create(model=env["VISION_MODEL"], messages=history)
    return 0.0, 0


def test_a_resent_prefix_is_counted_as_cacheable_in_openai_steps():
    path = notebook_paths(["00"])[0]
    counts = count_usage([path], "gpt-4o", _conversation_notebook, warm=False)[path.name]
    first_message = (tokens.text_tokens("Describe this. " + "word " * 1200, "gpt-4o") + 3
                     + tokens.text_tokens("user", "gpt-4o") + tokens.image_tokens(1024, 512, "auto", "gpt-4o"))
    assert counts.cached == class_cost.cacheable(first_message) > 1024
    assert counts.cached % 128 == 0 and counts.long_requests == 0


def test_the_table_prices_cached_input_at_the_cached_rate_and_says_the_uncached_price():
    usage = {"10_conversation.ipynb": Usage(2, 3000, 1000, 100, 0, 0, 2, cached=2048)}
    table = price(usage, "gpt-4o", 1)
    cost = model_costs.model_cost("gpt-4o")
    expected = (1952 * cost.input_per_million + 2048 * cost.cached_input_per_million + 100 * 10.0) / 1e6
    assert f"{expected:.4f}" in table.splitlines()[2]
    uncached = model_costs.estimate_cost("gpt-4o", 4000, 100)
    assert f"with no cache hit at all, 1 learner: ${uncached:.4f}" in table
    assert "$1.25 cached input" in table


def test_only_requests_above_272k_are_priced_at_the_long_context_tier():
    # 300,000-token request (long) + 10,000-token request (standard), on a model with the tier and one without.
    usage = {"06_cost_math.ipynb": Usage(2, 310_000, 0, 2_000, 0, 0, 2, long_requests=1, long_input=300_000,
                                         long_output=1_000)}
    luna = model_costs.model_cost("gpt-6-luna")
    want = (model_costs.estimate_cost("gpt-6-luna", 300_000, 1_000)
            + model_costs.estimate_cost("gpt-6-luna", 10_000, 1_000))
    assert class_cost.dollars(luna, usage["06_cost_math.ipynb"]) == pytest.approx(want)
    assert want > model_costs.price_tokens(luna, 310_000, 2_000)        # the tier is dearer than one flat sum
    assert "1 request(s) above 272,000 input tokens (priced at the long-context tier" in price(usage, "gpt-6-luna", 1)
    assert "this model has no such tier" in price(usage, "gpt-4o", 1)


def test_old_cache_rows_without_the_new_counts_are_measured_again(tmp_path, monkeypatch):
    monkeypatch.setattr(class_cost, "CACHE_FILE", tmp_path / "class_usage.json")
    path = notebook_paths(["00"])[0]
    old = {"requests": 1, "text": 10, "image": 20, "output": 5, "bounded": 0, "bound": 0, "unbounded": 1}
    (tmp_path / "class_usage.json").write_text(json.dumps({"models": {"gpt-4o": {path.name: {
        "course_version": course_version([path.name]), "usage": old}}}}))
    runs: list[str] = []
    monkeypatch.setattr(class_cost, "count_usage",
                        lambda paths, model, run: runs.extend(p.name for p in paths) or {p.name: Usage() for p in paths})
    cached_usage([path], "gpt-4o", _fake_notebook)
    assert runs == [path.name]


def test_measuring_leaves_tracked_files_alone(tmp_path, monkeypatch, capsys):
    """Issue 20: the cache is written under the git-ignored .cache/; the committed counts are only read."""
    assert class_cost.CACHE_FILE.parent.name == ".cache"
    gitignore = (class_cost.REPO_ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".cache/" in gitignore
    seed = tmp_path / "committed.json"
    path = notebook_paths(["00"])[0]
    seed.write_text(json.dumps({"models": {"gpt-4o": {path.name: {
        "course_version": course_version([path.name]), "usage": asdict(Usage(7, 1, 2, 3, 0, 0, 7))}}}}))
    before = seed.read_bytes()
    monkeypatch.setattr(class_cost, "SEED_FILE", seed)
    monkeypatch.setattr(class_cost, "CACHE_FILE", tmp_path / "cache" / "class_usage.json")
    monkeypatch.setattr(class_cost, "count_usage",
                        lambda paths, model, run: {p.name: Usage(1, 10, 20, 5, 0, 0, 1) for p in paths})
    assert cached_usage([path], "gpt-4o", _fake_notebook)[path.name].requests == 7       # read from the seed
    cached_usage([path], "gpt-4o", _fake_notebook, refresh=True)                         # measured again
    assert seed.read_bytes() == before
    written = json.loads((tmp_path / "cache" / "class_usage.json").read_text())
    assert written["models"]["gpt-4o"][path.name]["usage"]["requests"] == 1


@pytest.mark.parametrize("command", ["helpers.teacher", "helpers.course"])
def test_the_teacher_command_line_runs_under_both_spellings(command):
    """Issue 20: the teacher tools live in helpers.teacher; `python -m helpers.course`, which notebook 00 and the
    offline server's messages name, runs the same commands."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", command, "list"], capture_output=True, text=True, timeout=120,
                          cwd=class_cost.REPO_ROOT)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [path.name for path in notebook_paths()]
