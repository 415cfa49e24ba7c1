"""What a run tells: its opening lines, one line per epoch, and at the end the test report of
the best checkpoint and summary.json.

Apart from trainer.py so its spine reads as phases and epochs; it takes what it needs as
arguments, the trainer (a `PhasedTrainer`) among them (trainer.py imports this module, so this
one must not import it back).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from edgetl.data.detection.small import small_objects, small_objects_advice
from edgetl.data.detection.which import reads_objects
from edgetl.evaluate.plots import plot_curves
from edgetl.evaluate.report import evaluate_checkpoint
from edgetl.io import atomic_write_json
from edgetl.runfolder import RunFolder
from edgetl.train.advice import SMALL_OBJECTS, STILL_IMPROVING, add_advice, still_improving_advice
from edgetl.train.selection import ValidationSize, rule_words
from edgetl.train.state import TrainState


def announce(trainer: Any) -> None:
    """The run's opening lines: recipe, task, data sizes, device, spec and selection rule."""
    recipe, console, spec = trainer.recipe, trainer.console, trainer.spec
    console.print(
        f"[bold]edgetl finetune[/] {recipe.name}: {recipe.task} with "
        f"{recipe.model.architecture} on {recipe.data.source} ({len(trainer.train_s)} train / "
        f"{len(trainer.val_s)} val / {len(trainer.data.by_split('test'))} test), device "
        f"{trainer.dev}")
    console.print(f"spec {spec.short_fingerprint()}: "
                  + "; ".join(spec.describe().splitlines()[:3]))
    console.print(f"selection: {rule_words(trainer.select)} ({trainer.select_why}); "
                  f"{trainer.val_size.images} validation images", markup=False)
    if reads_objects(recipe.task):
        counts = small_objects(trainer.data.samples, min(spec.input_size),
                               spec.tile.size if spec.tile is not None else None)
        add_advice(trainer, SMALL_OBJECTS, small_objects_advice(counts))
    if trainer.budget.active:
        console.print(f"time budget {trainer.budget.deadline.seconds:g} s (set-up, phases, "
                      "validation; not the test report): phases sized from the measured step "
                      "time", markup=False)


def print_epoch(console: Any, select: str, line: dict[str, Any]) -> None:
    """One epoch's line: its training loss, its selection metric and its throughput."""
    val = f" {select} {line[select]:.4f}" if select in line else ""
    console.print(f"  epoch {line['epoch']:>3} (phase {line['phase']}) train_loss "
                  f"{line['train_loss']:.4f}{val}  {line['images_per_s']:.0f} img/s")


def finish(trainer: Any, fit_seconds: float) -> dict[str, Any]:
    """The test report (its warnings become the run's) and summary.json; the report."""
    used_s = trainer.budget.deadline.elapsed()  # the time budget's span ends here
    report = write_test_report(trainer.out, trainer.run_folder, trainer.dev)
    for note in trainer.report_warnings(report):
        trainer._warn(note)
    lines = [json.loads(x) for x in trainer.run_folder.metrics_path.read_text().splitlines()
             if x.strip()] if trainer.run_folder.metrics_path.is_file() else []
    final = next((p for p in trainer.recipe.phases if lines and p.name == lines[-1]["phase"]),
                 None)
    if final is not None:
        add_advice(trainer, STILL_IMPROVING, still_improving_advice(
            lines, trainer.select, final, trainer.budget.deadline.seconds))
    write_summary(
        trainer.run_folder.summary_path, state=trainer.state, select=trainer.select,
        select_why=trainer.select_why, val_size=trainer.val_size,
        spec_fingerprint=trainer.spec.fingerprint(), train_seconds=trainer.train_seconds,
        fit_seconds=fit_seconds, started=trainer.start,
        test_figures=trainer.summary_of(report), on_spike=trainer.recipe.train.on_spike,
        notes=trainer.notes, time_budget=trainer.budget.record(used_s, fit_seconds),
        advice=trainer.advice)
    return report


def write_test_report(out: Path, run_folder: RunFolder, device: str) -> dict[str, Any]:
    """The curves, then the best checkpoint scored on the test split (test_report.json)."""
    plot_curves(run_folder.metrics_path, run_folder.curves_path)
    report = evaluate_checkpoint(out, split="test", device=device)
    atomic_write_json(run_folder.test_report_path, report)
    return report


def write_summary(path: Path, *, state: TrainState, select: str, select_why: str,
                  val_size: ValidationSize, spec_fingerprint: str, train_seconds: float,
                  fit_seconds: float, started: float, test_figures: dict[str, Any],
                  on_spike: str, notes: list[str],
                  time_budget: dict[str, Any] | None = None,
                  advice: list[dict[str, str]] | None = None) -> None:
    """summary.json: the best epoch, the timings, the task's test figures, the selection, the
    spikes and the run's warnings (`started`: the run's perf_counter start)."""
    atomic_write_json(path, {
        "best_epoch": state.best_epoch, select: state.best_value,
        "train_seconds": round(train_seconds, 2),
        # phases end to end: training, validation and checkpoints (no decode, no test)
        "fit_seconds": round(fit_seconds, 2),
        "wall_seconds": round(time.perf_counter() - started, 2),
        **test_figures, "stopped_early": state.stopped_early,
        # each phase that ran: its optimiser steps and epochs, and why it ended
        "phases": state.phases,
        # --time-budget: the budget, the seconds it covered and the rule on resume (or null)
        "time_budget": time_budget,
        "spec_fingerprint": spec_fingerprint,
        "selection": {"metric": select, "chosen_by": select_why,
                      "rule": rule_words(select), "best_val_loss": state.best_loss},
        "validation": val_size.to_dict(),
        "spikes": state.spikes, "on_spike": on_spike,
        "warnings": notes,
        # the warnings that say what to do next, as {code, message} (edgetl/train/advice.py)
        "advice": advice or [],
    })
