"""The course in a real browser (issue 13): JupyterLab in headless Chromium, driven by Playwright.

What a learner does, and what nbval cannot see: open a lesson in JupyterLab, clear it, Run → Run All Cells from the
menu bar, look at its pictures (each must load in the page), and use the cost calculator widget (ipywidgets
rendered by JupyterLab's widget manager, not by nbval).
The lessons are copies in a temporary folder laid out like the repository (``notebooks/`` plus ``images/``), so the
committed notebooks are never modified; the server runs the offline provider whatever ``.env`` says
(``conftest.py``), with this repository first on ``PYTHONPATH``.

JupyterLab 4 renders long notebooks lazily, so the tests never count prompts in the page: they read the notebook
*model* through ``window.jupyterapp`` (``--LabApp.expose_app_in_browser``) and, after File → Save, the saved
``.ipynb`` with nbformat. A screenshot of each lesson is written to the test's temporary folder (its path is
printed) to see what really rendered.

Needs Playwright and a Chromium (Debian's ``chromium``; Playwright's own browser download is not used), so plain
``pytest`` leaves it out (marker ``browser``); run on purpose, a missing one is a failure, not a skip. Run it with::

    apt-get install chromium && pip install playwright
    pytest -m browser tests/browser

``CHROMIUM`` overrides the browser binary (default: ``chromium`` on ``PATH``).
"""

from __future__ import annotations

import os
import re
import secrets
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nbformat
import pytest
import requests

from helpers.tokens import image_tokens, scaled_size

try:
    from playwright import sync_api
except ImportError:                                        # plain `pytest` deselects these tests anyway
    sync_api = None

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
# Running as root in a container: no sandbox, no GPU; and nothing that phones home.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_START_SECONDS = 90
RUN_ALL_SECONDS = 240

# The notebook panel open on `path`, found among JupyterLab's main-area widgets.
_PANEL_JS = """
const coursePanel = (path) => {
  for (const widget of window.jupyterapp.shell.widgets('main')) {
    if (widget.context && widget.context.path === path) { return widget; }
  }
  return null;
};
"""


def js(body: str, params: str = "path", prefix: str = "") -> str:
    """A JavaScript function of ``params`` for ``page.evaluate``, with ``coursePanel(path)`` defined in it."""
    return f"{prefix}({params}) => {{ {_PANEL_JS} {body} }}"


# Every cell of the model (not the page: cells out of view may not be rendered): its type, execution count,
# and its error outputs and tracebacks printed to stderr.
_CELLS_JS = js("""
  const panel = coursePanel(path);
  const cells = panel.content.model.cells;
  const found = [];
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    const entry = {index: i, type: cell.type, count: null, outputs: 0, errors: []};
    if (cell.type === 'code') {
      entry.count = cell.executionCount;
      entry.outputs = cell.outputs.length;
      for (let j = 0; j < cell.outputs.length; j++) {
        const out = cell.outputs.get(j).toJSON();
        if (out.output_type === 'error') { entry.errors.push(out.ename + ': ' + out.evalue); }
        const text = Array.isArray(out.text) ? out.text.join('') : (out.text || '');
        if (out.name === 'stderr' && text.includes('Traceback (most recent call last)')) {
          entry.errors.push('traceback on stderr: ' + text.slice(0, 300));
        }
      }
    }
    found.push(entry);
  }
  return {cells: found, kernel: panel.sessionContext.session?.kernel?.status ?? null,
          dirty: panel.context.model.dirty};
""")

# True once the kernel is idle and every code cell has run, or once an error stopped Run All (JupyterLab does
# not run the cells after a failing one).
_RUN_FINISHED_JS = js("""
  const panel = coursePanel(path);
  if (!panel || panel.sessionContext.session?.kernel?.status !== 'idle') { return false; }
  const cells = panel.content.model.cells;
  let pending = false, failed = false;
  for (let i = 0; i < cells.length; i++) {
    const cell = cells.get(i);
    if (cell.type !== 'code') { continue; }
    if (cell.executionCount === null) { pending = true; }
    for (let j = 0; j < cell.outputs.length; j++) {
      if (cell.outputs.get(j).type === 'error') { failed = true; }
    }
  }
  return failed || !pending;
""")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Lab:
    """A running ``jupyter lab`` serving ``root`` (a copy of the lessons) on 127.0.0.1."""

    def __init__(self, root: Path, port: int, token: str, log: Path) -> None:
        self.root, self.port, self.token, self.log = root, port, token, log

    def url(self, path: str) -> str:
        # `reset`: start from an empty workspace (no tabs restored from the previous test)
        return f"http://127.0.0.1:{self.port}/lab/tree/{path}?reset&token={self.token}"

    def log_tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]


