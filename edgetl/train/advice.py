"""Warnings that tell the user what to do next (issue 27): validation still improving at the
end of the run, objects small at the input size.

Each is a {code, message}: the message goes to the run's log as a `warning:` line and to
summary.json's `warnings` (text, as every run warning), the pair to summary.json's `advice`.
The rules are pure functions, tested on numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STILL_IMPROVING = "still_improving"
SMALL_OBJECTS = "small_objects"
WINDOW = 3  # epochs at the end of the final phase the rise is measured over
MIN_RISE = 1e-3  # a rise smaller than this (or the phase's early-stopping min_delta) is noise


def still_improving(values: Sequence[float], lower_is_better: bool, window: int = WINDOW,
                    min_rise: float = MIN_RISE) -> tuple[float, int] | None:
    """(how much the metric improved, over how many epochs) when the phase's last epoch is the
    best of its last `window` + 1 and beat the one `window` epochs before by more than
    `min_rise`; None otherwise (fewer than two epochs, a plateau, a fall)."""
    if len(values) < 2:
        return None
    n = min(window, len(values) - 1)
    tail = [-v for v in values[-n - 1:]] if lower_is_better else list(values[-n - 1:])
    rise = tail[-1] - tail[0]
    if rise > min_rise and tail[-1] >= max(tail):
        return rise, n
    return None


def metric_words(metric: str) -> str:
    """'val_mask_map' -> 'mask mAP': a metric key as the log says it."""
    words = metric.removeprefix("val_").replace("_", " ")
    for key, said in (("map", "mAP"), ("miou", "mIoU"), ("ap50", "AP50"), ("f1", "F1")):
        words = " ".join(said if w == key else w for w in words.split())
    return words


def still_improving_advice(lines: list[dict[str, Any]], select: str, phase: Any,
                           budget_s: float | None) -> str | None:
    """The warning when validation's `select` was still improving over the last epochs of the
    final phase (`lines`: metrics.jsonl; `phase`: that phase's recipe entry)."""
    if not lines:
        return None
    ran = [x for x in lines if x.get("phase") == phase.name and select in x
           and not x.get("diverged")]
    delta = phase.early_stopping.min_delta if phase.early_stopping is not None else 0.0
    found = still_improving([float(x[select]) for x in ran], select.endswith("loss"),
                            min_rise=max(MIN_RISE, delta))
    if found is None:
        return None
    rise, n = found
    steps = phase.steps is not None
    now = ran[-1]["phase_steps"] if steps else ran[-1]["phase_epoch"]
    key = f"phases.{phase.name}.{'steps' if steps else 'epochs'}={2 * now}"
    budget = (f"a longer `--time-budget` than {budget_s:g} s" if budget_s is not None
              else "`--time-budget`")
    return (f"validation {metric_words(select)} {'fell' if select.endswith('loss') else 'rose'} "
            f"by {rise:.4g} over the last {n} epoch(s) of phase {phase.name}: train longer "
            f"(`--set {key}`) or give {budget}")


def add_advice(trainer: Any, code: str, message: str | None) -> None:
    """A {code, message} for summary.json's `advice`, and the message as a run warning."""
    if message:
        trainer.advice.append({"code": code, "message": message})
        trainer._warn(message)
