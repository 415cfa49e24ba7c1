"""The end of a run: the test report of the best checkpoint and summary.json.

Apart from trainer.py so its spine reads as phases and epochs; it takes what it needs as
arguments (trainer.py imports this module, so this one must not import it back).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgetl.evaluate.plots import plot_curves
from edgetl.evaluate.report import evaluate_checkpoint
from edgetl.io import atomic_write_json
from edgetl.runfolder import RunFolder
from edgetl.train.selection import ValidationSize, rule_words
from edgetl.train.state import TrainState


def write_test_report(out: Path, run_folder: RunFolder, device: str) -> dict[str, Any]:
    """The curves, then the best checkpoint scored on the test split (test_report.json)."""
    plot_curves(run_folder.metrics_path, run_folder.curves_path)
    report = evaluate_checkpoint(out, split="test", device=device)
    atomic_write_json(run_folder.test_report_path, report)
    return report


def write_summary(path: Path, *, state: TrainState, select: str, select_why: str,
                  val_size: ValidationSize, spec_fingerprint: str, train_seconds: float,
                  fit_seconds: float, started: float, test_figures: dict[str, Any],
                  on_spike: str, notes: list[str]) -> None:
    """summary.json: the best epoch, the timings, the task's test figures, the selection, the
    spikes and the run's warnings (`started`: the run's perf_counter start)."""
    atomic_write_json(path, {
        "best_epoch": state.best_epoch, select: state.best_value,
        "train_seconds": round(train_seconds, 2),
        # phases end to end: training, validation and checkpoints (no decode, no test)
        "fit_seconds": round(fit_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        **test_figures, "stopped_early": state.stopped_early,
        "spec_fingerprint": spec_fingerprint,
        "selection": {"metric": select, "chosen_by": select_why,
                      "rule": rule_words(select), "best_val_loss": state.best_loss},
        "validation": val_size.to_dict(),
        "spikes": state.spikes, "on_spike": on_spike,
        "warnings": notes,
    })
