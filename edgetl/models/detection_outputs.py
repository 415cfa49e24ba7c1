"""A detector's deployable outputs: decoded, scored, NMS'd and padded to a fixed top-K.

`DetectionOutputs(detector)` maps an input batch [N, 3, H, W] to

    boxes          [N, K, 4] float32  x1, y1, x2, y2 in input pixels (clipped to the input)
    scores         [N, K]    float32  descending; 0 where no detection
    labels         [N, K]    int64    class index; -1 where no detection
    num_detections [N]       int64    how many of the K rows are real

with K = the settings' `max_detections`. The same module is the torch reference (evaluation,
verify) and what export traces, so the artifact and the run cannot post-process differently.
Box decoding is torchvision's (`BoxLinearCoder`), scores are FCOS's sqrt(class x centreness).
Non-maximum suppression is one class-aware `NonMaxSuppression` over the whole batch: ONNX's own
operator in the exported graph (TensorRT parses it into its NMS layer), torchvision's `nms` in
eager mode, with ONNX's semantics (per image and class: keep scores above the threshold, drop
boxes whose IoU with a better one exceeds `nms_iou`, at most K per class). The selected
scores are then scattered into an [N, C x A] map and its top-K taken, which gives fixed-shape
outputs without data-dependent shapes.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

OUTPUT_NAMES = ("boxes", "scores", "labels", "num_detections")
RAW_OUTPUT_NAMES = ("cls_logits", "bbox_regression", "bbox_ctrness")


class _NonMaxSuppression(torch.autograd.Function):
    """ONNX NonMaxSuppression: boxes [N, A, 4], scores [N, C, A] -> selected [M, 3] int64
    rows of (image, class, box), computed with torchvision in eager mode."""

    @staticmethod
    def forward(ctx: Any, boxes: torch.Tensor, scores: torch.Tensor, max_per_class: int,
                iou: float, score_threshold: float) -> torch.Tensor:
        from torchvision.ops import nms

        rows = []
        for image in range(boxes.shape[0]):
            for cls in range(scores.shape[1]):
                candidates = torch.nonzero(scores[image, cls] > score_threshold).flatten()
                if candidates.numel() == 0:
                    continue
                keep = nms(boxes[image, candidates].float(),
                           scores[image, cls, candidates].float(), iou)[:max_per_class]
                picked = candidates[keep]
                rows.append(torch.stack([torch.full_like(picked, image),
                                         torch.full_like(picked, cls), picked], dim=1))
        if not rows:
            return torch.zeros((0, 3), dtype=torch.int64, device=boxes.device)
        return torch.cat(rows).to(torch.int64)

    @staticmethod
    def symbolic(g: Any, boxes: Any, scores: Any, max_per_class: int, iou: float,
                 score_threshold: float) -> Any:
        return g.op(
            "NonMaxSuppression", boxes, scores,
            g.op("Constant", value_t=torch.tensor([max_per_class], dtype=torch.int64)),
            g.op("Constant", value_t=torch.tensor([iou], dtype=torch.float32)),
            g.op("Constant", value_t=torch.tensor([score_threshold], dtype=torch.float32)),
            center_point_box_i=0)


class DetectionOutputs(nn.Module):
    """Detector -> fixed-shape detections (see the module docstring)."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector
        settings = detector.settings
        self.max_detections = int(settings.max_detections)
        self.score_threshold = float(settings.score_threshold)
        self.nms_iou = float(settings.nms_iou)
        height, width = detector.input_size
        self.register_buffer("anchors", self._anchors(detector, height, width), persistent=False)

    @staticmethod
    def _anchors(detector: nn.Module, height: int, width: int) -> torch.Tensor:
        """The anchor points of the fixed input size: a constant of the graph."""
        was_training = detector.training
        detector.eval()
        with torch.no_grad():
            probe = torch.zeros(1, 3, height, width)
            _, features = detector.head_outputs(probe)
            anchors = detector.anchor_boxes(probe, features)
        detector.train(was_training)
        return anchors

    def decode(self, head: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """Boxes [N, A, 4] in input pixels and scores [N, A, C] from raw head outputs."""
        codes = head["bbox_regression"].float()
        boxes = self.detector.box_coder.decode(codes, self.anchors)
        height, width = self.detector.input_size
        boxes = torch.stack([boxes[..., 0].clamp(0, width), boxes[..., 1].clamp(0, height),
                             boxes[..., 2].clamp(0, width), boxes[..., 3].clamp(0, height)],
                            dim=-1)
        scores = torch.sqrt(torch.sigmoid(head["cls_logits"].float())
                            * torch.sigmoid(head["bbox_ctrness"].float()))
        return boxes, scores

    def select(self, boxes: torch.Tensor, scores: torch.Tensor) -> dict[str, torch.Tensor]:
        """NMS, then the K best of what it kept, padded."""
        batch, anchors, classes = scores.shape
        per_class = scores.permute(0, 2, 1)  # [N, C, A]
        selected = _NonMaxSuppression.apply(boxes, per_class.contiguous(), self.max_detections,
                                            self.nms_iou, self.score_threshold)
        image, cls, box = selected[:, 0], selected[:, 1], selected[:, 2]
        flat = torch.full((batch, classes * anchors), -1.0, device=scores.device)
        flat[image, cls * anchors + box] = per_class[image, cls, box]
        k = min(self.max_detections, classes * anchors)
        top_scores, top_index = flat.topk(k, dim=1)
        valid = top_scores > 0
        labels = torch.where(valid, top_index // anchors, torch.full_like(top_index, -1))
        box_index = (top_index % anchors).unsqueeze(-1).expand(-1, -1, 4)
        top_boxes = boxes.gather(1, box_index) * valid.unsqueeze(-1).to(boxes.dtype)
        return {"boxes": top_boxes, "scores": top_scores.clamp(min=0.0), "labels": labels,
                "num_detections": valid.sum(dim=1)}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        head, _ = self.detector.head_outputs(images)
        return self.select(*self.decode(head))


class RawDetectionOutputs(nn.Module):
    """The head outputs without post-processing (`export --raw`): the user decodes."""

    def __init__(self, detector: nn.Module) -> None:
        super().__init__()
        self.detector = detector

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        head, _ = self.detector.head_outputs(images)
        return {name: head[name] for name in RAW_OUTPUT_NAMES}
