"""Quantisation-aware training of a semantic segmenter (the semantic task's `qat_trainer`).

Loss: the run's own pixel loss (the recipe's `loss:`, class weights from the training masks'
pixel counts, ignore-aware) on the training masks, plus `distillation` x T^2 x KL(student ||
float model) per pixel on logits softened by the temperature T, averaged over the input's
pixels. Images and masks go through the evaluation letterbox (no augmentation), transformed
once and held in memory when they fit; the float model's logits are computed per batch (a
whole split of per-pixel logits would not fit). Validation before training and after each
epoch: mIoU, loss and the share of labelled pixels whose class agrees with the float model;
the epoch with the best mIoU (then agreement) is kept, before training included.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.export.qat_phase import QatJob, QatTraining

CACHE_BYTES = 2 * 1024 ** 3  # transformed images held in memory up to this size
EVAL_BATCH = 8


class _Pairs:
    """(image, mask) tensors of a split by index through a fixed transform, cached when the
    images fit in memory."""

    def __init__(self, dataset: Any, spec: Any) -> None:
        self.dataset = dataset
        height, width = spec.input_size
        fits = len(dataset) * 3 * height * width * 4 <= CACHE_BYTES
        self.cached = [dataset[i][:2] for i in range(len(dataset))] if fits else None

    def __len__(self) -> int:
        return len(self.dataset)

    def take(self, index: Any) -> tuple[Any, Any]:
        import torch

        pairs = [self.cached[i] if self.cached is not None else self.dataset[i][:2]
                 for i in index]
        return (torch.stack([p[0] for p in pairs]), torch.stack([p[1] for p in pairs]))


def _pixel_counts(masks: list[Any], classes: int) -> list[int]:
    counts = np.zeros(classes, dtype=np.int64)
    for mask in masks:
        values = mask.numpy().ravel().astype(np.int64)
        counts += np.bincount(values[values < classes], minlength=classes)
    return counts.tolist()


def _rank(figures: dict[str, Any]) -> tuple[float, float]:
    return (figures["val_miou"] or 0.0, figures["val_pixel_agreement"] or 0.0)


def train_segmenter(job: QatJob) -> QatTraining:
    """Distil the float segmenter into its fake-quantised copy (module docstring)."""
    import torch

    from edgetl.data.transforms_dense import dense_eval_transform
    from edgetl.export.qat_loop import distil, kl_to_teacher
    from edgetl.metrics.semantic import SegmentationEvaluator
    from edgetl.train.detection import decode_images
    from edgetl.train.seg_losses import build_segmentation_loss
    from edgetl.train.semantic import MaskSamples, decode_masks

    data = job.run.dataset()
    record = data.record
    train, val = data.by_split("train"), data.by_split("val")
    images = decode_images(train + val, job.spec)
    masks = decode_masks(train + val, images, record)
    transform = dense_eval_transform(job.spec, record.ignore_index)
    n = len(train)
    train_pairs = _Pairs(MaskSamples(images[:n], masks[:n], transform), job.spec)
    val_pairs = _Pairs(MaskSamples(images[n:], masks[n:], transform), job.spec)
    loss_config = job.run.recipe().loss if job.run.recipe_path.is_file() else None
    if loss_config is None:
        from edgetl.recipe_sections import LossConfig

        loss_config = LossConfig()
    criterion, _ = build_segmentation_loss(
        loss_config, _pixel_counts(masks[:n], job.record.num_classes), record.ignore_index)
    student, teacher = job.student, job.teacher
    temperature, weight = job.settings.temperature, job.settings.distillation
    batches = [list(range(s, min(s + EVAL_BATCH, len(val_pairs))))
               for s in range(0, len(val_pairs), EVAL_BATCH)]
    with torch.no_grad():
        reference = [teacher(val_pairs.take(b)[0]).argmax(1) for b in batches]

    def validate() -> dict[str, Any]:
        if not len(val_pairs):
            return {"val_miou": None, "val_loss": None, "val_pixel_agreement": None,
                    "images": 0}
        evaluator = SegmentationEvaluator(job.record)
        total, agree, labelled = 0.0, 0, 0
        with torch.no_grad():
            for index, float_top1 in zip(batches, reference, strict=True):
                x, truth = val_pairs.take(index)
                logits = student(x)
                total += float(criterion(logits, truth)) * len(index)
                top1 = logits.argmax(1)
                valid = truth != record.ignore_index
                agree += int((top1 == float_top1)[valid].sum())
                labelled += int(valid.sum())
                for t, g in zip(truth.numpy(), top1.numpy(), strict=True):
                    evaluator.update(t, g)
        report = evaluator.compute().to_dict()
        return {"val_miou": report["miou"], "val_loss": total / len(val_pairs),
                "val_pixel_agreement": agree / max(1, labelled), "images": len(val_pairs)}

    def batch_loss(index: np.ndarray) -> Any:
        x, truth = train_pairs.take(index)
        out = student(x)
        loss = job.settings.task_loss * criterion(out, truth)
        if weight > 0:
            with torch.no_grad():
                soft = teacher(x)
            loss = loss + weight * kl_to_teacher(out, soft, temperature)
        return loss

    return distil(job, len(train_pairs), batch_loss, validate, _rank)
