"""Quantisation-aware training of an FCOS detector (the detection task's `qat_trainer`).

Only the network carries quantisers (the backbone with its FPN, and the head: `qat_model.
network_parts`); box decoding and NMS stay float as in post-training int8. Loss: the run's
own FCOS losses (focal classification, GIoU boxes, BCE centreness) on the training boxes, plus
`distillation` x the distillation of the head's raw outputs to the float model's:
- classification logits and centreness: T^2 x binary cross-entropy of the student's logits
  softened by the temperature T against the float model's sigmoid scores at T, averaged over
  anchors and classes;
- box regression: smooth-L1 to the float model's box codes, each anchor weighted by the float
  model's detection score sqrt(max class score x centreness), so background anchors, whose
  codes mean nothing, do not count.
Images go through the evaluation letterbox (no augmentation), transformed once and held in
memory when they fit. Validation before training and after each epoch: mAP, mAP@50 and the
loss; the epoch with the best mAP (then mAP@50) is kept, before training included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.export.qat_phase import QatJob, QatTraining

CACHE_BYTES = 2 * 1024 ** 3  # transformed images held in memory up to this size
EVAL_BATCH = 8


class CachedSplit:
    """(images, targets) of a split by index through a fixed transform, cached when the images
    fit in memory."""

    def __init__(self, dataset: Any, spec: Any) -> None:
        self.dataset = dataset
        height, width = spec.input_size
        fits = len(dataset) * 3 * height * width * 4 <= CACHE_BYTES
        self.cached = [dataset[i][:2] for i in range(len(dataset))] if fits else None

    def __len__(self) -> int:
        return len(self.dataset)

    def take(self, index: Any) -> tuple[Any, list[dict[str, Any]]]:
        import torch

        items = [self.cached[i] if self.cached is not None else self.dataset[i][:2]
                 for i in index]
        return torch.stack([x for x, _ in items]), [t for _, t in items]


def head_distillation(student: dict[str, Any], teacher: dict[str, Any],
                      temperature: float) -> Any:
    """The distillation of a detection head's raw outputs (module docstring)."""
    import torch
    import torch.nn.functional as F

    def soft_bce(name: str) -> Any:
        target = torch.sigmoid(teacher[name] / temperature)
        return temperature ** 2 * F.binary_cross_entropy_with_logits(
            student[name] / temperature, target)

    score = torch.sqrt(torch.sigmoid(teacher["cls_logits"]).amax(-1)
                       * torch.sigmoid(teacher["bbox_ctrness"][..., 0]))
    boxes = F.smooth_l1_loss(student["bbox_regression"], teacher["bbox_regression"],
                             reduction="none", beta=0.1).sum(-1)
    box_term = (score * boxes).sum() / score.sum().clamp(min=1e-6)
    return soft_bce("cls_logits") + soft_bce("bbox_ctrness") + box_term


def _rank(figures: dict[str, Any]) -> tuple[float, float]:
    return (figures["val_map"] or 0.0, figures["val_map50"] or 0.0)


def train_detector(job: QatJob) -> QatTraining:
    """Distil the float detector into its fake-quantised copy (module docstring)."""
    import torch

    from edgetl.data.transforms_dense import dense_eval_transform
    from edgetl.errors import UsageError
    from edgetl.export.qat_loop import distil
    from edgetl.metrics.detection import DetectionEvaluator
    from edgetl.models.detection_outputs import DetectionOutputs
    from edgetl.train.detection import BoxSamples, decode_images, to_original

    if job.spec.tile is not None:
        raise UsageError("quantisation-aware training is not built for tiled detection "
                         "runs yet", "export without --qat")
    data = job.run.dataset()
    train, val = data.by_split("train"), data.by_split("val")
    images = decode_images(train + val, job.spec)
    transform = dense_eval_transform(job.spec)
    n = len(train)
    train_set = CachedSplit(BoxSamples(train, images[:n], transform, job.record.index), job.spec)
    val_set = CachedSplit(BoxSamples(val, images[n:], transform, job.record.index), job.spec)
    student, teacher = job.student, job.teacher
    outputs = DetectionOutputs(student).eval()
    temperature, weight = job.settings.temperature, job.settings.distillation

    def task_loss(x: Any, head: dict[str, Any], features: list[Any],
                  targets: list[dict[str, Any]]) -> Any:
        per_level = [f.size(2) * f.size(3) for f in features]
        terms = student.compute_loss(targets, head, [outputs.anchors] * len(x), per_level)
        return sum(terms.values())

    def validate() -> dict[str, Any]:
        if not len(val_set):
            return {"val_map": None, "val_map50": None, "val_loss": None, "images": 0}
        evaluator = DetectionEvaluator(job.record)
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(val_set), EVAL_BATCH):
                index = list(range(start, min(start + EVAL_BATCH, len(val_set))))
                x, targets = val_set.take(index)
                head, features = student.head_outputs(x)
                total += float(task_loss(x, head, features, targets)) * len(index)
                found = outputs.select(*outputs.decode(head))
                evaluator.update([val[i] for i in index],
                                 to_original(found, [images[n + i] for i in index], job.spec))
        stats = evaluator.compute().stats
        return {"val_map": stats["map"], "val_map50": stats["map50"],
                "val_loss": total / len(val_set), "images": len(val_set)}

    def batch_loss(index: np.ndarray) -> Any:
        x, targets = train_set.take(index)
        head, features = student.head_outputs(x)
        loss = job.settings.task_loss * task_loss(x, head, features, targets)
        if weight > 0:
            with torch.no_grad():
                reference, _ = teacher.head_outputs(x)
            loss = loss + weight * head_distillation(head, reference, temperature)
        return loss

    return distil(job, len(train_set), batch_loss, validate, _rank)
