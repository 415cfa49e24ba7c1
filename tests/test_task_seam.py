"""The task seam: every task fills every slot, and only edgetl/tasks/ spells a task's name.

A layer asks the task (`edgetl.tasks.get(name)`) what it needs; a branch on a task's name, or a
table keyed by it, anywhere else is the spread this test keeps out.
"""

from __future__ import annotations

import ast
from dataclasses import fields
from pathlib import Path

import pytest

from edgetl import tasks

ROOT = Path(__file__).resolve().parents[1] / "edgetl"
TASK_NAMES = ("classification", "detection", "semantic", "instance")
# Files that may spell a task's name as a bare string: the definitions themselves.
ALLOWED_FILES = ("tasks/",)


def test_the_four_tasks_are_defined_in_their_own_modules() -> None:
    assert tasks.names() == TASK_NAMES
    for name in TASK_NAMES:
        assert tasks.get(name).name == name
        assert (ROOT / "tasks" / f"{name}.py").is_file()


@pytest.mark.parametrize("name", TASK_NAMES)
def test_every_task_fills_every_slot(name: str) -> None:
    task = tasks.get(name)
    code = task.code_slots()
    assert code, "a task names code for its layers"
    for slot, ref in code.items():
        assert ":" in ref, f"{name}.{slot} is not a 'module:attr' string: {ref!r}"
        assert callable(task.load(slot)), f"{name}.{slot} -> {ref} is not callable"
    for f in fields(task):
        value = getattr(task, f.name)
        if f.name != "extra":
            assert value not in (None, "", ()), f"{name} leaves {f.name} empty"


def test_an_unknown_task_is_one_line_naming_the_known_ones() -> None:
    from edgetl.errors import UsageError

    with pytest.raises(UsageError) as caught:
        tasks.get("keypoints")
    assert caught.value.one_line() == ("unknown task 'keypoints' (use one of classification, "
                                       "detection, semantic, instance)")


def _task_name_literals(path: Path) -> list[int]:
    """Lines where a string constant is exactly a task's name (f-string parts and docstrings,
    which are messages and prose, are not)."""
    tree = ast.parse(path.read_text())
    joined = {id(v) for node in ast.walk(tree) if isinstance(node, ast.JoinedStr)
              for v in node.values}
    docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                  if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef,
                                       ast.ClassDef))
                  and node.body and isinstance(node.body[0], ast.Expr)}
    return sorted({node.lineno for node in ast.walk(tree)
                   if isinstance(node, ast.Constant) and node.value in TASK_NAMES
                   and id(node) not in joined and id(node) not in docstrings})


def test_no_module_outside_the_tasks_spells_a_task_name() -> None:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ALLOWED_FILES):
            continue
        found += [f"edgetl/{rel}:{line}" for line in _task_name_literals(path)]
    assert not found, "ask edgetl.tasks instead of naming a task:\n" + "\n".join(found)
