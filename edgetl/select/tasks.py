"""What `edgetl select` needs from a task, looked up by the recipe's task name.

A task plugs in with one row: its default candidate input sizes, a function that writes an
untrained checkpoint of a candidate (the network exported for latency, with the weights' own
spec), a function that scores a trained candidate's best checkpoint on the validation split
with the selection metric and its interval, and the selection metrics that function can score.
Classification has its row; the dense tasks share `dense.py` for theirs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from edgetl.errors import UsageError


@dataclass(frozen=True)
class SelectTask:
    sizes: tuple[int, ...]  # default candidate input sizes (pixels, square)
    probe: str  # "module:function(recipe, record, folder, data) -> PreprocessSpec"
    score: str  # "module:function(run_dir, metric, device) -> dict"
    metrics: tuple[str, ...]  # the selection metrics `score` can score with an interval

    def probe_fn(self) -> Callable[..., Any]:
        return _load(self.probe)

    def score_fn(self) -> Callable[..., Any]:
        return _load(self.score)


TASKS: dict[str, SelectTask] = {
    "classification": SelectTask(
        sizes=(160, 224, 288),
        probe="edgetl.select.classification:untrained_checkpoint",
        score="edgetl.select.classification:score_on_validation",
        metrics=("val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss"),
    ),
    "detection": SelectTask(
        sizes=(256, 320, 384, 512),
        probe="edgetl.select.dense:untrained_checkpoint",
        score="edgetl.select.dense:score_on_validation",
        metrics=("val_map", "val_map50"),
    ),
    "semantic": SelectTask(
        sizes=(256, 320, 384, 512),
        probe="edgetl.select.dense:untrained_checkpoint",
        score="edgetl.select.dense:score_on_validation",
        metrics=("val_miou",),
    ),
    "instance": SelectTask(
        sizes=(256, 320, 384, 512),
        probe="edgetl.select.dense:untrained_checkpoint",
        score="edgetl.select.dense:score_on_validation",
        metrics=("val_mask_map", "val_map"),
    ),
}


def task_for(task: str) -> SelectTask:
    """The row of `task`, or one line saying select does not cover it yet (exit 2)."""
    if task not in TASKS:
        raise UsageError(
            f"edgetl select does not support {task} recipes in this version (classification, "
            "detection, semantic and instance only)",
            f"train {task} candidates with edgetl finetune and compare them with edgetl "
            "evaluate and edgetl bench")
    return TASKS[task]


def check_metric(row: SelectTask, task: str, metric: str) -> None:
    """Refuse (exit 2, before any work) a selection metric the task's row cannot score."""
    if metric not in row.metrics:
        raise UsageError(f"edgetl select cannot score {task} candidates on {metric} with an "
                         "interval", f"set train.select_metric to one of "
                         f"{', '.join(row.metrics)}")


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
