"""An instance model's deployable outputs: detection's, plus each detection's mask.

`InstanceOutputs(model)` maps an input batch [N, 3, H, W] to detection's four outputs (see
`edgetl.models.detection_outputs`: decode, one class-aware NMS, top-K, fixed shapes) and

    masks [N, K, M, M] float32  P(pixel in the instance) over each box, on the channel of the
                                detection's class; 0 where no detection

The mask branch runs on the K kept boxes of every image (padding rows are zero-area boxes
whose masks are zeroed), so the graph has no data-dependent shapes. Pasting a mask into the
image (resize to the box, threshold 0.5) is post-processing in numpy
(`edgetl.artifact.postprocess.paste_mask`): the artifact stays small and the masks keep their
resolution whatever the image size.
"""

from __future__ import annotations

import torch

from edgetl.models.detection_outputs import OUTPUT_NAMES, DetectionOutputs

INSTANCE_OUTPUT_NAMES = (*OUTPUT_NAMES, "masks")


class InstanceOutputs(DetectionOutputs):
    """Instance model -> fixed-shape detections with masks (see the module docstring)."""

    def masks(self, features: list[torch.Tensor], found: dict[str, torch.Tensor]
              ) -> torch.Tensor:
        """Mask probabilities [N, K, M, M] of the selected detections."""
        boxes, labels = found["boxes"], found["labels"]
        batch, k = labels.shape
        image = (torch.ones_like(labels).cumsum(0) - 1).to(boxes.dtype)  # [N, K] row index
        rois = torch.cat([image.reshape(-1, 1), boxes.reshape(-1, 4)], dim=1)
        rois = rois.to(features[0].dtype)  # RoIAlign wants its boxes in the features' type
        logits = self.detector.mask_logits(features, rois)
        size = logits.shape[-1]
        channel = labels.reshape(-1).clamp(min=0).view(-1, 1, 1, 1).expand(-1, 1, size, size)
        picked = logits.float().gather(1, channel)[:, 0].reshape(batch, k, size, size)
        valid = (labels >= 0).to(picked.dtype).view(batch, k, 1, 1)
        return torch.sigmoid(picked) * valid

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        head, features = self.detector.head_outputs(images)
        found = self.select(*self.decode(head))
        found["masks"] = self.masks(features, found)
        return found
