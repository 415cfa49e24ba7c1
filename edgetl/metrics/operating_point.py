"""Choosing an operating point on validation, and what it gives on a split.

The decision rule and the record an artifact carries are in `edgetl.decision`. Here: the
one-vs-rest precision-recall curve of each class, the threshold for a target, and the figures
(recall, precision, false-alarm rate) with bootstrap intervals.

Choosing (`choose_threshold`), with P positives of the class on validation:
- recall >= r: the k-th highest positive score, k = ceil(r * P): the highest threshold that
  still catches k positives (fewest false alarms for that recall);
- precision >= p: the lowest threshold among the scores at which precision reaches p (the
  most recall that precision allows).

numpy only.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from edgetl.decision import Kind, OperatingPoint, Target
from edgetl.metrics.bootstrap import percentile_interval, resample_orders

CURVE_POINTS = 201  # at most this many points per class curve in a report
BOOTSTRAP = 2000

def choose_threshold(positive: np.ndarray, scores: np.ndarray, kind: Kind,
                     value: float) -> float | None:
    """The validation threshold for a target (see the module docstring); None when the
    target cannot be met (no positives, or precision that never reaches it)."""
    positive = np.asarray(positive, dtype=bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(positive.sum())
    if n_pos == 0:
        return None
    if kind == "recall":
        k = max(1, math.ceil(value * n_pos - 1e-9))
        return float(np.sort(scores[positive])[::-1][k - 1])
    curve = _curve(positive, scores)
    meets = curve["precision"] >= value - 1e-12
    if not meets.any():
        return None
    return float(curve["threshold"][meets][-1])  # thresholds descend: the last is the lowest


def _curve(positive: np.ndarray, scores: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall and false-alarm rate at every distinct score (descending), where
    predicting positive means score >= threshold."""
    order = np.argsort(-scores, kind="stable")
    sorted_scores, sorted_pos = scores[order], positive[order]
    tp = np.cumsum(sorted_pos)
    fp = np.cumsum(~sorted_pos)
    last = np.r_[np.flatnonzero(np.diff(sorted_scores)), len(sorted_scores) - 1]
    tp, fp = tp[last], fp[last]
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return {"threshold": sorted_scores[last],
            "precision": tp / np.maximum(tp + fp, 1),
            "recall": tp / n_pos if n_pos else np.zeros(len(tp)),
            "false_alarm_rate": fp / n_neg if n_neg else np.zeros(len(fp))}


def pr_curves(y_true: np.ndarray, probs: np.ndarray, names: list[str]) -> dict[str, Any]:
    """Per class, one-vs-rest: precision, recall and false-alarm rate at each threshold (at
    most CURVE_POINTS, evenly picked) and the average precision (step-wise area)."""
    y_true = np.asarray(y_true)
    out: dict[str, Any] = {}
    for index, name in enumerate(names):
        positive = y_true == index
        if not positive.any() or len(y_true) == 0:
            out[name] = {"average_precision": None, "reason": "no image of the class"}
            continue
        curve = _curve(positive, np.asarray(probs, dtype=np.float64)[:, index])
        recall_steps = np.diff(np.r_[0.0, curve["recall"]])
        keep = np.unique(np.linspace(0, len(curve["threshold"]) - 1,
                                     min(CURVE_POINTS, len(curve["threshold"]))).round()
                         ).astype(int)
        out[name] = {"average_precision": float((recall_steps * curve["precision"]).sum()),
                     **{key: [round(float(v), 6) for v in values[keep]]
                        for key, values in curve.items()}}
    return out


