"""The phased fine-tuning run: data -> split -> model -> phases A/B/C -> checkpoints -> test report.

Resumable: every finished epoch leaves `last/` (weights, optimizer, phase/epoch state) complete on
disk, and `--resume` rebuilds the phase's frozen state from the recipe before loading it, so a
resumed run never trains what the recipe froze (the failure Lightning #21901 describes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Console

from edgetl.recipe import Recipe
from edgetl.train.result import RunResult
from edgetl.train.resume import discard_failed_start, discard_partial_report
from edgetl.train.trainer import trainer_for

__all__ = ["RunResult", "run_finetune"]


def run_finetune(
    recipe: Recipe,
    out: str | Path,
    *,
    device: str = "auto",
    resume: bool = False,
    console: Any = None,
) -> RunResult:
    """Train the recipe's phases into `out`; returns the test report of the best checkpoint."""
    try:
        trainer = trainer_for(recipe)(recipe, Path(out), device=device, resume=resume,
                                      console=console or Console())
        return trainer.run()
    except BaseException:  # failed or interrupted before its first epoch: nothing blocks a retry
        discard_failed_start(Path(out))
        discard_partial_report(Path(out))
        raise
