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
from edgetl.runfolder import SUMMARY_FILE, TEST_REPORT_FILE
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
    time_budget_s: float | None = None,
) -> RunResult:
    """Train the recipe's phases into `out`; returns the test report of the best checkpoint.
    `time_budget_s`: a wall-clock budget the phases are sized to (`edgetl.train.budget`)."""
    if resume and (finished := finished_run(Path(out))) is not None:
        return finished
    try:
        trainer = trainer_for(recipe)(recipe, Path(out), device=device, resume=resume,
                                      console=console or Console(),
                                      time_budget_s=time_budget_s)
        return trainer.run()
    except BaseException:  # failed or interrupted before its first epoch: nothing blocks a retry
        discard_failed_start(Path(out))
        discard_partial_report(Path(out))
        raise


def finished_run(out: Path) -> RunResult | None:
    """`--resume` of a run that finished (its summary.json, written last, is there): say so
    and change nothing (exit 0: the run is in the state asked for); the stored results, or
    None when the run is not finished."""
    import json
    import warnings

    def read(name: str) -> dict[str, Any]:
        try:
            data = json.loads((out / name).read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    if not (out / SUMMARY_FILE).is_file():
        return None
    summary = read(SUMMARY_FILE)
    best = summary.get("best_epoch")
    warnings.warn(f"{out} is a finished run (summary.json, best epoch {best}): nothing to "
                  "resume, nothing was changed; to train again, start a new run with another "
                  "--out", stacklevel=2)
    metric = (summary.get("selection") or {}).get("metric")
    return RunResult(out, read(TEST_REPORT_FILE), best,
                     summary.get(metric) if metric else None,
                     float(summary.get("train_seconds") or 0.0))
