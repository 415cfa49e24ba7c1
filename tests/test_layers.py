"""The package's import structure: no cycles, the deployment side never reaches training or the
exporters, and the artifact contract stands on its own.

Imports inside functions count too (they are edges the moment the function runs).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "edgetl"
DEPLOYMENT = ("edgetl.runtime", "edgetl.predict")
# what runs artifacts depends on the artifact contract (edgetl.artifact), never on what builds them
ARTIFACT_USERS = ("edgetl.runtime", "edgetl.predict", "edgetl.bench")
ARTIFACT_MODULES = ("manifest", "formats", "reference", "postprocess")

# The order docs/ARCHITECTURE.md shows, lowest first: a top-level module or package may import
# only what stands at its own layer or below (imports inside functions count). Within a layer
# the no-cycle tests keep the order; the deployment tests below keep predict and bench off
# export and train.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("edgetl", "errors", "io", "interrupt", "tasks", "task_record", "tiling", "spec",
     "geometry", "decision", "devices", "clock"),
    ("recipe", "recipe_sections", "recipe_keys", "artifact", "data", "checkpoint", "metrics",
     "models"),
    ("runtime",),
    ("runfolder",),
    ("predict", "evaluate", "export", "bench", "verify", "train"),
    ("device",),  # the bundle builds on verify; its runner copies only what it imports
    ("select",),
    ("cli",),
)
# (importer, imported): an import against the order, and why it is allowed. None today.
ALLOWED_UPWARD: dict[tuple[str, str], str] = {}


def _package_of(module: str, root: Path = ROOT) -> str:
    parts = module.split(".")
    if len(parts) >= 2 and (root / parts[1]).is_dir():
        return ".".join(parts[:2])
    return module


def _edges(module_level_only: bool = False, root: Path = ROOT) -> dict[str, set[str]]:
    """package -> the edgetl packages it imports (only the top-level statements' imports with
    `module_level_only`, else every import, inside functions included)."""
    graph: dict[str, set[str]] = {}
    for path in root.rglob("*.py"):
        module = ".".join(path.relative_to(root.parent).with_suffix("").parts)
        source = _package_of(module.removesuffix(".__init__"), root)
        tree = ast.parse(path.read_text())
        for node in tree.body if module_level_only else ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [node.module]
            else:
                continue
            for name in names:
                target = _package_of(name, root)
                if name.startswith("edgetl.") and target != source:
                    graph.setdefault(source, set()).add(target)
    return graph


def _module_name(path: Path, root: Path) -> str:
    return ".".join(path.relative_to(root.parent).with_suffix("").parts).removesuffix(".__init__")


def _module_edges(root: Path = ROOT) -> dict[str, set[str]]:
    """module -> the edgetl modules it imports, at module level or inside functions.

    `from edgetl.a import b` is an edge to `edgetl.a.b` when that is a module, else to
    `edgetl.a`; a module's own package `__init__` is not an edge unless imported by name."""
    modules = {_module_name(path, root): path for path in root.rglob("*.py")}

    def known(name: str) -> str:
        while name not in modules and "." in name:
            name = name.rpartition(".")[0]
        return name

    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names = [f"{node.module}.{alias.name}" for alias in node.names]
            else:
                continue
            for name in names:
                target = known(name)
                if target.split(".")[0] == "edgetl" and target in modules and target != module:
                    graph.setdefault(module, set()).add(target)
    return graph


def _layer_of(name: str) -> int:
    top = name.split(".")[1] if "." in name else name
    for index, layer in enumerate(LAYERS):
        if top in layer:
            return index
    raise AssertionError(f"edgetl.{top} is in no layer of LAYERS: add it where it belongs")


def _upward(graph: dict[str, set[str]]) -> list[str]:
    """Every import of a higher layer not listed in ALLOWED_UPWARD, as 'a -> b'."""
    found = []
    for source, targets in sorted(graph.items()):
        for target in sorted(targets):
            pair = (source.removeprefix("edgetl."), target.removeprefix("edgetl."))
            if _layer_of(target) > _layer_of(source) and pair not in ALLOWED_UPWARD:
                found.append(f"{source} -> {target}")
    return found


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    found: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, stack: list[str]) -> None:
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                found.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in done:
                visit(nxt, [*stack, nxt])
        done.add(node)

    for node in sorted(graph):
        if node not in done:
            visit(node, [node])
    return found


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        for nxt in graph.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_no_import_cycles_between_packages() -> None:
    assert _cycles(_edges()) == []


