"""The spike guard: a phase whose first epochs undo the previous phase is rolled back.

Why: when a phase unfreezes layers, its first epochs can throw away what the previous phase
learnt: the newly trainable blocks switch their batch-norm layers from the running statistics
the head was trained on to batch statistics (the head's inputs move at once), and a learning
rate (or a warm-up) fit for the head is too much for pretrained blocks. On a six-class defect
tree validation balanced accuracy fell from 0.75 to 0.50 in the first epoch of phase C and
stayed below 0.65 for four epochs; on ELPV the first epoch of C fell from 84% to 40-45%.

The rule, checked at the end of each of a phase's first `window` epochs (its warm-up rounded up,
plus one epoch at the full learning rate) against the validation figures of the weights the
phase started from (the previous phase's last epoch):
- the selection metric (higher is better) fell to less than (1 - METRIC_DROP) of its start
  value and by at least METRIC_MIN_DROP; or
- the validation loss rose to more than LOSS_RATIO x its start value and by more than LOSS_RISE.
The first phase has nothing to compare with and is not checked. What happens then is the
recipe's `train.on_spike` (see `decide`). The functions below it carry that out for the trainer
(record, roll back, stop a diverged run), apart from the phase/epoch spine.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from edgetl.errors import RecipeError
from edgetl.io import atomic_write_json
from edgetl.recipe import PhaseConfig, TrainConfig
from edgetl.runfolder import FAILED_FILE
from edgetl.train.divergence import failure_record
from edgetl.train.state import TrainState

if TYPE_CHECKING:
    import torch

METRIC_DROP = 0.20  # relative to the start value
METRIC_MIN_DROP = 0.05  # absolute: a fall within noise of a tiny metric is no spike
LOSS_RATIO = 2.0
LOSS_RISE = 0.5


def window(warmup_epochs: float) -> int:
    """How many of a phase's first epochs are checked."""
    return math.ceil(warmup_epochs) + 1


def start_figures(line: dict[str, Any], metric: str) -> dict[str, Any] | None:
    """The figures a phase starts from: the metric and loss of a metrics line (None if it has
    no validation)."""
    if "val_loss" not in line and metric not in line:
        return None
    return {"epoch": line.get("epoch"), metric: line.get(metric),
            "val_loss": line.get("val_loss")}


def spike_reason(metric: str, start: dict[str, Any], line: dict[str, Any]) -> str | None:
    """Why `line` is far worse than `start` (None: it is not)."""
    value, was = line.get(metric), start.get(metric)
    if not metric.endswith("loss") and value is not None and was is not None and \
            value < (1.0 - METRIC_DROP) * was and was - value >= METRIC_MIN_DROP:
        return f"{metric} fell from {was:.4f} to {value:.4f}"
    loss, was_loss = line.get("val_loss"), start.get("val_loss")
    if loss is not None and was_loss is not None and loss > LOSS_RATIO * was_loss and \
            loss - was_loss > LOSS_RISE:
        return f"val_loss rose from {was_loss:.4f} to {loss:.4f}"
    return None


def decide(on_spike: str, retries_used: int, retries: int) -> str:
    """lower_lr (retry the phase at a lower learning rate), revert (roll back, skip the rest of
    the phase) or continue (report only). lower_lr reverts once its retries are spent."""
    if on_spike == "lower_lr" and retries_used >= retries:
        return "revert"
    return on_spike


def check_spike(state: TrainState, train: TrainConfig, select: str, line: dict[str, Any],
                phase: PhaseConfig, epoch: int, can_roll_back: bool,
                warn: Callable[[str | None], None]) -> str | None:
    """Compare a phase's early epoch with its start; record and decide what a spike does."""
    start = state.phase_start
    if start is None or epoch >= window(phase.warmup_epochs):
        return None
    reason = spike_reason(select, start, line)
    if reason is None:
        return None
    action = decide(train.on_spike, state.spike_retries, train.spike_retries)
    if not can_roll_back and action != "continue":
        action = "continue"  # the starting weights are gone (see checkpoints.phase_start)
    return record_spike(state, train, line, phase, epoch, reason, action, warn)