@pytest.fixture(scope="module")
def lab(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    """``jupyter lab`` on a free port with a token, serving a temporary copy laid out like the repository."""
    # Only ever run on purpose (`-m browser`), so a missing piece fails rather than skips.
    if sync_api is None:
        pytest.fail("Playwright is not installed: pip install playwright (its browser download is not needed)")
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: apt-get install chromium, or set CHROMIUM to a Chromium binary")
    base = tmp_path_factory.mktemp("jupyterlab")
    root = base / "course"
    (root / "notebooks").mkdir(parents=True)
    for name in ("01_image_urls.ipynb", "06_cost_math.ipynb"):
        shutil.copy(REPO / "notebooks" / name, root / "notebooks" / name)
    # Lessons read ../images/...; a copy, not a symlink: Jupyter does not serve files through a link out of its root.
    shutil.copytree(REPO / "images", root / "images")
    env = dict(os.environ)                                 # conftest.py forced the offline provider here
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    for variable, folder in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_RUNTIME_DIR", "runtime"),
                             ("JUPYTERLAB_SETTINGS_DIR", "settings"), ("JUPYTERLAB_WORKSPACES_DIR", "workspaces")):
        env[variable] = str(base / folder)                 # a learner's own Lab settings must not interfere
    # No "Would you like to get notified about official Jupyter news?" toast over the page.
    news = base / "settings" / "@jupyterlab" / "apputils-extension" / "notification.jupyterlab-settings"
    news.parent.mkdir(parents=True)
    news.write_text('{"fetchNews": "false"}')
    port, token = _free_port(), secrets.token_hex(16)
    log = base / "jupyterlab.log"
    command = [sys.executable, "-m", "jupyterlab", "--no-browser", f"--ServerApp.root_dir={root}",
               "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
               f"--IdentityProvider.token={token}", "--LabApp.expose_app_in_browser=True",
               "--LabApp.news_url=None", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        command.append("--allow-root")                     # CI containers run as root
    with open(log, "wb") as out:
        server = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Lab(root, port, token, log)
    try:
        deadline = time.monotonic() + SERVER_START_SECONDS
        while True:
            if server.poll() is not None:
                pytest.fail(f"jupyter lab exited with {server.returncode}:\n{running.log_tail()}")
            try:
                if requests.get(f"http://127.0.0.1:{port}/api/status", params={"token": token}, timeout=2).ok:
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"jupyter lab did not answer within {SERVER_START_SECONDS} s:\n{running.log_tail()}")
            time.sleep(0.5)
        yield running
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


@pytest.fixture(scope="module")
def browser(lab: Lab) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    tab = context.new_page()
    tab.set_default_timeout(60_000)
    yield tab
    context.close()


def menu(page: Any, top: str, item: str) -> None:
    """Click ``top`` in JupyterLab's menu bar, then ``item`` in the menu it opens (as a learner would)."""
    page.locator(".lm-MenuBar-item").filter(has_text=re.compile(rf"^{re.escape(top)}$")).click()
    page.locator(".lm-Menu-item:not(.lm-mod-hidden)").filter(
        has=page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}$"))).first.click()


def cells(page: Any, path: str) -> dict[str, Any]:
    return page.evaluate(_CELLS_JS, path)


def open_lesson(page: Any, lab: Lab, path: str) -> None:
    """Open ``path`` in JupyterLab and wait for its kernel to be idle."""
    page.goto(lab.url(path))
    page.wait_for_function("() => window.jupyterapp !== undefined")
    page.evaluate("async () => { await window.jupyterapp.started; await window.jupyterapp.restored; }")
    page.wait_for_function(js("return coursePanel(path) !== null;"), arg=path)
    page.evaluate(js("await coursePanel(path).sessionContext.ready;", prefix="async "), path)
    page.wait_for_function(js("return coursePanel(path).sessionContext.session?.kernel?.status === 'idle';"),
                           arg=path)


