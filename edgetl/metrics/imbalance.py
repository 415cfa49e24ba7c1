"""Imbalance checks of a classification report: the majority-class baseline, collapsed classes.

Why: class weights and a selection metric that average over classes (balanced accuracy) can
trade the majority class away. On a defect tree with 70% defect-free images a run ended at 49.8%
test accuracy, far below the 71% of always answering "defect-free", and said nothing. These
checks put that in words in every classification report (finetune's test report, `evaluate` of
a run or an artifact) and in `summary.json`.

The rules (numpy only: used without torch too):
- below the majority baseline: accuracy < the share of the split's largest class (what always
  answering that class scores on this split);
- a collapsed class: it is predicted for at least `OFTEN_SHARE` of the split's images (and at
  least `OFTEN_MIN` images: one wrong call on a tiny split is no collapse) and fewer than
  `COLLAPSE_PRECISION` of those predictions are right.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

COLLAPSE_PRECISION = 0.5
OFTEN_SHARE = 0.10
OFTEN_MIN = 5
# Training classes at least this far apart (largest / smallest) count as imbalanced: a recipe
# that names no selection metric then selects on validation macro-F1.
IMBALANCED_RATIO = 3.0


def majority_baseline(support: Sequence[int], class_names: Sequence[str]) -> dict[str, Any]:
    """The class with the most images in the split (`support`: images per class) and the
    accuracy of always answering it."""
    support = np.asarray(support, dtype=np.int64)
    n = int(support.sum())
    top = int(support.argmax()) if n else 0
    return {"class": class_names[top] if len(class_names) else None,
            "accuracy": float(support[top] / n) if n else 0.0}


def collapsed_classes(confusion: Sequence[Sequence[int]], class_names: Sequence[str]
                      ) -> list[dict[str, Any]]:
    """Classes predicted often (OFTEN_SHARE, OFTEN_MIN) with precision < COLLAPSE_PRECISION."""
    cm = np.asarray(confusion, dtype=np.int64)
    n = int(cm.sum())
    out = []
    for c, name in enumerate(class_names):
        predicted = int(cm[:, c].sum())
        if not n or predicted < max(OFTEN_SHARE * n, OFTEN_MIN):
            continue
        precision = cm[c, c] / predicted
        if precision < COLLAPSE_PRECISION:
            out.append({"class": name, "precision": float(precision), "predicted": predicted,
                        "support": int(cm[c].sum())})
    return out


def imbalance_checks(confusion: Sequence[Sequence[int]], class_names: Sequence[str]
                     ) -> dict[str, Any]:
    """`majority_baseline` and `warnings` (sentences, without the split's name) for a report."""
    cm = np.asarray(confusion, dtype=np.int64)
    n = int(cm.sum())
    baseline = majority_baseline(cm.sum(axis=1), class_names)
    notes: list[str] = []
    accuracy = float(np.trace(cm) / n) if n else 0.0
    if n and len(class_names) > 1 and accuracy < baseline["accuracy"]:
        notes.append(f"accuracy {accuracy:.1%} is below the majority-class baseline "
                     f"{baseline['accuracy']:.1%} (always answering '{baseline['class']}')")
    for row in collapsed_classes(cm, class_names):
        wrong = row["predicted"] - round(row["precision"] * row["predicted"])
        notes.append(f"class '{row['class']}' is predicted for {row['predicted']} of {n} images "
                     f"but only {row['precision']:.1%} of them are right ({wrong} false alarms; "
                     f"{row['support']} images of the class): its precision collapsed")
    return {"majority_baseline": baseline, "warnings": notes}


def imbalance_ratio(counts: Sequence[int]) -> float:
    """Largest class count over the smallest (inf when a class is empty)."""
    if not counts:
        return 1.0
    low = min(counts)
    return float("inf") if low == 0 else max(counts) / low


def default_select_metric(counts: Sequence[int]) -> str | None:
    """val_macro_f1 for imbalanced training classes (see IMBALANCED_RATIO), else None (the
    task's default)."""
    return "val_macro_f1" if imbalance_ratio(counts) >= IMBALANCED_RATIO else None
