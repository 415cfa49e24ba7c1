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


# --- a fifth task, defined in this module only, runs through the seam ----------------------

CALLS: list[str] = []


def read_twin(data: str, task: str, **kwargs: object) -> object:
    """The twin task's data reader: classification's, recorded."""
    from edgetl.data.sources import load_classification

    CALLS.append(f"read {task}")
    return load_classification(data, task, **kwargs)


def twin_deployable(model: object, raw: bool) -> tuple[object, tuple[str, ...], dict]:
    CALLS.append("deployable")
    return model, ("scores",), {"kind": "twin"}


def score_twin(run_dir: object, metric: str, device: str) -> dict:
    CALLS.append(f"score {metric}")
    return {"metric": metric, "value": 0.5}


@pytest.fixture
def twin() -> tasks.Task:
    """A task added from outside edgetl: classification's code with slots of its own."""
    from dataclasses import replace

    here = __name__
    task = replace(tasks.get("classification"), name="twin", min_classes=3,
                   split_file="twin-split.csv", data_reader=f"{here}:read_twin",
                   deployable=f"{here}:twin_deployable", select_score=f"{here}:score_twin",
                   select_sizes=(64,), select_interval_metrics=("val_accuracy",))
    CALLS.clear()
    tasks.register(task)
    yield task
    tasks.unregister("twin")


def test_a_task_added_in_its_own_module_runs_through_every_layer(tmp_path: Path,
                                                                 twin: tasks.Task) -> None:
    import numpy as np
    from imagegen import make_class_tree

    from edgetl.data.sources import load_data
    from edgetl.data.splitnames import split_file_name, split_file_names
    from edgetl.errors import SpecError
    from edgetl.evaluate.report import _evaluator
    from edgetl.models.deployable import deployable
    from edgetl.select.tasks import check_metric, task_for
    from edgetl.spec import TaskRecord

    assert "twin" in tasks.names()
    # data: the task's own reader reads the folder
    make_class_tree(tmp_path / "data", {"a": 3, "b": 3, "c": 3}, np.random.default_rng(0))
    data = load_data(str(tmp_path / "data"), task="twin")
    assert CALLS == ["read twin"] and sorted(data.classes) == ["a", "b", "c"]
    # the task record: the twin's own class minimum
    assert TaskRecord(names=("a", "b", "c"), task="twin").task == "twin"
    with pytest.raises(SpecError, match="twin needs at least 3 class"):
        TaskRecord(names=("a", "b"), task="twin")
    # the run folder's split file is the one the task names
    assert split_file_name("twin") == "twin-split.csv"
    assert "twin-split.csv" in split_file_names()
    # models: the task's deployable builds the artifact's module
    marker = object()
    assert deployable(marker, "twin") == (marker, ("scores",), {"kind": "twin"})
    # evaluate, train and verify take the code the task names
    assert _evaluator("checkpoint_evaluator", "twin") is twin.load("checkpoint_evaluator")
    from edgetl.train.trainer import trainer_for

    class _Recipe:
        task = "twin"

    assert trainer_for(_Recipe()) is twin.load("trainer")  # type: ignore[arg-type]
    # select: the twin's row, its sizes, its metrics
    row = task_for("twin")
    assert row.sizes == (64,) and row.score_fn()(None, "val_accuracy", "cpu") == {
        "metric": "val_accuracy", "value": 0.5}
    from edgetl.errors import UsageError

    with pytest.raises(UsageError, match="cannot score twin candidates on val_macro_f1"):
        check_metric(row, "twin", "val_macro_f1")
    assert CALLS == ["read twin", "deployable", "score val_accuracy"]
