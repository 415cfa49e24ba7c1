"""Classification metrics beyond accuracy (scikit-learn), with a bootstrap interval.

Used for validation during training, `edgetl evaluate` on runs and artifacts, and `verify`.
Needs numpy and scikit-learn only (no torch).
"""

from __future__ import annotations

from typing import Any

import numpy as np


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
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(correct), size=(n_boot, len(correct)))
    means = correct[idx].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, 1 - (1 - level) / 2])
    return float(lo), float(hi)


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
        "confusion_matrix": confusion_matrix(y_true, pred, labels=labels).tolist(),
        "class_names": list(class_names),
        "roc_auc": auc,
        "pr_curves": pr_curves(y_true, probs, list(class_names)),
    }