def record_spike(state: TrainState, train: TrainConfig, line: dict[str, Any],
                 phase: PhaseConfig, epoch: int, reason: str, action: str,
                 warn: Callable[[str | None], None]) -> str:
    """Keep a spike (or a rolled-back divergence) in the state, the line and a warning."""
    start = state.phase_start
    assert start is not None
    event = {"phase": phase.name, "epoch": line["epoch"], "phase_epoch": epoch + 1,
             "reason": reason, "start": start, "action": action,
             "lr_scale": state.lr_scale * (train.spike_lr_factor
                                           if action == "lower_lr" else 1.0)}
    state.spikes.append(event)
    line["spike"] = event
    words = {"lower_lr": f"rolled back to the phase's starting weights; retrying phase "
                         f"{phase.name} at {event['lr_scale']:g}x its learning rate",
             "revert": f"rolled back to the phase's starting weights; phase {phase.name} "
                       "ends here",
             "continue": "continuing (train.on_spike: continue)"}[action]
    warn(f"phase {phase.name} epoch {epoch + 1}: spike, {reason} (start: epoch "
         f"{start.get('epoch')}); {words}")
    return action


def on_divergence(state: TrainState, train: TrainConfig, line: dict[str, Any],
                  phase: PhaseConfig, epoch: int, can_roll_back: bool,
                  warn: Callable[[str | None], None], failed: Path | None) -> str:
    """A diverged epoch: where the spike guard guards the phase with `lower_lr` and has a
    retry left, it rolls back and retries at a lower learning rate; otherwise the run stops
    here (`stop_diverged`): a phase that diverges even so is a recipe error, which a revert
    would hide behind an exit 0."""
    if not can_roll_back or train.on_spike != "lower_lr" or \
            state.spike_retries >= train.spike_retries:
        stop_diverged(state, line, phase, failed)
    return record_spike(state, train, line, phase, epoch, f"diverged: {line['diverged']}",
                        "lower_lr", warn)


def stop_diverged(state: TrainState, line: dict[str, Any], phase: PhaseConfig,
                  failed: Path | None) -> NoReturn:
    """Stop the run with exit 2. The diverged epoch is neither logged nor saved: last/,
    best/ and metrics.jsonl stay at the last finite epoch; failed.json (`failed`, None on the
    ranks that do not write) says why, so the folder never looks like a run that can simply be
    resumed or that finished."""
    saved = state.global_epoch - 1
    best = state.best_epoch
    kept = (f"best/ holds epoch {best}, last/ epoch {saved}" if saved and best is not None
            else f"last/ holds epoch {saved}" if saved else "no epoch was saved")
    lr = f"{phase.lr * state.lr_scale:g}"
    message = (f"training diverged in phase {phase.name} epoch {line['phase_epoch']} (run "
               f"epoch {line['epoch']}, learning rate {lr}): {line['diverged']}; the run "
               f"stopped, {kept}, no test report")
    hint = (f"lower phase {phase.name}'s lr and start a new run with another --out" if saved
            else f"lower phase {phase.name}'s lr and run again")
    if failed is not None:
        atomic_write_json(failed, failure_record(
            line["diverged"], line, best, saved, f"{message} ({hint})"))
    raise RecipeError(message, hint)


def roll_back(model: torch.nn.Module, state: TrainState,
              start_weights: dict[str, torch.Tensor] | None, lr_factor: float,
              action: str) -> None:
    """Put the phase's starting weights back; for a retry, restart the phase's counters at a
    lower learning rate (saved with the state, so a resumed retry keeps it)."""
    assert start_weights is not None
    model.load_state_dict(start_weights)  # in place: optimizer and average keep views
    state.held = state.phase_start
    if action == "lower_lr":
        state.spike_retries += 1
        state.lr_scale *= lr_factor
        state.epoch_in_phase = state.step_in_phase = state.bad_epochs = 0
        state.phase_best_value = state.phase_best_loss = None


def guard_epoch(trainer: Any, line: dict[str, Any], phase: PhaseConfig, epoch: int,
                start_weights: dict[str, torch.Tensor] | None) -> str | None:
    """The guard's verdict on an epoch just run (a divergence or a spike), carried out: the
    action taken (`lower_lr`, `revert`, ...) or None; a rolled-back epoch is no early stop."""
    state, train, guarded = trainer.state, trainer.recipe.train, start_weights is not None
    if "diverged" in line:
        failed = trainer.out / FAILED_FILE if trainer.dist.is_main else None
        action = on_divergence(state, train, line, phase, epoch, guarded, trainer._warn, failed)
    else:
        action = check_spike(state, train, trainer.select, line, phase, epoch, guarded,
                             trainer._warn)
    if action in ("lower_lr", "revert"):
        line["early_stopped"] = False
        roll_back(trainer.model, state, start_weights, train.spike_lr_factor, action)
    return action
