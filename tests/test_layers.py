"""The package's shape, read from its source: layers that only point down, no cycle, one public face.

Issue 10: the helpers had import cycles held apart by 44 function-level imports (one of them ended the Azure
setup in a RecursionError), and nine modules over 300 lines. This test reads every ``import`` in helpers/
(module level and inside functions) with :mod:`ast`, so a new upward import or a cycle
fails here with the file and line to look at. (The line cap of issue 10 was dropped by issue 20: one concept,
one module, whatever its length; docs/ARCHITECTURE.md draws the layers.)
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "helpers"

#: Lowest first. A module may import modules of its own layer or below, never above. docs/ARCHITECTURE.md draws
#: the same.
LAYERS: list[tuple[str, ...]] = [
    ("errors", "local", "redaction", "notices", "writing", "injection"),  # no course imports (but errors), nothing to decide
    ("models",),                                              # names: the default, aliases, reasoning, retirements
    ("model_costs",),                                         # per-model image-token constants and prices
    ("tokens",),                                              # image and text token maths
    ("course_images", "image_metadata", "images"),            # the course's images; metadata and colour; load/prepare
    ("ocr", "compare", "video", "azure", "recordings"),       # local OCR, image differences, frames, Azure, recordings
    ("config",),                                              # the environment, read once into Settings/ServerSettings
    ("offline",),                                             # the embedded backend (helpers.offline.*)
    ("client",),                                              # the SDK client, raw endpoints, the SDK's errors translated
    ("chat", "structured", "conversation"),                   # requests and their parts, JSON, history and save files
    ("display", "evaluation"),                                # presentation, and evaluation runs, metrics and reports
    ("teacher", "course", "__init__"),                        # teacher tools (helpers.teacher.*) and the public surface
]
RANK = {name: rank for rank, names in enumerate(LAYERS) for name in names}

#: Imports allowed inside functions: heavy or optional modules that most lessons never need.
LAZY_OK = ("helpers.ocr", "helpers.video", "helpers.offline", "matplotlib", "cv2", "av", "rapidocr",
           "onnxruntime", "IPython", "ipywidgets", "imagehash", "dotenv", "uvicorn", "starlette", "bpe_openai",
           "nbformat", "nbclient", "runpy")



@dataclass(frozen=True)
class Import:
    source: str          # importing module, e.g. "helpers.chat"
    target: str          # imported module, e.g. "helpers.client"
    line: int
    lazy: bool           # inside a function
    type_only: bool      # under `if TYPE_CHECKING:`


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer_of(module: str) -> str:
    """``helpers.offline.app`` -> ``offline``; ``helpers`` -> ``__init__``; ``helpers.chat`` -> ``chat``."""
    parts = module.split(".")
    return "__init__" if len(parts) == 1 else parts[1]


def imports_of(path: Path) -> list[Import]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    source = module_name(path)
    found: list[Import] = []

    def visit(node: ast.AST, lazy: bool, type_only: bool) -> None:
        for child in ast.iter_child_nodes(node):
            child_lazy = lazy or isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef)
            child_type_only = type_only or (isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
            if isinstance(child, ast.Import):
                found.extend(Import(source, alias.name, child.lineno, lazy, type_only) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                if child.level:  # relative: resolve against the package
                    base = source.split(".")[: -child.level + (1 if path.name == "__init__.py" else 0) or None]
                    target = ".".join([*base, child.module] if child.module else base)
                else:
                    target = child.module or ""
                names = [f"{target}.{a.name}" for a in child.names]
                # `from helpers import models` imports the module helpers.models
                for name in names:
                    as_module = name if (PACKAGE.parent / (name.replace(".", "/") + ".py")).exists() \
                        or (PACKAGE.parent / name.replace(".", "/")).is_dir() else target
                    found.append(Import(source, as_module, child.lineno, lazy, type_only))
            visit(child, child_lazy, child_type_only)

    visit(tree, False, False)
    return found


SOURCES = sorted(PACKAGE.rglob("*.py"))
ALL_IMPORTS = [imp for path in SOURCES for imp in imports_of(path)]
COURSE_IMPORTS = [imp for imp in ALL_IMPORTS if imp.target == "helpers" or imp.target.startswith("helpers.")]


def test_every_module_has_a_layer():
    missing = sorted({layer_of(module_name(p)) for p in SOURCES} - set(RANK))
    assert not missing, f"add these modules to LAYERS in tests/test_layers.py (and docs/ARCHITECTURE.md): {missing}"


def test_imports_only_point_down():
    upward = []
    for imp in COURSE_IMPORTS:
        if imp.type_only or imp.target == "helpers":
            continue
        src, dst = layer_of(imp.source), layer_of(imp.target)
        if src == dst:
            continue
        if RANK.get(dst, -1) > RANK.get(src, 99):
            upward.append(f"{imp.source} (line {imp.line}) imports {imp.target}: {src} is below {dst}")
    assert not upward, "upward imports:\n" + "\n".join(upward)


def test_no_import_cycle():
    graph: dict[str, set[str]] = {}
    for imp in COURSE_IMPORTS:
        if not imp.type_only and imp.target != imp.source and imp.target != "helpers":
            graph.setdefault(imp.source, set()).add(imp.target)
    # A package's __init__ imported by its own submodules is the normal Python shape, not a cycle of ours.
    state: dict[str, int] = {}
    stack: list[str] = []
    cycles: list[str] = []

    def walk(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if node.startswith(nxt + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt):], nxt]))
            elif state.get(nxt) is None:
                walk(nxt)
        stack.pop()
        state[node] = 2

    for module in sorted(graph):
        if state.get(module) is None:
            walk(module)
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_function_level_imports_are_only_for_heavy_optional_modules():
    odd = [f"{imp.source} (line {imp.line}): {imp.target}" for imp in ALL_IMPORTS
           if imp.lazy and not imp.type_only and not imp.target.startswith(LAZY_OK)
           and imp.target.split(".")[0] in {"helpers", *_third_party()}]
    assert not odd, "import these at module level (only heavy optional modules are imported late):\n" + "\n".join(odd)


def _third_party() -> set[str]:
    return {"openai", "numpy", "PIL", "requests", "httpx", "pydantic", "rapidfuzz", "anyio"}


#: Where lessons may import the course from: the public face, and the three heavy concepts that have their own
#: public module (helpers/__init__.py says why). Never the offline server's internals.
PUBLIC_PLACES = {"helpers", "helpers.ocr", "helpers.video", "helpers.evaluation"}
NOTEBOOKS = sorted((PACKAGE.parent / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _lesson_imports(path: Path) -> set[str]:
    import json

    found = set()
    for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
        if cell["cell_type"] != "code":
            continue
        source = "\n".join(line for line in "".join(cell["source"]).splitlines()
                           if not line.lstrip().startswith(("!", "%")))
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "helpers":
                found.add(node.module)
                if node.module == "helpers":   # `from helpers import models` imports a module, not a public name
                    found.update(f"helpers.{a.name}" for a in node.names
                                 if (PACKAGE / f"{a.name}.py").exists() or (PACKAGE / a.name).is_dir())
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name.split(".")[0] == "helpers")
    return found


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.name for p in NOTEBOOKS])
def test_lessons_import_only_the_public_face(path):
    """Issue 20: a lesson imports names from at most four public places, never a module of the package."""
    odd = sorted(_lesson_imports(path) - PUBLIC_PLACES)
    assert not odd, f"{path.name} imports {odd}; import those names from `helpers` (helpers/__init__.py)"


def test_the_public_face_has_every_name_it_lists():
    import helpers

    missing = [name for name in helpers.__all__ if not hasattr(helpers, name)]
    assert not missing and len(set(helpers.__all__)) == len(helpers.__all__), missing


#: Issue 20: the server sits behind one door. Outside helpers/offline only these import it (any of its modules,
#: at module level, inside a function or for typing): ``client`` starts it (``ensure_server``), and the teacher's
#: class cost runs a counting backend in-process. At most two.
SERVER_IMPORTERS = {"helpers.client", "helpers.teacher.class_cost"}


def test_at_most_two_modules_outside_the_server_import_it():
    importers = {imp.source for imp in COURSE_IMPORTS
                 if (imp.target == "helpers.offline" or imp.target.startswith("helpers.offline."))
                 and layer_of(imp.source) != "offline"}
    assert importers == SERVER_IMPORTERS and len(importers) <= 2, (
        f"modules outside helpers/offline importing it: {sorted(importers)}; reach the server through "
        "helpers.client (ensure_server), take its settings from helpers.config and the recording format from "
        "helpers.recordings")


def test_the_layer_test_sees_imports():
    """The checks above are only worth something if the reader finds imports: spot-check known ones."""
    pairs = {(imp.source, imp.target) for imp in COURSE_IMPORTS}
    assert ("helpers.client", "helpers.config") in pairs
    assert ("helpers.tokens", "helpers.model_costs") in pairs
    assert any(imp.lazy for imp in ALL_IMPORTS)     # and the lazy ones too
