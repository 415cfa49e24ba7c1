"""Instance segmentation: the edge detector (`EdgeFCOS`) plus a Mask R-CNN mask branch.

The detector is detection's, unchanged (backbone, FPN, FCOS head, target assignment, losses and
the deployable post-processing). On top, torchvision's Mask R-CNN mask branch: boxes are pooled
from the pyramid's P3-P5 by RoIAlign (each box on the level its size calls for,
torchvision's level mapper), run through `MaskRCNNHeads` (a few 3x3 convs, narrow by default:
the torchvision default of 4 x 256 channels costs tens of ms per image on a 2-core CPU with
hundreds of boxes) and `MaskRCNNPredictor` (a 2x transposed conv and one mask logit channel per
class), so an image's masks are [K, M, M] at `mask_resolution` M over each box. Module names
follow torchvision's `MaskRCNN` (`roi_heads.mask_head`, `roi_heads.mask_predictor`), so those
keys of a torchvision-format checkpoint load.

Training: the mask branch sees ground-truth boxes (at most `mask_rois_per_image` per image,
drawn at random), its targets are each instance's mask resampled onto its box at M x M
(RoIAlign on the binary mask, as torchvision's `project_masks_on_boxes`), and the loss is the
binary cross-entropy on the instance's class channel, weighted by `mask_weight`, added to the
FCOS losses. Inference: detection's decode / NMS / top-K, then the mask branch on the kept boxes
(`edgetl.models.instance_outputs`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torchvision.models.detection.mask_rcnn import MaskRCNNHeads, MaskRCNNPredictor
from torchvision.ops import roi_align
from torchvision.ops.poolers import LevelMapper

from edgetl.errors import RecipeError
from edgetl.models.detector import (
    CLASS_LAYERS,
    FEATURE_STRIDES,
    DetectorSettings,
    EdgeFCOS,
    TimmPyramid,
    _features_body,
    build_detector,
)
from edgetl.spec import PreprocessSpec

MASK_CLASS_LAYERS = (*CLASS_LAYERS, "roi_heads.mask_predictor.mask_fcn_logits.")
MASK_BRANCH = "roi_heads."


@dataclass(frozen=True)
class InstanceSettings(DetectorSettings):
    """The detector's settings plus the mask branch; stored in checkpoints as `head`.

    `max_detections` defaults to 400: one microscopy image can hold hundreds of instances."""

    max_detections: int = 400
    mask_resolution: int = 14  # M: each detection's mask is M x M over its box (see recipe.py)
    mask_convs: int = 2
    mask_channels: int = 64
    mask_weight: float = 1.0
    mask_rois_per_image: int = 128  # training: ground-truth boxes the mask loss sees per image

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.mask_resolution < 4 or self.mask_resolution % 2:
            raise RecipeError(f"mask_resolution must be even and at least 4, got "
                              f"{self.mask_resolution}", "use 14 or 28")
        if self.mask_convs < 1 or self.mask_channels < 1 or self.mask_rois_per_image < 1:
            raise RecipeError("mask_convs, mask_channels and mask_rois_per_image must be >= 1")


class PyramidRoIAlign(nn.Module):
    """RoIAlign of boxes from P3-P5, each box from the level torchvision's `LevelMapper`
    (the one `MultiScaleRoIAlign` uses) assigns it. Every level is pooled for every box and
    the right one kept with `where`: pooling is cheap next to the mask head, and the graph has
    no scatter and no shape that depends on the batch size, so it exports with a dynamic
    batch (torchvision's pooler takes one box list per image, which a trace fixes)."""

    def __init__(self, output_size: int) -> None:
        super().__init__()
        self.output_size = output_size
        self.scales = tuple(1.0 / s for s in FEATURE_STRIDES)
        levels = [math.log2(s) for s in FEATURE_STRIDES]
        self.mapper = LevelMapper(int(levels[0]), int(levels[-1]))

    def forward(self, features: list[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        """rois [R, 5] (image index, x1, y1, x2, y2 in input pixels) -> [R, C, S, S]."""
        level = self.mapper([rois[:, 1:]]).view(-1, 1, 1, 1)
        out = None
        for k, (feature, scale) in enumerate(zip(features, self.scales, strict=False)):
            pooled = roi_align(feature, rois, self.output_size, spatial_scale=scale,
                               sampling_ratio=2, aligned=False)
            out = pooled if out is None else torch.where(level == k, pooled, out)
        return out


class MaskBranch(nn.Module):
    """RoI pooling + mask head + mask predictor, named like torchvision's `RoIHeads`."""

    def __init__(self, channels: int, num_classes: int, settings: InstanceSettings) -> None:
        super().__init__()
        self.mask_roi_pool = PyramidRoIAlign(settings.mask_resolution // 2)
        layers = (settings.mask_channels,) * settings.mask_convs
        self.mask_head = MaskRCNNHeads(channels, layers, dilation=1)
        self.mask_predictor = MaskRCNNPredictor(layers[-1], settings.mask_channels, num_classes)


class EdgeInstance(EdgeFCOS):
    """`EdgeFCOS` with a mask branch (see the module docstring)."""

    def __init__(self, backbone: TimmPyramid, num_classes: int, settings: InstanceSettings,
                 input_size: tuple[int, int]) -> None:
        super().__init__(backbone, num_classes, settings, input_size)
        self.roi_heads = MaskBranch(backbone.out_channels, num_classes, settings)

    def mask_logits(self, features: list[torch.Tensor], rois: torch.Tensor) -> torch.Tensor:
        """Mask logits [R, C, M, M] of rois [R, 5] (image index, box in input pixels), from
        the pyramid levels P3-P5 of `features`."""
        pooled = self.roi_heads.mask_roi_pool(features[:len(FEATURE_STRIDES)], rois)
        return self.roi_heads.mask_predictor(self.roi_heads.mask_head(pooled))

    def losses(self, images: torch.Tensor, targets: list[dict[str, torch.Tensor]]
               ) -> dict[str, torch.Tensor]:
        """FCOS's losses plus `mask` (weighted). Targets carry `boxes`, `labels`, and for the
        masks `idmap` ([H, W] instance ids at the input size) with `ids` (each box's id)."""
        head, features = self.head_outputs(images)
        anchors = self.anchor_boxes(images, features)
        per_level = [f.size(2) * f.size(3) for f in features]
        terms = self.compute_loss(targets, head, [anchors] * len(images), per_level)
        terms["mask"] = self.settings.mask_weight * self.mask_loss(features, targets)
        return terms

    def mask_loss(self, features: list[torch.Tensor], targets: list[dict[str, torch.Tensor]],
                  generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean BCE of the class channel's mask logits against the projected masks."""
        size = self.settings.mask_resolution
        boxes, labels, wanted = [], [], []
        for target in targets:
            count = len(target["boxes"])
            pick = torch.arange(count)
            if count > self.settings.mask_rois_per_image:
                pick = torch.randperm(count, generator=generator)[
                    :self.settings.mask_rois_per_image].sort().values
            pick = pick.to(target["boxes"].device)
            boxes.append(target["boxes"][pick].float())
            labels.append(target["labels"][pick])
            wanted.append(project_masks(target["idmap"], target["ids"][pick],
                                        boxes[-1], size))
        if sum(len(b) for b in boxes) == 0:  # no instance: a zero that still has a graph
            return sum(p.sum() for p in self.roi_heads.parameters()) * 0.0
        rois = torch.cat([torch.cat([torch.full_like(b[:, :1], i), b], dim=1)
                          for i, b in enumerate(boxes)])
        logits = self.mask_logits(features, rois)
        label = torch.cat(labels)
        picked = logits[torch.arange(len(label), device=logits.device), label]
        return nn.functional.binary_cross_entropy_with_logits(picked.float(),
                                                              torch.cat(wanted))


def project_masks(idmap: torch.Tensor, ids: torch.Tensor, boxes: torch.Tensor, size: int
                  ) -> torch.Tensor:
    """Each instance's mask (pixels of `idmap` equal to its id) resampled onto its box at
    size x size: RoIAlign of the binary mask, as torchvision's `project_masks_on_boxes`, but on
    a crop around the box (a full-image mask per instance would cost H x W each; the crop keeps
    a pixel of margin so the bilinear samples read the same pixels)."""
    height, width = idmap.shape[-2:]
    out = []
    for value, box in zip(ids.tolist(), boxes.tolist(), strict=True):
        x1, y1, x2, y2 = box
        c0, r0 = max(0, int(x1) - 1), max(0, int(y1) - 1)
        c1, r1 = min(width, int(x2) + 2), min(height, int(y2) + 2)
        crop = (idmap[r0:r1, c0:c1] == value).to(torch.float32)
        roi = torch.tensor([[0.0, x1 - c0, y1 - r0, x2 - c0, y2 - r0]], device=idmap.device)
        out.append(roi_align(crop[None, None], roi, (size, size), 1.0)[0, 0])
    if not out:
        return torch.zeros((0, size, size), device=idmap.device)
    return torch.stack(out)


def build_instance_model(arch: str, num_classes: int, settings: InstanceSettings,
                         input_size: tuple[int, int], weights: str | None = None
                         ) -> tuple[EdgeInstance, PreprocessSpec]:
    """The instance model with the backbone's pretrained ImageNet weights, or the weights of
    a torchvision-format checkpoint: an instance model's (class layers, detection's and the
    mask predictor's, replaced when the class count differs) or a detector's (the mask branch
    starts new)."""
    model, spec = build_detector(arch, num_classes, settings, input_size, weights,
                                 model_class=EdgeInstance, class_layers=MASK_CLASS_LAYERS,
                                 optional=(MASK_BRANCH,))
    return model, spec  # type: ignore[return-value]


def skeleton_for(info: Any) -> EdgeInstance:
    """The instance model's module tree of a checkpoint (`edgetl.checkpoint.CheckpointInfo`)."""
    body, channels = _features_body(info.architecture)
    settings = InstanceSettings.from_dict(info.head)
    return EdgeInstance(TimmPyramid(body, channels, settings.fpn_channels, settings.extra_levels),
                        info.num_classes, settings, tuple(info.spec.input_size))
