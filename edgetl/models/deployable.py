"""The module an artifact is made of, per task: its named outputs and post-processing settings
(one function per task, named by the task's `deployable` slot).

Export traces it, verify and bench run it as the torch reference, evaluate scores it: one
definition, so the exported graph and the run's own figures come from the same computation.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from edgetl import tasks
from edgetl.errors import UsageError


def deployable(model: nn.Module, task: str, raw: bool = False
               ) -> tuple[nn.Module, tuple[str, ...], dict[str, Any]]:
    """(module, output names, post-processing record) of a task's artifact (the task's
    `deployable`).

    `raw` (detection): the head's outputs without decoding and NMS, for users who post-process
    themselves."""
    unknown = UsageError(f"this version cannot export {task} models")
    return tasks.get(task, unknown).load("deployable")(model, raw)


def classifier_deployable(model: nn.Module, raw: bool
                          ) -> tuple[nn.Module, tuple[str, ...], dict[str, Any]]:
    """A classifier's artifact is the model itself: its logits."""
    if raw:
        raise UsageError("--raw applies to detection artifacts (a classifier's logits are "
                         "already raw)")
    return model, ("logits",), {}


def detector_deployable(model: nn.Module, raw: bool
                        ) -> tuple[nn.Module, tuple[str, ...], dict[str, Any]]:
    """A detector's artifact: decoded boxes after NMS (or, `raw`, the head's outputs)."""
    from edgetl.models.detection_outputs import (
        OUTPUT_NAMES,
        RAW_OUTPUT_NAMES,
        DetectionOutputs,
        RawDetectionOutputs,
    )

    settings = model.settings
    record = {"kind": "fcos", "raw": raw, "box_format": "xyxy",
              "box_units": "input pixels (map back with the image's letterbox geometry)",
              "score_threshold": settings.score_threshold, "nms_iou": settings.nms_iou,
              "max_detections": settings.max_detections, "strides": list(model.strides),
              "score": "sqrt(sigmoid(cls_logits) * sigmoid(bbox_ctrness))"}
    if raw:
        return RawDetectionOutputs(model).eval(), RAW_OUTPUT_NAMES, record
    return DetectionOutputs(model).eval(), OUTPUT_NAMES, record


def instance_deployable(model: nn.Module, raw: bool
                        ) -> tuple[nn.Module, tuple[str, ...], dict[str, Any]]:
    """An instance model's artifact: boxes after NMS with a mask each (no raw form)."""
    if raw:
        raise UsageError("--raw applies to detection artifacts",
                         "export instance models with their masks (no --raw)")
    from edgetl.models.instance_outputs import INSTANCE_OUTPUT_NAMES, InstanceOutputs

    settings = model.settings
    record = {"kind": "fcos+mask", "raw": False, "box_format": "xyxy",
              "box_units": "input pixels (map back with the image's letterbox geometry)",
              "score_threshold": settings.score_threshold, "nms_iou": settings.nms_iou,
              "max_detections": settings.max_detections, "strides": list(model.strides),
              "score": "sqrt(sigmoid(cls_logits) * sigmoid(bbox_ctrness))",
              "mask_resolution": settings.mask_resolution,
              "masks": "P(pixel in the instance) on an MxM grid over each box (input "
                       "pixels); paste into the box and threshold at 0.5"}
    return InstanceOutputs(model).eval(), INSTANCE_OUTPUT_NAMES, record


def segmenter_deployable(model: nn.Module, raw: bool
                         ) -> tuple[nn.Module, tuple[str, ...], dict[str, Any]]:
    """A segmenter's artifact: the class mask (or, `raw`, the logits)."""
    record = {"kind": model.settings.kind, "raw": raw,
              "mask": "class index per input pixel (uint8), argmax of the logits; map back "
                      "with the image's letterbox geometry (nearest)"}
    if raw:
        return model.eval(), ("logits",), record
    return SegmentationMask(model).eval(), ("mask",), record


class SegmentationMask(nn.Module):
    """A segmenter's deployable output: the class index of every input pixel (uint8 while the
    classes fit; argmax inside the graph keeps the artifact's output small for the edge)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model
        self.dtype = torch.uint8 if model.num_classes <= 255 else torch.int32

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"mask": self.model(images).argmax(dim=1).to(self.dtype)}
