"""Which epoch is better: the one rule best-checkpoint selection and early stopping share.

The rule: the selection metric decides (higher is better, lower for losses); an epoch that
ties it goes to the lower validation loss. Why: on a small validation split an accuracy-like
metric saturates (every image right from some epoch on) and then cannot tell a head-only model
from a fine-tuned one whose validation loss is half as large; without the tie-break the first
epoch that saturated was kept and early stopping ended the later phases for a lack of progress
the metric could not show.

A tie: the metric is not worse than the best so far (to `TIE_TOLERANCE`, float rounding of
averaged ratios) and not better by more than `min_delta` (0 for best-checkpoint selection, the
phase's `early_stopping.min_delta` for early stopping).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from edgetl.recipe import PhaseConfig
    from edgetl.train.state import TrainState

TIE_TOLERANCE = 1e-9
TIE_BREAK = "val_loss"
# One validation image should not move an accuracy-like metric by more than this (or the
# early stopping's min_delta, when larger): below it the split cannot tell models apart.
RESOLUTION = 0.01


def is_better(metric: str, value: float, best: float | None, min_delta: float = 0.0,
              loss: float | None = None, best_loss: float | None = None) -> bool:
    """Higher is better, except for losses; an improvement must exceed `min_delta`; a tie goes
    to the lower validation loss (`loss` against `best_loss`, when both are known)."""
    if best is None:
        return True
    if metric.endswith("loss"):
        return value < best - min_delta
    if value > best + min_delta:
        return True
    tied = value >= best - TIE_TOLERANCE
    return tied and loss is not None and best_loss is not None and loss < best_loss


def rule_words(metric: str) -> str:
    """The selection rule in words (README, summary.json)."""
    if metric.endswith("loss"):
        return f"lowest {metric}"
    return (f"highest {metric}; a tie (within {TIE_TOLERANCE:g}, or within early stopping's "
            f"min_delta) goes to the lower {TIE_BREAK}")


def one_image_step(metric: str, val_labels: Iterable[str]) -> float | None:
    """How far one validation image can move the metric (None: not a count-based metric).

    accuracy: 1/n. balanced accuracy: one image of the smallest class moves its recall by
    1/n_min, the mean over k classes by 1/(k n_min). macro-F1: taken as the same (one error moves
    two classes' F1 by about 1/(2 n) each, the same order)."""
    counts = Counter(val_labels)
    n = sum(counts.values())
    if not n:
        return None
    if metric == "val_accuracy":
        return 1.0 / n
    if metric in ("val_balanced_accuracy", "val_macro_f1"):
        return 1.0 / (len(counts) * min(counts.values()))
    return None


@dataclass(frozen=True)
class ValidationSize:
    """How many validation images the selection stands on, and whether that is enough."""

    metric: str
    images: int
    per_class: dict[str, int]
    step: float | None
    min_delta: float

    @property
    def too_small(self) -> bool:
        return self.step is not None and self.step > max(self.min_delta, RESOLUTION)

    def warning(self) -> str | None:
        if not self.too_small:
            return None
        smallest = min(self.per_class.values()) if self.per_class else 0
        return (f"the validation split is too small to tell models apart: {self.images} images "
                f"(smallest class {smallest}), so one image moves {self.metric} by "
                f"{self.step:.3f}, more than early stopping's min_delta ({self.min_delta:g}) and "
                f"the {RESOLUTION:g} edgetl asks for; ties go to the lower {TIE_BREAK}. Make "
                "validation larger: data.val_fraction, or train on the manifest of "
                "'edgetl data split --val'")

    def to_dict(self) -> dict[str, Any]:
        return {"images": self.images, "per_class": self.per_class,
                "one_image_step": None if self.step is None else round(self.step, 6),
                "too_small": self.too_small}


def validation_size(metric: str, images: int, val_labels: list[str] | None,
                    min_delta: float = 0.0) -> ValidationSize:
    """`val_labels`: the class of each validation image (classification), else None."""
    counts = dict(sorted(Counter(val_labels or []).items()))
    step = one_image_step(metric, val_labels) if val_labels else None
    return ValidationSize(metric, images, counts, step, min_delta)


def stopping_metric(phase: PhaseConfig, select: str) -> str | None:
    """The metric a phase's early stopping watches (None: no early stopping)."""
    if phase.early_stopping is None:
        return None
    return phase.early_stopping.metric or select


def record_best(state: TrainState, select: str, val: dict[str, float]) -> bool:
    """Whether the epoch just finished is the best so far (kept in `state`); without
    validation every epoch is. One rule for both: a tie goes to the lower val_loss."""
    loss = val.get(TIE_BREAK)
    if not val or (select in val and is_better(select, val[select], state.best_value,
                                               loss=loss, best_loss=state.best_loss)):
        state.best_value, state.best_epoch = val.get(select), state.global_epoch
        state.best_loss = loss
        return True
    return False


def count_early_stopping(state: TrainState, phase: PhaseConfig, select: str,
                         val: dict[str, float]) -> bool:
    """Count the epoch for the phase's early stopping (kept in `state`); whether it stops."""
    watched = stopping_metric(phase, select)
    if watched is None or watched not in val:
        return False
    es, loss = phase.early_stopping, val.get(TIE_BREAK)
    assert es is not None
    if is_better(watched, val[watched], state.phase_best_value, es.min_delta,
                 loss=loss, best_loss=state.phase_best_loss):
        state.phase_best_value, state.bad_epochs = val[watched], 0
        state.phase_best_loss = loss
        return False
    state.bad_epochs += 1
    return state.bad_epochs >= es.patience


def resolve_selection(trainer: Any) -> tuple[str, str, ValidationSize]:
    """The metric that picks a `PhasedTrainer`'s best checkpoint, why that one, and whether its
    validation split can resolve it."""
    recipe = trainer.recipe
    if recipe.train.select_metric is not None:
        select, why = recipe.train.select_metric, "the recipe's"
    else:
        select, why = trainer.default_select_metric()
    deltas = [p.early_stopping.min_delta for p in recipe.phases
              if p.early_stopping is not None and stopping_metric(p, select) == select]
    return select, why, validation_size(select, len(trainer.val_s), trainer.validation_labels(),
                                        max(deltas, default=0.0))
