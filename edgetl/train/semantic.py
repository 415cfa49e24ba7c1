"""Semantic segmentation on the phased trainer: masks move with the pixels, mIoU picks the epoch.

Hooks of `PhasedTrainer` for `EdgeSegmenter` (LR-ASPP over a timm encoder). Images and their
masks (class indices through the data set's `MaskRecord`) are decoded once into memory; every
epoch augments both together (`edgetl.data.transforms_dense`: masks resized with nearest
neighbours, padded with the ignore index) into the fixed letterboxed input. The loss is the
recipe's pixel loss (cross-entropy, Dice, both, focal; ignore-aware, optional class weights by
pixel frequency). Validation scores mIoU from one confusion matrix over the validation pixels
at the input resolution (the test report is at each image's own resolution).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from torchvision import tv_tensors

from edgetl.data.samples import DataSet, Sample
from edgetl.data.transforms_dense import (
    dense_augment,
    dense_eval_transform,
    dense_train_transform,
)
from edgetl.errors import DataError, RecipeError
from edgetl.metrics.semantic import SegmentationEvaluator
from edgetl.spec import PreprocessSpec
from edgetl.train.detection import DecodedImage, DenseTrainer, decode_images
from edgetl.train.loop import train_one_epoch
from edgetl.train.plan import PhasePlan
from edgetl.train.progress import progress_bar


def decode_masks(samples: list[Sample], images: list[DecodedImage], record: Any
                 ) -> list[torch.Tensor]:
    """Each sample's mask as class indices (uint8/int64), at its decoded image's size."""
    from torchvision.transforms import InterpolationMode
    from torchvision.transforms.v2 import functional as F

    from edgetl.data.semantic import read_mask

    masks = []
    for sample, image in zip(samples, images, strict=True):
        mask = torch.from_numpy(np.ascontiguousarray(read_mask(sample.target, record)))
        if tuple(mask.shape) != image.source:
            raise DataError(f"{sample.target.mask_path} is {tuple(mask.shape)}, its image "
                            f"{sample.path} is {image.source}")
        if image.factor < 1.0:
            mask = F.resize(mask[None], list(image.pixels.shape[-2:]),
                            interpolation=InterpolationMode.NEAREST)[0]
        masks.append(mask)
    return masks


class MaskSamples(Dataset):
    """Decoded images with their masks through a v2 transform: (image, mask, index)."""

    def __init__(self, images: list[DecodedImage], masks: list[torch.Tensor],
                 transform: Any) -> None:
        self.images, self.masks, self.transform = images, masks, transform

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, int]:
        out = self.transform({"image": tv_tensors.Image(self.images[index].pixels),
                              "mask": tv_tensors.Mask(self.masks[index][None])})
        return (out["image"].as_subclass(torch.Tensor),
                out["mask"].as_subclass(torch.Tensor)[0].long(), index)


class SemanticTrainer(DenseTrainer):
    """An LR-ASPP segmenter over a registry encoder, trained in phases."""

    # ------------------------------------------------------------------ hooks: set-up
    def check_data(self, data: DataSet) -> None:
        if self.dist.enabled:
            raise RecipeError("multi-process training runs classification only in this version",
                              "train segmentation in one process")
        self.mask_record = getattr(data, "record", None)
        if self.mask_record is None:
            raise DataError(f"{data.origin} carries no mask record",
                            "load it with --task semantic")
        if tuple(self.mask_record.classes) != tuple(self.task_record.names):
            raise DataError("the masks' classes differ from the run's class order")
        self.ignore_index = self.mask_record.ignore_index

    def build_model(self) -> tuple[torch.nn.Module, PreprocessSpec]:
        from edgetl.models.segmenter import SegmenterSettings, build_segmenter

        recipe = self.recipe
        self.settings = SegmenterSettings(**recipe.model.segmenter.model_dump())
        return build_segmenter(recipe.model.architecture, self.task_record.num_classes,
                               self.settings, recipe.model.weights)


    def prepare_data(self) -> None:
        from edgetl.train.seg_losses import build_segmentation_loss

        t0 = time.perf_counter()
        everything = self.train_s + self.val_s
        with progress_bar(self.console) as bar:
            task = bar.add_task("decode images and masks (once)", total=len(everything))
            images = decode_images(everything, self.spec, lambda n: bar.advance(task, n))
        masks = decode_masks(everything, images, self.mask_record)
        self.console.print(f"decoded {len(images)} images and masks once in "
                           f"{time.perf_counter() - t0:.1f} s")
        n_train = len(self.train_s)
        self.train_images, self.val_images = images[:n_train], images[n_train:]
        self.train_masks, self.val_masks = masks[:n_train], masks[n_train:]
        counts = np.zeros(self.task_record.num_classes, dtype=np.int64)
        for mask in self.train_masks:
            values = mask.numpy().ravel()
            values = values[values < len(counts)]
            counts += np.bincount(values.astype(np.int64), minlength=len(counts))
        self.criterion, self.class_weights = build_segmentation_loss(
            self.recipe.loss, counts.tolist(), self.ignore_index)
        self.criterion.to(self.rt.device)
        self.augment = dense_augment(self.recipe.augment.preset,
                                     **self.recipe.augment.overrides())

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"class_weights": self.class_weights,
                "mask_record": self.mask_record.to_dict()}

    def summary_of(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"test_miou": report["miou"], "test_miou_ci95": report.get("miou_ci95"),
                "test_mdice": report["mdice"], "test_pixel_accuracy": report["pixel_accuracy"]}

    # ------------------------------------------------------------------ hooks: phases
    def plan_phase(self, phase_index: int) -> PhasePlan:
        phase = self.recipe.phases[phase_index]
        trainable = self.freeze(phase)
        fill = self.ignore_index
        transform = dense_train_transform(self.spec, self.augment, fill, boxes=False) \
            if phase.augment else \
            dense_eval_transform(self.spec, fill)
        train = DataLoader(MaskSamples(self.train_images, self.train_masks, transform),
                           batch_size=self.recipe.train.batch_size, shuffle=True,
                           generator=self.generator, num_workers=0, drop_last=self._drop_last,
                           pin_memory=self.dev == "cuda")
        val = None
        if self.val_s:
            val = DataLoader(MaskSamples(self.val_images, self.val_masks,
                                         dense_eval_transform(self.spec, fill)),
                             batch_size=self.recipe.train.eval_batch_size, shuffle=False,
                             num_workers=0)
        return PhasePlan(phase, trainable, self.model, train, val, cached=False)

    def train_epoch(self, plan: PhasePlan, optimizer: torch.optim.Optimizer,
                    on_step: Callable[[], None], advance: Callable[[int], None]
                    ) -> dict[str, float]:
        def loss(images: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
            with self.rt.autocast():
                logits = plan.training_forward()(images)
            return self.criterion(logits.float(), masks)

        return train_one_epoch(
            loss, plan.train_loader, optimizer, on_step, self.rt, advance,
            self.ema.update if self.ema is not None else None,
            move=lambda b: (self.rt.move(b[0]), b[1].to(self.rt.device, non_blocking=True)))

    @torch.no_grad()
    def validate(self, plan: PhasePlan, advance: Callable[[int], None]) -> dict[str, float]:
        evaluator = SegmentationEvaluator(self.task_record)
        total, seen = 0.0, 0
        for images, masks, _ in plan.val_loader:
            images, masks = self.rt.move(images), masks.to(self.rt.device)
            with self.rt.autocast():
                logits = self.model(images)
            total += float(self.criterion(logits.float(), masks)) * len(images)
            seen += len(images)
            predicted = logits.argmax(dim=1).cpu().numpy()
            for truth, guess in zip(masks.cpu().numpy(), predicted, strict=True):
                evaluator.update(truth, guess)
            advance(len(images))
        report = evaluator.compute().to_dict()
        return {"loss": total / max(1, seen), "miou": report["miou"],
                "pixel_accuracy": report["pixel_accuracy"]}