def test_no_import_cycles_between_modules() -> None:
    assert _cycles(_module_edges()) == []


def test_module_graph_sees_cycles_closed_inside_functions(tmp_path: Path) -> None:
    root = tmp_path / "edgetl"
    (root / "train").mkdir(parents=True)
    (root / "train" / "__init__.py").write_text("")
    (root / "train" / "a.py").write_text("from edgetl.train.b import B\n")
    (root / "train" / "b.py").write_text("def f():\n    from edgetl.train import a\n")
    assert _cycles(_module_edges(root)) == [["edgetl.train.a", "edgetl.train.b",
                                             "edgetl.train.a"]]


def test_every_package_imports_only_its_layer_or_below() -> None:
    graph = _edges()
    for source in {*graph, *(t for targets in graph.values() for t in targets)}:
        _layer_of(source)  # every module and package has a place
    assert _upward(graph) == []


def test_every_package_has_a_layer() -> None:
    tops = {path.stem if path.is_file() else path.name for path in ROOT.iterdir()
            if path.suffix == ".py" and path.stem != "__init__" or (path / "__init__.py").is_file()}
    placed = {name for layer in LAYERS for name in layer} - {"edgetl"}
    assert tops == placed


def test_layer_check_refuses_a_planted_upward_import(tmp_path: Path) -> None:
    root = tmp_path / "edgetl"
    for package in ("runtime", "train"):
        (root / package).mkdir(parents=True)
        (root / package / "__init__.py").write_text("")
    (root / "runtime" / "late.py").write_text("def f():\n    import edgetl.train.loop\n")
    assert _upward(_edges(root=root)) == ["edgetl.runtime -> edgetl.train"]


def test_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == [["a", "b", "c", "a"]]


def test_deployment_side_never_reaches_training_code() -> None:
    graph = _edges()
    for module in DEPLOYMENT:
        reach = _reachable(graph, module)
        assert "edgetl.train" not in reach, f"{module} reaches edgetl.train via {sorted(reach)}"
        assert "edgetl.cli" not in reach


def test_runtime_predict_and_bench_never_reach_export_or_training() -> None:
    graph = _edges()
    for module in ARTIFACT_USERS:
        reach = _reachable(graph, module)
        for banned in ("edgetl.export", "edgetl.train"):
            assert banned not in reach, f"{module} reaches {banned} via {sorted(reach)}"


def test_reach_check_sees_imports_inside_functions(tmp_path: Path) -> None:
    root = tmp_path / "edgetl"
    for package in ("runtime", "export", "artifact"):
        (root / package).mkdir(parents=True)
    (root / "runtime" / "late.py").write_text(
        "def f():\n    from edgetl.artifact.formats import FORMATS\n")
    (root / "artifact" / "formats.py").write_text(
        "import edgetl.errors\n\ndef g():\n    import edgetl.export.onnx_fp32\n")
    assert "edgetl.export" in _reachable(_edges(root=root), "edgetl.runtime")
    assert _reachable(_edges(module_level_only=True, root=root), "edgetl.runtime") == set()
    assert _edges(module_level_only=True, root=root) == {"edgetl.artifact": {"edgetl.errors"}}


def test_artifact_contract_imports_no_exporter_trainer_runtime_or_torch() -> None:
    module_level = _edges(module_level_only=True)
    reach = _reachable(module_level, "edgetl.artifact")
    assert not reach & {"edgetl.export", "edgetl.train", "edgetl.runtime"}, sorted(reach)
    modules = ", ".join(f"edgetl.artifact.{name}" for name in ARTIFACT_MODULES)
    code = (f"import sys, edgetl.artifact, {modules}; "
            "print(sorted({m.split('.')[0] if not m.startswith('edgetl.') else "
            "'.'.join(m.split('.')[:2]) for m in sys.modules}))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=ROOT.parent, capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    loaded = set(ast.literal_eval(proc.stdout.strip()))
    assert "edgetl.artifact" in loaded
    assert not loaded & {"torch", "torchvision", "timm", "onnxruntime", "edgetl.export",
                         "edgetl.train", "edgetl.runtime"}, sorted(loaded)
