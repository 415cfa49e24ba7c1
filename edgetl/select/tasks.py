"""What `edgetl select` needs from a task, looked up by the recipe's task name.

A task plugs in with one row: its default candidate input sizes, a function that writes an
untrained checkpoint of a candidate (the network exported for latency, with the weights' own
spec), and a function that scores a trained candidate's best checkpoint on the validation split
with the selection metric and its interval. Classification has its row; the dense tasks would
add theirs (sizes 256-512, validation mAP/mIoU with the bootstrap intervals their evaluators
already compute) without touching the steps in `run.py`.
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

    def probe_fn(self) -> Callable[..., Any]:
        return _load(self.probe)

    def score_fn(self) -> Callable[..., Any]:
        return _load(self.score)


TASKS: dict[str, SelectTask] = {
    "classification": SelectTask(
        sizes=(160, 224, 288),
        probe="edgetl.select.classification:untrained_checkpoint",
        score="edgetl.select.classification:score_on_validation",
    ),
}
# Where the dense tasks' candidate sizes would start (the issue's 256-512).
PLANNED_SIZES = {"detection": (256, 320, 384, 512), "semantic": (256, 320, 384, 512),
                 "instance": (256, 320, 384, 512)}


def task_for(task: str) -> SelectTask:
    """The row of `task`, or one line saying select does not cover it yet (exit 2)."""
    if task not in TASKS:
        raise UsageError(
            f"edgetl select does not support {task} recipes in this version (classification "
            "only)", f"train {task} candidates with edgetl finetune and compare them with "
            "edgetl evaluate and edgetl bench")
    return TASKS[task]


def _load(target: str) -> Callable[..., Any]:
    module, _, name = target.partition(":")
    return getattr(importlib.import_module(module), name)