def binary_figures(positive: np.ndarray, predicted: np.ndarray) -> dict[str, Any]:
    """Recall, precision and false-alarm rate (false positives / negatives) of a one-vs-rest
    decision, with the counts (None where a denominator is 0)."""
    positive, predicted = np.asarray(positive, bool), np.asarray(predicted, bool)
    tp = int((positive & predicted).sum())
    fp = int((~positive & predicted).sum())
    fn = int((positive & ~predicted).sum())
    tn = int((~positive & ~predicted).sum())
    return {"recall": tp / (tp + fn) if tp + fn else None,
            "precision": tp / (tp + fp) if tp + fp else None,
            "false_alarm_rate": fp / (fp + tn) if fp + tn else None,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def figures_with_intervals(positive: np.ndarray, predicted: np.ndarray, n_boot: int = BOOTSTRAP,
                           seed: int = 0, level: float = 0.95) -> dict[str, Any]:
    """`binary_figures` plus percentile bootstrap intervals (images resampled with
    replacement, as `bootstrap_accuracy_ci`); resamples without a denominator are skipped."""
    positive, predicted = np.asarray(positive, bool), np.asarray(predicted, bool)
    figures = binary_figures(positive, predicted)
    n = len(positive)
    if n == 0:
        return figures
    idx = resample_orders(n, n_boot, seed)
    pos, pred = positive[idx], predicted[idx]
    tp = (pos & pred).sum(axis=1)
    fp = (~pos & pred).sum(axis=1)
    fn = (pos & ~pred).sum(axis=1)
    tn = (~pos & ~pred).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        draws = {"recall": tp / (tp + fn), "precision": tp / (tp + fp),
                 "false_alarm_rate": fp / (fp + tn)}
    for key, values in draws.items():
        values = values[np.isfinite(values)]
        figures[f"{key}_ci95"] = (percentile_interval(values, level)
                                  if figures[key] is not None and len(values) else None)
    return figures


def choose(target: Target, names: tuple[str, ...] | list[str], y_val: np.ndarray,
           probs_val: np.ndarray, split: str = "val") -> OperatingPoint | None:
    """The operating point for `target` chosen on (y_val, probs_val); None if unreachable."""
    index = target.index_in(names)
    positive = np.asarray(y_val) == index
    scores = np.asarray(probs_val, dtype=np.float64)[:, index]
    threshold = choose_threshold(positive, scores, target.kind, target.value)
    if threshold is None:
        return None
    figures = binary_figures(positive, scores >= threshold)
    return OperatingPoint(target.class_name, index, threshold, target,
                          {"split": split, "images": int(len(positive)),
                           "positives": int(positive.sum()), **figures})


def unreachable_reason(target: Target, names: tuple[str, ...] | list[str], y_val: np.ndarray,
                       probs_val: np.ndarray) -> str:
    """Why `choose` found no threshold, in words."""
    index = target.index_in(names)
    positive = np.asarray(y_val) == index
    if not positive.any():
        return f"the validation split has no image of {target.class_name}"
    curve = _curve(positive, np.asarray(probs_val, dtype=np.float64)[:, index])
    return (f"validation precision of {target.class_name} never reaches {target.value:g} "
            f"(at most {curve['precision'].max():.4f})")


def figures_at(point: OperatingPoint, y: np.ndarray, probs: np.ndarray,
               seed: int = 0) -> dict[str, Any]:
    """What the point's threshold gives on a split (intervals), and plain argmax beside it."""
    positive = np.asarray(y) == point.class_index
    decided = point.decide(probs)
    argmax = np.asarray(probs).argmax(axis=1)
    return {"images": int(len(positive)), "positives": int(positive.sum()),
            "accuracy": float((decided == np.asarray(y)).mean()) if len(positive) else None,
            **figures_with_intervals(positive, decided == point.class_index, seed=seed),
            "argmax": binary_figures(positive, argmax == point.class_index)}


def operating_point_report(target: Target, names: list[str], y_val: np.ndarray,
                           probs_val: np.ndarray, y_eval: np.ndarray, probs_eval: np.ndarray,
                           split: str) -> dict[str, Any]:
    """One report entry: the threshold chosen on validation and what it gives on `split`."""
    point = choose(target, names, y_val, probs_val)
    if point is None:
        return {"target": target.text(), "class": target.class_name, "threshold": None,
                "reason": unreachable_reason(target, names, y_val, probs_val)}
    return {"target": target.text(), "class": point.class_name, "threshold": point.threshold,
            "rule": point.rule, "chosen_on": point.chosen_on,
            split: figures_at(point, y_eval, probs_eval)}
