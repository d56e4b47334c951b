"""Tamper checks for ``homework/grade.py``: a submission that patches the grader or reads the hidden tests gets no credit.

What otter-grader itself protects, and what it does not (otter-grader 7, read in its source, 2026-12-02):

- the hidden tests are only in ``autograder.zip``, never in the student notebook;
- but ``otter run`` executes the submission and then the tests **in the same kernel** (a cell it appends runs every
  test file and pickles the results), with the test files unpacked next to it. So code in the notebook can patch
  otter's classes (``TestFile.score``...), replace ``helpers`` functions in ``sys.modules`` that a test compares
  against, read ``tests/*.py``, or look at the calling test's frame for the expected value.

``grade.py`` therefore does not use ``otter run``: its grading process (``homework/runner.py``) gets the tests only
after the notebook ran, never on disk, with otter not importable from the notebook, and reports outcomes from which
``grade.py`` computes the points (the structural layer, described there). The student's functions still run in that
process while the tests call them, so two defences here remain, one before and one after the run:

1. :func:`scan` reads every code cell (IPython magics turned into Python first) and lists what no honest answer to
   these assignments needs: importing ``otter`` (other than the init cell ``homework/build.py`` wrote),
   ``importlib``, ``runpy``, ``subprocess``, ``ctypes``, ``gc``, ``glob`` or ``builtins``; ``exec``, ``eval``,
   ``compile``, ``__import__``, ``setattr``, ``delattr``, ``globals()``, ``vars()``, ``getattr`` with a computed
   name; the frame functions of ``inspect`` (``stack``, ``currentframe``...; ``import inspect`` itself is fine);
   frame and code attributes (``f_back``, ``f_locals``, ``__code__``, ``__globals__``, ``__setattr__``...);
   ``sys.modules``, ``sys._getframe``, ``sys.settrace``...; ``os.system``, ``os.walk``, ``listdir``, ``glob``...
   (running programs, listing folders); IPython's ``get_ipython()`` other than the ``%time``/``%timeit``/
   ``%matplotlib`` magics (``!cat``, ``run_cell(...)``); assigning to an attribute of anything imported (a module,
   a class, a function) or of ``grader`` (items of a module's dict such as ``plt.rcParams[...]`` or
   ``os.environ[...]`` are fine); any use of ``grader`` other than ``grader.check("q1")``; string literals that
   name the tests, the autograder, otter, other notebooks or ``/proc``. A cell too deeply nested to parse (a
   1.4 MB ``1 + 1 + ...``) is reported, not fatal. A flagged submission is **not run** and gets no credit; the
   report says why, so the teacher can look (a false alarm is re-graded after removing the line).
2. :func:`with_canary` adds a test that always fails to the autograder (a copy, at grading time; ``grade.py`` puts
   a random per-submission nonce in its message, :func:`canary_test`): if it passes, or its report lacks the
   nonce, the grader was patched at run time (by code the scan did not recognise), and the submission is flagged.

Expected values that a test compares against are computed in a fresh Python process where it matters (hw03), so
patching ``helpers`` in the kernel does not move them.

>>> scan_source("import otter\\ngrader = otter.Notebook('hw.ipynb')\\nx = 1")
[]
>>> scan_source("import helpers.tokens as t\\nt.image_tokens = lambda *a: 85")
['line 2: assigns to an attribute of t (imported)']
"""

from __future__ import annotations

import ast
import re
import shutil
import zipfile
from pathlib import Path

CANARY = "zz_grader_integrity"
CANARY_TEST = f'''from otter.test_files import test_case

OK_FORMAT = False

name = "{CANARY}"
points = 1


@test_case(points=None, hidden=True)
def test_always_fails():
    raise AssertionError("this test always fails: if it passed, the grader was patched by the submission")
'''


