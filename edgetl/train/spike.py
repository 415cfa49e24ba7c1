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
recipe's `train.on_spike` (see `decide`).
"""

from __future__ import annotations

import math
from typing import Any

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
