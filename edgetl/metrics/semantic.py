"""Semantic segmentation metrics from one confusion matrix over all pixels.

Each image adds its own confusion matrix (rows: ground truth, columns: prediction; pixels
labelled `ignore_index` skipped). Per class IoU = TP / (TP + FP + FN), Dice = 2TP / (2TP + FP
+ FN); mIoU and mean Dice average the classes that occur (in the truth or the prediction);
pixel accuracy = trace / total; frequency-weighted IoU weighs IoU by the truth's class share.
The 95% interval of mIoU resamples images (their matrices are summed again), so it reflects
how much the figure depends on which images were tested.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetl.metrics.bootstrap import paired_delta, percentile_interval, resample_orders
from edgetl.spec import TaskRecord
from edgetl.tasks.semantic import TASK as _SEMANTIC

SEMANTIC_TASK: str = _SEMANTIC.name  # what this module's reports score

DEFAULT_BOOTSTRAP = 1000


def confusion(truth: np.ndarray, predicted: np.ndarray, num_classes: int,
              ignore_index: int | None) -> np.ndarray:
    """C x C pixel counts of one image (truth rows, prediction columns)."""
    truth = truth.astype(np.int64).ravel()
    predicted = predicted.astype(np.int64).ravel()
    keep = (truth >= 0) & (truth < num_classes)
    if ignore_index is not None:
        keep &= truth != ignore_index
    index = truth[keep] * num_classes + np.clip(predicted[keep], 0, num_classes - 1)
    return np.bincount(index, minlength=num_classes * num_classes).reshape(num_classes,
                                                                           num_classes)


def scores(matrix: np.ndarray) -> dict[str, Any]:
    """IoU and Dice per class, their means over occurring classes, pixel accuracy, fw-IoU."""
    matrix = matrix.astype(np.float64)
    tp = np.diag(matrix)
    truth = matrix.sum(axis=1)
    predicted = matrix.sum(axis=0)
    union = truth + predicted - tp
    occurs = union > 0
    iou = np.where(occurs, tp / np.maximum(union, 1), np.nan)
    dice = np.where(occurs, 2 * tp / np.maximum(truth + predicted, 1), np.nan)
    total = matrix.sum()
    freq = truth / total if total else truth
    return {"iou": iou, "dice": dice,
            "miou": float(np.nanmean(iou)) if occurs.any() else 0.0,
            "mdice": float(np.nanmean(dice)) if occurs.any() else 0.0,
            "pixel_accuracy": float(tp.sum() / total) if total else 0.0,
            "fw_iou": float(np.nansum(freq * np.nan_to_num(iou))),
            "truth_pixels": truth}


@dataclass
class SemanticReport:
    """What `compute` found; `to_dict()` is the JSON `evaluate --json` writes."""

    record: TaskRecord
    matrix: np.ndarray
    n_images: int
    intervals: dict[str, list[float]] = field(default_factory=dict)
    per_image_miou: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        s = scores(self.matrix)
        out: dict[str, Any] = {"task": SEMANTIC_TASK, "miou": s["miou"], "mdice": s["mdice"],
                               "pixel_accuracy": s["pixel_accuracy"], "fw_iou": s["fw_iou"]}
        for name, interval in self.intervals.items():
            out[f"{name}_ci95"] = interval
        out["per_class"] = [
            {"name": name, "iou": None if np.isnan(s["iou"][i]) else float(s["iou"][i]),
             "dice": None if np.isnan(s["dice"][i]) else float(s["dice"][i]),
             "pixels": int(s["truth_pixels"][i])}
            for i, name in enumerate(self.record.names)]
        out.update(n_images=self.n_images, confusion_matrix=self.matrix.tolist(),
                   class_names=list(self.record.names),
                   per_image_miou=[round(v, 6) for v in self.per_image_miou])
        return out


class SegmentationEvaluator:
    """Accumulate per-image confusion matrices, then score them."""

    def __init__(self, record: TaskRecord) -> None:
        self.record = record
        self.matrices: list[np.ndarray] = []

    def update(self, truth: np.ndarray, predicted: np.ndarray) -> None:
        """One image's ground truth and prediction, same size, class indices."""
        if truth.shape != predicted.shape:
            raise ValueError(f"mask shapes differ: truth {truth.shape}, predicted "
                             f"{predicted.shape}")
        self.matrices.append(confusion(truth, predicted, self.record.num_classes,
                                       self.record.ignore_index))

    def total(self) -> np.ndarray:
        n = self.record.num_classes
        return np.sum(self.matrices, axis=0) if self.matrices else np.zeros((n, n), np.int64)

    def compute(self, bootstrap: int = 0, seed: int = 0) -> SemanticReport:
        report = SemanticReport(self.record, self.total(), len(self.matrices),
                                per_image_miou=[scores(m)["miou"] for m in self.matrices])
        if bootstrap > 0 and self.matrices:
            report.intervals = {"miou": percentile_interval(
                bootstrap_miou(self.matrices, bootstrap, seed))}
        return report


def bootstrap_miou(matrices: list[np.ndarray], rounds: int, seed: int = 0,
                   orders: np.ndarray | None = None) -> np.ndarray:
    """mIoU of `rounds` resamples of the images (their matrices summed)."""
    stack = np.stack(matrices)
    if orders is None:
        orders = resample_orders(len(stack), rounds, seed)
    return np.array([scores(stack[order].sum(axis=0))["miou"] for order in orders])


def paired_miou_delta(first: list[np.ndarray], second: list[np.ndarray],
                      rounds: int = DEFAULT_BOOTSTRAP, seed: int = 0) -> dict[str, Any]:
    """second - first mIoU with a paired bootstrap interval (same images for both)."""
    return paired_delta(first, second, len(first), ("miou",),
                        lambda m: {"miou": scores(np.sum(m, axis=0))["miou"]},
                        lambda m, orders: {"miou": bootstrap_miou(m, rounds, orders=orders)},
                        rounds, seed)["miou"]