def canary_test(nonce: str) -> str:
    """The canary test with a random nonce in its failure message, made per submission at grading time: a
    report that shows the canary failing with this nonce cannot have been written before the tests arrived."""
    if not nonce.isalnum():
        raise ValueError("the nonce is letters and digits")
    return CANARY_TEST.replace("this test always fails:", f"this test always fails ({nonce}):")

FORBIDDEN_MODULES = {"importlib", "ctypes", "gc", "builtins", "otter", "pickle", "marshal", "imp", "runpy",
                     "subprocess", "multiprocessing", "pty", "glob", "signal", "homework_checks"}
FORBIDDEN_CALLS = {"exec", "eval", "compile", "__import__", "setattr", "delattr", "globals", "vars", "breakpoint",
                   "get_ipython"}
FORBIDDEN_ATTRIBUTES = {"f_back", "f_locals", "f_globals", "f_code", "gi_frame", "cr_frame", "tb_frame", "__code__",
                        "__globals__", "__closure__", "__builtins__", "__subclasses__", "__dict__", "__file__",
                        "__loader__", "__spec__", "_getframe", "settrace", "setprofile", "meta_path", "path_hooks",
                        "addaudithook", "modules", "__setattr__", "__delattr__", "__getattribute__", "__reduce__",
                        "__reduce_ex__", "__import__",
                        # inspect's frame functions (inspect.signature and getsource are fine)
                        "stack", "currentframe", "getouterframes", "getinnerframes", "trace", "getframeinfo",
                        # running programs and listing folders (the hidden tests, other submissions)
                        "system", "popen", "spawnl", "spawnv", "spawnve", "spawnlp", "execv", "execve", "execl",
                        "execvp", "fork", "forkpty", "kill", "killpg", "walk", "listdir", "scandir", "glob", "rglob",
                        "iterdir"}
#: The magics an honest notebook uses; any other use of get_ipython() (``!cmd``, ``%run``, ``run_cell``) is flagged.
SAFE_MAGICS = {"time", "timeit", "matplotlib"}
#: Strings that name the grading machinery (the tests folder, the autograder, otter, its results), other
#: notebooks, or the process table.
FORBIDDEN_STRINGS = re.compile(r"(^|[/\\])tests([/\\]|$)|\bq\d+\.py\b|autograder|otter|results\.(json|pkl)|\.pkl\b"
                               r"|\.ipynb\b|/proc\b|cmdline|homework_checks", re.I)
INIT_LINES = re.compile(r'^\s*(import otter|grader = otter\.Notebook\([^()]*\))\s*$')
#: The init cell homework/build.py writes (otter's checks, else homework_checks.py): skipped as a whole.
INIT_CELL = re.compile(r'# Initialize the public checks: [^\n]*\ntry:\n    import otter\nexcept ModuleNotFoundError:'
                       r'[^\n]*\n    import homework_checks as otter\ngrader = otter\.Notebook\("[\w.-]+"\)')


def _python(source: str) -> str:
    """A cell's source as plain Python (``%time``, ``!ls`` and friends turned into calls IPython would make)."""
    from IPython.core.inputtransformer2 import TransformerManager

    return TransformerManager().transform_cell(source)


def scan_source(source: str) -> list[str]:
    """What in one cell's source an honest answer does not need (empty list: nothing)."""
    if INIT_CELL.fullmatch(source.strip()):
        return []
    kept = "\n".join("" if INIT_LINES.match(line) else line for line in source.splitlines())
    try:
        tree = ast.parse(_python(kept))
        return _scan_tree(tree)
    except SyntaxError:
        return []  # a cell that does not parse cannot run either; otter reports the error
    except (RecursionError, MemoryError) as exc:
        return [f"line 1: too deeply nested for the scan to read ({type(exc).__name__}), so it is not run"]


