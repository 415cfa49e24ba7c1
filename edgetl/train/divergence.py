"""Divergence: an epoch whose loss is not a number, or far above where its phase started.

Why: a learning rate far too high (1e9, 1e30) used to train to the end and exit 0 with a loss
of 1e26 and accuracy at chance, or turn every weight into NaN, save that as the best checkpoint
and crash in the test report. Such an epoch teaches nothing worth keeping.

The rule, checked at the end of every epoch, before best-checkpoint selection:
- the epoch's `train_loss` or `val_loss` is NaN or infinite; or
- it is more than RATIO x the phase's reference loss: the larger of the loss of the phase's
  first training step (computed on the weights the phase started from, before any update), the
  validation loss the phase started from (the previous phase's last epoch), and FLOOR.
FLOOR: every task's loss (cross-entropy, focal + box + centre-ness terms, per-pixel
cross-entropy + Dice, mask terms) is a per-image mean whose chance level is of order 1, so a
phase that starts near zero (a head already fitted) is not called diverged for an ordinary rise;
a loss above RATIO x FLOOR is no longer training.

A diverged epoch is never selected as best. Where the spike guard guards the phase with
`train.on_spike: lower_lr` and has a retry left, it is handled as a spike: rolled back to the
phase's starting weights and retried at a lower learning rate (a warning, a `spike` entry).
Otherwise the run stops with exit 2: the diverged epoch is neither logged nor saved, so
`metrics.jsonl`, `last/` and `best/` stay at the last finite epoch, and `failed.json` in the run
folder says why (no `summary.json`; `--resume` refuses such a folder, since the same recipe
would diverge again).
"""

from __future__ import annotations

import math
from typing import Any

RATIO = 100.0
FLOOR = 1.0
LOSSES = ("train_loss", "val_loss")


def reference_loss(first_step_loss: float | None, start: dict[str, Any] | None) -> float:
    """What the phase's losses are compared with (see the module docstring)."""
    values = [FLOOR]
    if first_step_loss is not None and math.isfinite(first_step_loss):
        values.append(first_step_loss)
    start_val = (start or {}).get("val_loss")
    if isinstance(start_val, (int, float)) and math.isfinite(start_val):
        values.append(float(start_val))
    return max(values)


def divergence_reason(line: dict[str, Any], reference: float) -> str | None:
    """Why the epoch `line` diverged (None: it did not)."""
    for key in LOSSES:
        value = line.get(key)
        if value is None:
            continue
        if not math.isfinite(value):
            return f"{key} is {value}"
        if value > RATIO * reference:
            return (f"{key} {value:.4g} is more than {RATIO:g}x the phase's starting loss "
                    f"({reference:.4g})")
    return None


def failure_record(reason: str, line: dict[str, Any], best_epoch: int | None,
                   saved_epochs: int, message: str) -> dict[str, Any]:
    """The content of `failed.json`: what stopped the run and what the folder still holds."""
    return {"failed": "training diverged", "reason": reason, "phase": line.get("phase"),
            "epoch": line.get("epoch"), "phase_epoch": line.get("phase_epoch"),
            "train_loss": line.get("train_loss"), "val_loss": line.get("val_loss"),
            "best_epoch": best_epoch, "saved_epochs": saved_epochs, "message": message}
