"""Quantisation-aware training of a classifier (the classification task's `qat_trainer`).

Loss: `task_loss` x cross-entropy on the labels plus `distillation` x T^2 x KL(student ||
float model) on logits softened by the temperature T, the float model's outputs being the soft
targets.
Inputs go through the deployment reference transform (no augmentation: a short phase at a low
learning rate that adapts the weights to their quantisation, not a new training), decoded once
and held in memory when they fit. The float model's logits are computed once. Validation before
training and after each epoch: accuracy, loss and top-1 agreement with the float model. The
epoch kept (before training included) is the one closest to passing verify's int8 gates on
validation: the fewest points short of the agreement and accuracy-drop budgets together, then
the best agreement, then the best accuracy.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.export.qat_phase import QatJob, QatTraining

CACHE_BYTES = 2 * 1024 ** 3  # preprocessed inputs held in memory up to this size
EVAL_BATCH = 32


class _Inputs:
    """Model inputs of a list of samples by index, decoded once when they fit in memory."""

    def __init__(self, samples: list[Any], spec: Any) -> None:
        self.paths = [s.path for s in samples]
        self.spec = spec
        channels, (height, width) = 3, spec.input_size
        self.cached: np.ndarray | None = None
        if len(samples) * channels * height * width * 4 <= CACHE_BYTES:
            self.cached = self._decode(list(range(len(samples))))

    def _decode(self, index: list[int]) -> np.ndarray:
        from edgetl.artifact.reference import preprocess_batch

        parts = [preprocess_batch([self.paths[i] for i in index[s:s + EVAL_BATCH]], self.spec)
                 for s in range(0, len(index), EVAL_BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0,), np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    def take(self, index: list[int] | np.ndarray) -> np.ndarray:
        index = list(index)
        return self.cached[index] if self.cached is not None else self._decode(index)


def _logits(model: Any, inputs: _Inputs) -> Any:
    import torch

    model.eval()
    with torch.no_grad():
        return torch.cat([model(torch.from_numpy(inputs.take(range(s, min(s + EVAL_BATCH,
                                                                        len(inputs))))))
                          for s in range(0, len(inputs), EVAL_BATCH)])


def _figures(logits: Any, labels: Any, reference_top1: Any) -> dict[str, Any]:
    import torch.nn.functional as F

    if len(labels) == 0:
        return {"val_accuracy": None, "val_loss": None, "val_agreement": None, "images": 0}
    top1 = logits.argmax(1)
    return {"val_accuracy": float((top1 == labels).float().mean()),
            "val_loss": float(F.cross_entropy(logits, labels)),
            "val_agreement": float((top1 == reference_top1).float().mean()),
            "images": len(labels)}


def gate_shortfall(figures: dict[str, Any], float_accuracy: float | None,
                   budgets: Any) -> float:
    """Points by which validation figures miss verify's gates (agreement, accuracy drop)."""
    if budgets is None or figures["val_agreement"] is None or float_accuracy is None:
        return 0.0
    agreement_short = max(0.0, 100.0 * (budgets.top1_agreement - figures["val_agreement"]))
    drop = 100.0 * (float_accuracy - figures["val_accuracy"])
    return agreement_short + max(0.0, drop - budgets.accuracy_points)


def _rank(figures: dict[str, Any], float_accuracy: float | None,
          budgets: Any) -> tuple[float, float, float]:
    """Larger is better: closest to the gates, then agreement, then accuracy."""
    return (-gate_shortfall(figures, float_accuracy, budgets),
            figures["val_agreement"] or 0.0, figures["val_accuracy"] or 0.0)


def train_classifier(job: QatJob) -> QatTraining:
    """Distil the float classifier into its fake-quantised copy (module docstring)."""
    import torch
    import torch.nn.functional as F

    from edgetl.export.qat_loop import distil, kl_to_teacher

    names = list(job.record.names)
    train = job.run.samples("train")
    val = job.run.dataset().by_split("val")
    train_inputs, val_inputs = _Inputs(train, job.spec), _Inputs(val, job.spec)
    train_labels = torch.tensor([names.index(s.label) for s in train])
    val_labels = torch.tensor([names.index(s.label) for s in val], dtype=torch.long)
    soft_targets = _logits(job.teacher, train_inputs)
    val_reference = _logits(job.teacher, val_inputs).argmax(1) if len(val) else None
    float_accuracy = float((val_reference == val_labels).float().mean()) if len(val) else None
    student = job.student
    temperature, weight = job.settings.temperature, job.settings.distillation

    def validate() -> dict[str, Any]:
        if not len(val):
            return _figures(torch.zeros(0), val_labels, None)
        return _figures(_logits(student, val_inputs), val_labels, val_reference)

    def batch_loss(index: np.ndarray) -> Any:
        out = student(torch.from_numpy(train_inputs.take(index)))
        loss = job.settings.task_loss * F.cross_entropy(out, train_labels[index])
        if weight > 0:
            loss = loss + weight * kl_to_teacher(out, soft_targets[index], temperature)
        return loss

    def rank(figures: dict[str, Any]) -> tuple[float, float, float]:
        return _rank(figures, float_accuracy, job.budgets)

    return distil(job, len(train), batch_loss, validate, rank,
                  first_line={"float_val_accuracy": float_accuracy})