def _safe_magic(node: ast.AST) -> bool:
    """``get_ipython().run_line_magic("time", ...)`` and friends: what ``%time`` / ``%%timeit`` become."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
            and node.func.attr in ("run_line_magic", "run_cell_magic") and bool(node.args)
            and isinstance(node.args[0], ast.Constant) and node.args[0].value in SAFE_MAGICS
            and isinstance(node.func.value, ast.Call) and isinstance(node.func.value.func, ast.Name)
            and node.func.value.func.id == "get_ipython")


def _scan_tree(tree: ast.AST) -> list[str]:
    imported: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            imported.update(a.asname or a.name for a in node.names)
    safe_ipython = {id(node.func.value) for node in ast.walk(tree) if _safe_magic(node)}
    found: list[str] = []

    def flag(node: ast.AST, why: str) -> None:
        found.append(f"line {getattr(node, 'lineno', '?')}: {why}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for name in names:
                if name.split(".")[0] in FORBIDDEN_MODULES:
                    flag(node, f"imports {name}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in FORBIDDEN_CALLS:
            if id(node) not in safe_ipython:
                flag(node, "runs code or a shell command the scan cannot read (get_ipython(): !cmd, %run, "
                           "run_cell)" if node.func.id == "get_ipython" else f"calls {node.func.id}()")
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
              and len(node.args) >= 2):
            name = node.args[1]
            if not (isinstance(name, ast.Constant) and isinstance(name.value, str)):
                flag(node, f"calls {node.func.id}() with a computed attribute name")
            elif name.value in FORBIDDEN_ATTRIBUTES or name.value.startswith("__"):
                flag(node, f"reads .{name.value} through {node.func.id}()")
        elif isinstance(node, ast.Attribute) and node.attr in FORBIDDEN_ATTRIBUTES:
            flag(node, f"uses .{node.attr}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and FORBIDDEN_STRINGS.search(node.value):
            flag(node, f"names the grading files in {node.value[:40]!r}")
        elif isinstance(node, ast.Name) and node.id in {"__builtins__", "__import__"}:
            flag(node, f"uses {node.id}")
        if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign | ast.Delete):
            targets = node.targets if isinstance(node, ast.Assign | ast.Delete) else [node.target]
            leaves = list(targets)
            while any(isinstance(t, ast.Tuple | ast.List | ast.Starred) for t in leaves):
                leaves = [e for t in leaves for e in (t.elts if isinstance(t, ast.Tuple | ast.List) else
                                                      [t.value] if isinstance(t, ast.Starred) else [t])]
            for target in leaves:
                # Setting an attribute of something imported (a module, a class, a function) or of grader;
                # an item of a module's mapping (plt.rcParams[...], os.environ[...]) is an honest setting.
                if isinstance(target, ast.Attribute):
                    root = target
                    while isinstance(root, ast.Attribute | ast.Subscript | ast.Call):
                        root = root.func if isinstance(root, ast.Call) else root.value
                    if isinstance(root, ast.Name) and (root.id in imported or root.id == "grader"):
                        flag(node, f"assigns to an attribute of {root.id} "
                                   f"({'the grader' if root.id == 'grader' else 'imported'})")
    allowed = {id(node.func.value) for node in ast.walk(tree)
               if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check"
               and isinstance(node.func.value, ast.Name) and node.func.value.id == "grader" and not node.keywords
               and len(node.args) == 1 and isinstance(node.args[0], ast.Constant)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "grader" and id(node) not in allowed:
            flag(node, 'uses grader other than grader.check("...")')
    return sorted(set(found), key=found.index)


def scan(nb) -> list[str]:
    """Every suspicious line of a notebook's code cells, as ``cell N, line M: why`` (empty list: clean)."""
    found = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            found += [f"cell {index}, {why}" for why in scan_source(cell.source)]
    return found


def with_canary(zip_path: Path, folder: Path) -> Path:
    """A copy of the autograder zip with the always-failing canary test added; the original stays untouched."""
    copy = folder / zip_path.name
    shutil.copyfile(zip_path, copy)
    with zipfile.ZipFile(copy, "a") as z:
        z.writestr(f"tests/{CANARY}.py", CANARY_TEST)
    return copy
