"""What `edgetl select` needs from a task: the task's `select_*` slots, found by the recipe's
task name (`edgetl.tasks`).

A task plugs in with its slots: its default candidate input sizes, a function that writes an
untrained checkpoint of a candidate (the network exported for latency, with the weights' own
spec), a function that scores a trained candidate's best checkpoint on the validation split
with the selection metric and its interval, and the selection metrics that function can score.
Classification has its functions; the dense tasks share `dense.py` for theirs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgetl import tasks
from edgetl.errors import UsageError


@dataclass(frozen=True)
class SelectTask:
    sizes: tuple[int, ...]  # default candidate input sizes (pixels, square)
    probe: str  # "module:function(recipe, record, folder, data) -> PreprocessSpec"
    score: str  # "module:function(run_dir, metric, device) -> dict"
    metrics: tuple[str, ...]  # the selection metrics `score` can score with an interval

    def probe_fn(self) -> Callable[..., Any]:
        return tasks.load_ref(self.probe)

    def score_fn(self) -> Callable[..., Any]:
        return tasks.load_ref(self.score)


def task_for(task: str) -> SelectTask:
    """The row of `task` (its select slots), or one line saying select does not cover it yet
    (exit 2)."""
    definition = tasks.get(task, UsageError(
        f"edgetl select does not support {task} recipes in this version (classification, "
        "detection, semantic and instance only)",
        f"train {task} candidates with edgetl finetune and compare them with edgetl "
        "evaluate and edgetl bench"))
    return SelectTask(sizes=definition.select_sizes, probe=definition.select_probe,
                      score=definition.select_score, metrics=definition.select_interval_metrics)


def check_metric(row: SelectTask, task: str, metric: str) -> None:
    """Refuse (exit 2, before any work) a selection metric the task's row cannot score."""
    if metric not in row.metrics:
        raise UsageError(f"edgetl select cannot score {task} candidates on {metric} with an "
                         "interval", f"set train.select_metric to one of "
                         f"{', '.join(row.metrics)}")