def run_all(page: Any, lab: Lab, path: str) -> dict[str, Any]:
    """Edit → Clear Outputs of All Cells, Run → Run All Cells, wait for the kernel; the model's cells after it."""
    menu(page, "Edit", "Clear Outputs of All Cells")
    cleared = cells(page, path)["cells"]
    assert [c["index"] for c in cleared if c["type"] == "code" and (c["count"] or c["outputs"])] == [], \
        "Clear Outputs of All Cells left outputs or execution counts behind"
    started = time.monotonic()
    menu(page, "Run", "Run All Cells")
    try:
        page.wait_for_function(_RUN_FINISHED_JS, arg=path, timeout=RUN_ALL_SECONDS * 1000, polling=500)
    except sync_api.TimeoutError:
        state = cells(page, path)
        pending = [c["index"] for c in state["cells"] if c["type"] == "code" and c["count"] is None]
        pytest.fail(f"{path}: Run All Cells did not finish in {RUN_ALL_SECONDS} s (kernel {state['kernel']}, "
                    f"cells not run: {pending})\n{lab.log_tail()}")
    print(f"{path}: Run All Cells took {time.monotonic() - started:.1f} s")
    return cells(page, path)


def assert_ran_cleanly(state: dict[str, Any], path: str) -> None:
    code = [c for c in state["cells"] if c["type"] == "code"]
    errors = [f"cell {c['index']}: {error}" for c in code for error in c["errors"]]
    assert errors == [], f"{path}: error output in the browser:\n" + "\n".join(errors)
    not_run = [c["index"] for c in code if c["count"] is None]
    assert not_run == [], f"{path}: cells Run All Cells did not run: {not_run}"
    assert [c["count"] for c in code] == list(range(1, len(code) + 1)), "cells ran out of order or twice"


def save_and_check_file(page: Any, lab: Lab, path: str) -> nbformat.NotebookNode:
    """File → Save Notebook, then read the saved file: this run's outputs, every code cell executed, no error."""
    before = (lab.root / path).stat().st_mtime_ns
    menu(page, "File", "Save Notebook")
    page.wait_for_function(js("return !coursePanel(path).context.model.dirty;"), arg=path)
    assert (lab.root / path).stat().st_mtime_ns != before, f"{path}: File → Save Notebook did not write the file"
    # The setup line names the offline backend's port, new on every run: the file holds what the page shows.
    live = page.evaluate(js("""
        const cells = coursePanel(path).content.model.cells;
        for (let i = 0; i < cells.length; i++) {
          if (cells.get(i).type === 'code') { return cells.get(i).outputs.toJSON(); }
        }
        return null;"""), path)
    saved = nbformat.read(lab.root / path, as_version=4)
    code = [cell for cell in saved.cells if cell.cell_type == "code"]
    assert code, f"{path}: no code cells in the saved notebook"
    assert nbformat.from_dict(live) == code[0].outputs, f"{path}: the saved file is not what the page shows"
    assert [i for i, cell in enumerate(code) if cell.execution_count is None] == [], \
        f"{path}: saved with unexecuted code cells"
    errors = [f"{o.ename}: {o.evalue}" for cell in code for o in cell.outputs if o.output_type == "error"]
    assert errors == [], f"{path}: saved notebook has error outputs: {errors}"
    return saved


def assert_images_load(page: Any, path: str) -> int:
    """Scroll to every cell that shows a picture (a Markdown image or an image output) and check that the page
    shows it there and that it really loaded (a broken one has no natural width). Returns how many loaded."""
    indices = page.evaluate(js("""
        const cells = coursePanel(path).content.model.cells;
        const found = [];
        for (let i = 0; i < cells.length; i++) {
          const cell = cells.get(i);
          const source = cell.sharedModel.getSource();
          let pictured = cell.type === 'markdown' && (source.includes('![') || source.includes('<img'));
          if (cell.type === 'code') {
            for (let j = 0; j < cell.outputs.length; j++) {
              const data = cell.outputs.get(j).toJSON().data || {};
              if (Object.keys(data).some((mime) => mime.startsWith('image/'))) { pictured = true; }
            }
          }
          if (pictured) { found.push(i); }
        }
        return found;"""), path)
    loaded, broken = 0, []
    for index in indices:
        page.evaluate(js("""
            const notebook = coursePanel(path).content;
            await notebook.scrollToItem(index, 'center');""", params="[path, index]", prefix="async "), [path, index])
        try:
            page.wait_for_function(js("""
                const node = coursePanel(path).content.widgets[index].node;
                const images = [...node.querySelectorAll('img')];
                return images.length > 0 && images.every((img) => img.complete);""", params="[path, index]"),
                arg=[path, index], timeout=30_000)
        except sync_api.TimeoutError:
            pytest.fail(f"{path}: cell {index} has a picture in the notebook but none finished loading in the page")
        sizes = page.evaluate(js("""
            return [...coursePanel(path).content.widgets[index].node.querySelectorAll('img')].map(
              (img) => [img.getAttribute('src').slice(0, 80), img.naturalWidth]);""", params="[path, index]"),
            [path, index])
        loaded += sum(1 for _, width in sizes if width > 0)
        broken += [f"cell {index}: {src}" for src, width in sizes if width == 0]
    assert broken == [], f"{path}: pictures that did not load in the browser:\n" + "\n".join(broken)
    return loaded


