"""Instance segmentation on the phased trainer: detection's hooks, with masks moving along.

`InstanceTrainer` is `DetectionTrainer` (decode once, boxes through the dense transforms, FCOS
losses, the same phases) with three additions:
- each image's instances are also kept as one id map (0 background, k + 1 on instance k, at
  the decoded size, nearest), which the dense transforms move with the pixels and the boxes
  (flip, scale jitter, crop: a box dropped for its visible share drops its id too);
- the model's losses add the mask term (`EdgeInstance.losses`);
- validation scores masks and boxes with pycocotools (`InstanceEvaluator`), so the epoch is
  picked on validation mask mAP (`val_mask_map`); the truth masks are encoded once.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from edgetl.artifact.postprocess import Instances
from edgetl.data.detection.masks import instance_id_map, instance_rles
from edgetl.data.samples import Sample
from edgetl.data.transforms_dense import dense_eval_transform, dense_train_transform
from edgetl.geometry import geometry_for
from edgetl.metrics.instance import InstanceEvaluator
from edgetl.spec import PreprocessSpec
from edgetl.train.detection import (
    BoxSamples,
    DecodedImage,
    DetectionTrainer,
    build_letterboxed,
)
from edgetl.train.plan import PhasePlan

VAL_MASK_SEED = 0  # the mask loss's box subsample in validation is the same every epoch


def decoded_id_map(sample: Sample, image: DecodedImage) -> torch.Tensor:
    """The non-crowd instances of a sample as an id map at the decoded image's size (int16;
    nearest: each decoded pixel takes the file pixel its centre falls on)."""
    target = sample.target
    masks = [m for m, crowd in zip(target.masks, target.crowd, strict=True) if not crowd]
    ids = instance_id_map(masks, image.source)
    height, width = image.pixels.shape[-2:]
    rows = np.minimum(((np.arange(height) + 0.5) * ids.shape[0] / height).astype(np.int64),
                      ids.shape[0] - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * ids.shape[1] / width).astype(np.int64),
                      ids.shape[1] - 1)
    return torch.from_numpy(ids[rows[:, None], cols[None, :]].astype(np.int16))


class InstanceSamples(BoxSamples):
    """Decoded images with boxes and their id map through a v2 transform:
    (image, {boxes, labels, ids, idmap}, index)."""

    def __init__(self, samples: list[Sample], images: list[DecodedImage], id_maps:
                 list[torch.Tensor], transform: Any, record_index: Callable[[str], int]
                 ) -> None:
        super().__init__(samples, images, transform, record_index)
        self.id_maps = id_maps

    def sample(self, index: int) -> dict[str, Any]:
        """The boxes' sample, with each object's id and the id map moving with them."""
        sample = super().sample(index)
        sample["ids"] = torch.arange(1, len(sample["labels"]) + 1)
        sample["masks"] = tv_tensors.Mask(self.id_maps[index][None].float())
        return sample

    def target(self, out: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {**super().target(out), "ids": out["ids"],
                "idmap": out["masks"].as_subclass(torch.Tensor)[0]}


class InstanceTrainer(DetectionTrainer):
    """An FCOS detector with a Mask R-CNN mask branch, trained in phases."""

    def build_model(self) -> tuple[torch.nn.Module, PreprocessSpec]:
        from edgetl.models.instance import InstanceSettings, build_instance_model

        return build_letterboxed(self, InstanceSettings, self.recipe.model.instance,
                                 build_instance_model)

    def prepare_data(self) -> None:
        super().prepare_data()
        t0 = time.perf_counter()
        self.train_ids = [decoded_id_map(s, img) for s, img in
                          zip(self.train_s, self.train_images, strict=True)]
        self.val_ids = [decoded_id_map(s, img) for s, img in
                        zip(self.val_s, self.val_images, strict=True)]
        self.val_truth = [instance_rles(s.target.masks, img.source)
                          for s, img in zip(self.val_s, self.val_images, strict=True)]
        self.console.print(f"read the instance masks in {time.perf_counter() - t0:.1f} s")

    def summary_of(self, report: dict[str, Any]) -> dict[str, Any]:
        return {name: report.get(key) for name, key in (
            ("test_mask_map", "mask_map"), ("test_mask_map_ci95", "mask_map_ci95"),
            ("test_mask_map50", "mask_map50"), ("test_box_map", "box_map"),
            ("test_box_map_ci95", "box_map_ci95"), ("test_box_map50", "box_map50"))}

    # ------------------------------------------------------------------ data of a phase
    def train_transform(self) -> Any:
        return dense_train_transform(self.spec, self.augment, mask_fill=0, per_box=("ids",))

    def eval_transform(self) -> Any:
        return dense_eval_transform(self.spec, mask_fill=0)

    def samples_of(self, samples: list[Sample], images: list[DecodedImage], transform: Any
                   ) -> Dataset:
        ids = self.train_ids if samples is self.train_s else self.val_ids
        if self.spec.tile is not None:
            from edgetl.train.tiles import InstanceTileSamples

            return InstanceTileSamples(samples, images, ids, transform, self.task_record.index,
                                       self.spec.tile, self.augment.min_visible)
        return InstanceSamples(samples, images, ids, transform, self.task_record.index)

    # ------------------------------------------------------------------ validation
    @torch.no_grad()
    def validate(self, plan: PhasePlan, advance: Callable[[int], None]) -> dict[str, float]:
        from edgetl.models.instance_outputs import InstanceOutputs
        from edgetl.train.tiles import TileMerger, TileSamples

        outputs = InstanceOutputs(self.model).to(self.rt.device).eval()
        tiles = plan.val_loader.dataset
        merger = TileMerger(tiles) if isinstance(tiles, TileSamples) else None
        evaluator = InstanceEvaluator(self.task_record, self.settings.max_detections)
        generator = torch.Generator().manual_seed(VAL_MASK_SEED)
        total, seen = 0.0, 0
        for images, targets, indices in plan.val_loader:
            images, targets = self.rt.move(images), self._targets(targets)
            with self.rt.autocast():
                head, features = self.model.head_outputs(images)
            head = {k: v.float() for k, v in head.items()}
            features = [f.float() for f in features]
            per_level = [f.size(2) * f.size(3) for f in features]
            losses = self.model.compute_loss(targets, head, [outputs.anchors] * len(images),
                                             per_level)
            mask = self.model.mask_loss(features, targets, generator)
            total += (float(sum(losses.values())) + self.settings.mask_weight * float(mask)) \
                * len(images)
            seen += len(images)
            found = outputs.select(*outputs.decode(head))
            found["masks"] = outputs.masks(features, found)
            if merger is not None:  # windows' instances, merged per image below
                merger.add(indices, to_original_instances(
                    found, [tiles.crop(i) for i in indices], self.spec))
            else:
                evaluator.update([self.val_s[i] for i in indices],
                                 to_original_instances(found,
                                                       [self.val_images[i] for i in indices],
                                                       self.spec),
                                 [self.val_truth[i] for i in indices])
            advance(len(images))
        if merger is not None:
            evaluator.update(self.val_s, merger.merged_instances(), self.val_truth)
        report = evaluator.compute()
        return {"loss": total / max(1, seen), "mask_map": report.mask_stats["map"],
                "mask_map50": report.mask_stats["map50"], "map": report.box_stats["map"],
                "map50": report.box_stats["map50"]}


def to_original_instances(found: dict[str, torch.Tensor], images: list[DecodedImage],
                          spec: PreprocessSpec) -> list[Instances]:
    """Batched fixed-K outputs -> per image, real rows only, in the file's pixels (masks
    pasted over the unclipped boxes, reported boxes clipped to the image)."""
    out = []
    arrays = {k: v.float().cpu().numpy() if v.is_floating_point() else v.cpu().numpy()
              for k, v in found.items()}
    for row, image in enumerate(images):
        height, width = image.pixels.shape[-2:]
        geo = geometry_for(int(height), int(width), spec)
        kept = int(arrays["num_detections"][row])
        raw = geo.inverse_boxes(arrays["boxes"][row, :kept], clip=False) / image.factor
        src_h, src_w = image.source
        boxes = raw.copy()
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, src_w)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, src_h)
        keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        out.append(Instances(boxes[keep], arrays["scores"][row, :kept][keep].astype(np.float64),
                             arrays["labels"][row, :kept][keep].astype(np.int64),
                             arrays["masks"][row, :kept][keep], raw[keep], image.source))
    return out
