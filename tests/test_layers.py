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