def screenshot(page: Any, lab: Lab, name: str) -> None:
    target = lab.root.parent / f"{name}.png"
    page.screenshot(path=str(target))
    print(f"screenshot: {target}")


def test_lesson_01_runs_all_cells_in_jupyterlab_without_errors(page: Any, lab: Lab) -> None:
    path = "notebooks/01_image_urls.ipynb"
    open_lesson(page, lab, path)
    state = run_all(page, lab, path)
    assert_ran_cleanly(state, path)
    saved = save_and_check_file(page, lab, path)
    first = "".join(o.get("text", "") for o in saved.cells[1].outputs)
    assert first.startswith("Provider: offline"), f"setup() did not pick the offline provider: {first[:200]!r}"
    pictures = assert_images_load(page, path)
    assert pictures >= 1, f"{path}: no picture shown (the lesson plots the photo it sends)"
    print(f"{path}: {pictures} pictures loaded")
    screenshot(page, lab, "01_image_urls")


def test_lesson_06_runs_and_its_cost_widget_recomputes_when_the_width_changes(page: Any, lab: Lab) -> None:
    path = "notebooks/06_cost_math.ipynb"
    open_lesson(page, lab, path)
    state = run_all(page, lab, path)
    assert_ran_cleanly(state, path)
    save_and_check_file(page, lab, path)
    print(f"{path}: {assert_images_load(page, path)} pictures loaded")

    # The calculator: the cell whose output is the widget. Scroll the notebook to it (it may not be rendered yet).
    index = page.evaluate(js("""
        const cells = coursePanel(path).content.model.cells;
        for (let i = 0; i < cells.length; i++) {
          const cell = cells.get(i);
          if (cell.type === 'code' && cell.sharedModel.getSource().includes('widgets.interactive(')) { return i; }
        }
        return -1;"""), path)
    assert index >= 0, "lesson 06 has no calculator cell (widgets.interactive)"
    page.evaluate(js("""
        const notebook = coursePanel(path).content;
        notebook.activeCellIndex = index;
        await notebook.scrollToItem(index, 'center');""", params="[path, index]", prefix="async "), [path, index])
    calculator = page.locator(".jp-OutputArea-output .widget-vbox").filter(
        has=page.locator(".widget-interact")).first
    try:
        calculator.scroll_into_view_if_needed(timeout=30_000)
    except sync_api.TimeoutError:
        pytest.fail("the cost calculator widget did not render in JupyterLab (is jupyterlab_widgets installed?)")
    width = calculator.locator(".widget-inline-hbox").filter(
        has=page.locator("label", has_text=re.compile(r"^width \(px\)$"))).locator("input")
    model = calculator.locator(".widget-inline-hbox").filter(
        has=page.locator("label", has_text=re.compile(r"^model$"))).locator("select")
    output = calculator.locator(".widget-html pre")
    model_name = model.input_value()
    before = output.inner_text()
    w, h = scaled_size(1024, 1024, "high", model_name)
    assert f"1024×1024 is seen as {w}×{h}" in before, f"calculator's first answer: {before!r}"

    width.fill("3000")
    width.press("Enter")
    seen = scaled_size(3000, 1024, "high", model_name)
    expected = f"3000×1024 is seen as {seen[0]}×{seen[1]}"
    try:
        output.filter(has_text=expected).wait_for(timeout=30_000)
    except sync_api.TimeoutError:
        pytest.fail(f"the cost did not recompute after the width field changed to 3000 (expected {expected!r}); "
                    f"the widget shows: {output.inner_text()!r}")
    after = output.inner_text()
    tokens = image_tokens(3000, 1024, "high", model_name)
    assert f"{tokens:,} image tokens" in after, f"expected {tokens:,} image tokens for 3000×1024: {after!r}"
    assert after != before
    screenshot(page, lab, "06_cost_math_widget")
