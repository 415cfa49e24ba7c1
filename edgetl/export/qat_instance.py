"""Quantisation-aware training of an instance model (the instance task's `qat_trainer`).

The detector's (`qat_detection`) with the mask branch: only the network carries quantisers
(backbone with FPN, head, mask head and mask predictor: `qat_model.network_parts`); box
decoding, NMS and RoI pooling's level and coordinate arithmetic stay float. Loss: `task_loss`
x the run's own losses (FCOS's, plus `mask_weight` x the mask BCE on the training instances)
plus `distillation` x (the detection head's distillation, `qat_detection.head_distillation`,
+ `mask_distillation`: T^2 x binary cross-entropy of the student's mask logits at temperature T
against the float model's sigmoid at T, on the training boxes, each model pooling its own
features). Validation before training and after each epoch: mask mAP, box mAP and the loss;
the epoch with the best mask mAP (then box mAP) is kept, before training included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.export.qat_detection import EVAL_BATCH, CachedSplit, head_distillation
from edgetl.export.qat_phase import QatJob, QatTraining

VAL_MASK_SEED = 0  # the validation mask loss's box subsample is the same every epoch


def training_rois(targets: list[dict[str, Any]], per_image: int) -> Any:
    """[R, 5] rois (image index, box in input pixels) of the first `per_image` training boxes
    of each image of a batch (the mask loss's cap, so the cost stays bounded)."""
    import torch

    rows = [torch.cat([torch.full_like(t["boxes"][:per_image, :1], i),
                       t["boxes"][:per_image]], dim=1) for i, t in enumerate(targets)]
    return torch.cat(rows).float() if rows else torch.zeros(0, 5)


def mask_distillation(student_logits: Any, teacher_logits: Any, temperature: float) -> Any:
    """T^2 x BCE of the student's mask logits at T against the float model's sigmoid at T,
    averaged over rois, classes and mask pixels."""
    import torch
    import torch.nn.functional as F

    soft = torch.sigmoid(teacher_logits / temperature)
    return temperature ** 2 * F.binary_cross_entropy_with_logits(
        student_logits / temperature, soft)


def _rank(figures: dict[str, Any]) -> tuple[float, float]:
    return (figures["val_mask_map"] or 0.0, figures["val_map"] or 0.0)


def train_instance(job: QatJob) -> QatTraining:
    """Distil the float instance model into its fake-quantised copy (module docstring)."""
    import torch

    from edgetl.data.detection.masks import instance_rles
    from edgetl.data.transforms_dense import dense_eval_transform
    from edgetl.errors import UsageError
    from edgetl.export.qat_loop import distil
    from edgetl.metrics.instance import InstanceEvaluator
    from edgetl.models.instance_outputs import InstanceOutputs
    from edgetl.train.detection import decode_images
    from edgetl.train.instance import InstanceSamples, decoded_id_map, to_original_instances

    if job.spec.tile is not None:
        raise UsageError("quantisation-aware training is not built for tiled instance runs "
                         "yet", "export without --qat")
    data = job.run.dataset()
    train, val = data.by_split("train"), data.by_split("val")
    images = decode_images(train + val, job.spec)
    ids = [decoded_id_map(s, img) for s, img in zip(train + val, images, strict=True)]
    transform = dense_eval_transform(job.spec, mask_fill=0)
    n, index_of = len(train), job.record.index
    train_set = CachedSplit(InstanceSamples(train, images[:n], ids[:n], transform, index_of),
                            job.spec)
    val_set = CachedSplit(InstanceSamples(val, images[n:], ids[n:], transform, index_of),
                          job.spec)
    truth = [instance_rles(s.target.masks, img.source)
             for s, img in zip(val, images[n:], strict=True)]
    student, teacher = job.student, job.teacher
    settings = student.settings
    outputs = InstanceOutputs(student).eval()
    temperature, weight = job.settings.temperature, job.settings.distillation

    def task_loss(x: Any, head: dict[str, Any], features: list[Any],
                  targets: list[dict[str, Any]], generator: Any = None) -> Any:
        per_level = [f.size(2) * f.size(3) for f in features]
        terms = student.compute_loss(targets, head, [outputs.anchors] * len(x), per_level)
        mask = student.mask_loss(features, targets, generator)
        return sum(terms.values()) + settings.mask_weight * mask

    def validate() -> dict[str, Any]:
        if not len(val_set):
            return {"val_mask_map": None, "val_map": None, "val_loss": None, "images": 0}
        evaluator = InstanceEvaluator(job.record, settings.max_detections)
        generator = torch.Generator().manual_seed(VAL_MASK_SEED)
        total = 0.0
        with torch.no_grad():
            for start in range(0, len(val_set), EVAL_BATCH):
                index = list(range(start, min(start + EVAL_BATCH, len(val_set))))
                x, targets = val_set.take(index)
                head, features = student.head_outputs(x)
                total += float(task_loss(x, head, features, targets, generator)) * len(index)
                found = outputs.select(*outputs.decode(head))
                found["masks"] = outputs.masks(features, found)
                evaluator.update([val[i] for i in index],
                                 to_original_instances(found, [images[n + i] for i in index],
                                                       job.spec),
                                 [truth[i] for i in index])
        report = evaluator.compute()
        return {"val_mask_map": report.mask_stats["map"], "val_map": report.box_stats["map"],
                "val_loss": total / len(val_set), "images": len(val_set)}

    def batch_loss(index: np.ndarray) -> Any:
        x, targets = train_set.take(index)
        head, features = student.head_outputs(x)
        loss = job.settings.task_loss * task_loss(x, head, features, targets)
        if weight > 0:
            with torch.no_grad():
                reference, reference_features = teacher.head_outputs(x)
            loss = loss + weight * head_distillation(head, reference, temperature)
            rois = training_rois(targets, settings.mask_rois_per_image)
            if len(rois):
                with torch.no_grad():
                    soft = teacher.mask_logits(reference_features, rois)
                loss = loss + weight * mask_distillation(student.mask_logits(features, rois),
                                                         soft, temperature)
        return loss

    return distil(job, len(train_set), batch_loss, validate, _rank)
