"""Classification metrics beyond accuracy (scikit-learn), with a bootstrap interval.

Used for validation during training, `edgetl evaluate` on runs and artifacts, and `verify`.
Needs numpy and scikit-learn only (no torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.metrics.bootstrap import percentile_interval, resample_orders
from edgetl.metrics.imbalance import imbalance_checks


def quick_metrics(y_true: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """The cheap per-epoch validation metrics."""
    from sklearn.metrics import balanced_accuracy_score, f1_score

    pred = probs.argmax(axis=1)
    eps = 1e-12
    picked = probs[np.arange(len(y_true)), y_true] if len(y_true) else np.ones(1)
    loss = float(-np.log(picked + eps).mean())
    return {
        "accuracy": float((pred == y_true).mean()) if len(y_true) else 0.0,
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)) if len(y_true) else 0.0,
        "macro_f1": float(f1_score(y_true, pred, average="macro", zero_division=0))
        if len(y_true) else 0.0,
        "loss": loss,
    }


def bootstrap_accuracy_ci(
    correct: np.ndarray, n_boot: int = 2000, seed: int = 0, level: float = 0.95
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of a 0/1 vector."""
    if len(correct) == 0:
        return (0.0, 0.0)
    idx = resample_orders(len(correct), n_boot, seed)
    lo, hi = percentile_interval(correct[idx].mean(axis=1), level)
    return lo, hi


def _roc_auc(y_true: np.ndarray, probs: np.ndarray, n_classes: int) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    present = np.unique(y_true)
    if len(present) < 2:
        return {"value": None, "reason": "only one class present"}
    if n_classes == 2:
        return {"value": float(roc_auc_score(y_true, probs[:, 1])), "average": "binary"}
    per_class = {}
    for c in range(n_classes):
        positives = y_true == c
        if positives.any() and (~positives).any():
            per_class[c] = float(roc_auc_score(positives.astype(int), probs[:, c]))
    macro = float(np.mean(list(per_class.values()))) if per_class else None
    return {"value": macro, "average": "macro one-vs-rest", "per_class": per_class}


def classification_report(
    y_true: np.ndarray, probs: np.ndarray, class_names: list[str], seed: int = 0,
    pred: np.ndarray | None = None,
) -> dict[str, Any]:
    """Accuracy (+95% bootstrap CI), balanced accuracy, macro-F1, per-class P/R/F1/support,
    confusion matrix (rows true, columns predicted), ROC-AUC (binary or one-vs-rest macro),
    and each class's one-vs-rest precision-recall curve. `pred`: the decisions to score
    (default argmax; an artifact's operating point decides otherwise)."""
    from sklearn.metrics import (
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        precision_recall_fscore_support,
    )

    from edgetl.metrics.operating_point import pr_curves

    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    n_classes = len(class_names)
    pred = probs.argmax(axis=1) if pred is None else np.asarray(pred, dtype=np.int64)
    labels = list(range(n_classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, pred, labels=labels, zero_division=0
    )
    correct = (pred == y_true).astype(np.float64)
    lo, hi = bootstrap_accuracy_ci(correct, seed=seed)
    auc = _roc_auc(y_true, probs, n_classes)
    if "per_class" in auc:
        auc["per_class"] = {class_names[c]: v for c, v in auc["per_class"].items()}
    cm = confusion_matrix(y_true, pred, labels=labels).tolist()
    return {
        "n": int(len(y_true)),
        "accuracy": float(correct.mean()) if len(correct) else 0.0,
        "accuracy_ci95": [lo, hi],
        "balanced_accuracy": float(balanced_accuracy_score(y_true, pred)),
        "macro_f1": float(f1_score(y_true, pred, labels=labels, average="macro", zero_division=0)),
        "per_class": {
            name: {
                "precision": float(precision[i]),
                "recall": float(recall[i]),
                "f1": float(f1[i]),
                "support": int(support[i]),
            }
            for i, name in enumerate(class_names)
        },
        "confusion_matrix": cm,
        "class_names": list(class_names),
        "roc_auc": auc,
        **imbalance_checks(cm, class_names),  # majority_baseline, warnings
        "pr_curves": pr_curves(y_true, probs, list(class_names)),
    }


# --------------------------------------------------------------------------- any metric's interval
INTERVAL_METRICS = ("accuracy", "balanced_accuracy", "macro_f1", "loss")
BOOTSTRAP_RESAMPLES = 2000


def resampled_metric(y_true: np.ndarray, probs: np.ndarray, idx: np.ndarray,
                     metric: str) -> np.ndarray:
    """`metric` (as `quick_metrics` computes it) on each row of resample indices `idx` [B, n],
    vectorised: counts per class instead of one scikit-learn call per resample.

    balanced_accuracy averages recall over the classes present in the resample's truth;
    macro_f1 averages 2tp / (true + predicted) over the classes present in truth or prediction
    (scikit-learn's default labels, zero_division=0); loss is the mean negative log-likelihood.
    """
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if metric == "loss":
        nll = -np.log(probs[np.arange(len(y_true)), y_true] + 1e-12)
        return nll[idx].mean(axis=1)
    pred = probs.argmax(axis=1)
    correct = (pred == y_true)[idx]
    if metric == "accuracy":
        return correct.mean(axis=1)
    ys, ps = y_true[idx], pred[idx]
    terms, present = [], []
    for c in range(probs.shape[1]):
        truth = (ys == c).sum(axis=1)
        guessed = (ps == c).sum(axis=1)
        hits = ((ys == c) & correct).sum(axis=1)
        if metric == "balanced_accuracy":
            terms.append(np.divide(hits, truth, out=np.zeros(len(idx)), where=truth > 0))
            present.append(truth > 0)
        elif metric == "macro_f1":
            both = truth + guessed
            terms.append(np.divide(2 * hits, both, out=np.zeros(len(idx)), where=both > 0))
            present.append(both > 0)
        else:
            raise ValueError(f"no interval for metric {metric!r} (use {INTERVAL_METRICS})")
    term, mask = np.stack(terms, axis=1), np.stack(present, axis=1)
    return (term * mask).sum(axis=1) / np.maximum(mask.sum(axis=1), 1)


def metric_interval(y_true: np.ndarray, probs: np.ndarray, metric: str,
                    n_boot: int = BOOTSTRAP_RESAMPLES, seed: int = 0, level: float = 0.95
                    ) -> dict[str, Any]:
    """A metric's value (exactly `quick_metrics`'s) and its percentile bootstrap interval over
    the images. Accuracy uses `bootstrap_accuracy_ci`, the interval of every test report."""
    y_true = np.asarray(y_true, dtype=np.int64)
    probs = np.asarray(probs, dtype=np.float64)
    if metric not in INTERVAL_METRICS:
        raise ValueError(f"no interval for metric {metric!r} (use {INTERVAL_METRICS})")
    value = quick_metrics(y_true, probs)[metric]
    if metric == "accuracy":
        lo, hi = bootstrap_accuracy_ci((probs.argmax(axis=1) == y_true).astype(np.float64),
                                       n_boot=n_boot, seed=seed, level=level)
    elif len(y_true) == 0:
        lo = hi = value
    else:
        idx = resample_orders(len(y_true), n_boot, seed)
        lo, hi = percentile_interval(resampled_metric(y_true, probs, idx, metric), level)
    return {"value": float(value), "ci95": [float(lo), float(hi)], "n": int(len(y_true)),
            "interval": f"percentile bootstrap over images ({n_boot} resamples, seed {seed})"}
