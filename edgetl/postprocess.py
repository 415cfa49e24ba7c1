"""From an artifact's named outputs to results in each file's own pixels (numpy only).

Shared by `predict`, `evaluate` and `verify`, so the three read a detector's outputs the same
way: the fixed-K rows (`boxes` in input pixels, `scores`, `labels`, `num_detections`) are cut
to the real detections and mapped back through each image's `Geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetl.geometry import Geometry


@dataclass
class Detections:
    """One image's detections in its original pixels."""

    boxes: np.ndarray  # [K, 4] x1, y1, x2, y2
    scores: np.ndarray  # [K]
    labels: np.ndarray  # [K] class indices

    @classmethod
    def empty(cls) -> Detections:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, dtype=np.int64))

    def above(self, min_score: float) -> Detections:
        keep = self.scores >= min_score
        return Detections(self.boxes[keep], self.scores[keep], self.labels[keep])


def detections_from_outputs(outputs: dict[str, np.ndarray], geometries: list[Geometry],
                            min_score: float = 0.0) -> list[Detections]:
    """Fixed-K outputs (boxes in input pixels) -> per image, boxes in the file's pixels.

    Boxes are clipped to the image; one left without area (it lay in the letterbox padding)
    is no detection of anything in the image and is dropped."""
    found = []
    for row, geo in enumerate(geometries):
        kept = int(outputs["num_detections"][row])
        scores = outputs["scores"][row, :kept].astype(np.float64)
        boxes = geo.inverse_boxes(outputs["boxes"][row, :kept])
        keep = (scores >= min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        found.append(Detections(boxes[keep], scores[keep],
                                outputs["labels"][row, :kept][keep].astype(np.int64)))
    return found


def concat_outputs(parts: list[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Batches of named outputs joined along the batch axis (names from the first part)."""
    if not parts:
        return {}
    return {name: np.concatenate([part[name] for part in parts], axis=0) for name in parts[0]}


def masks_from_outputs(outputs: dict[str, np.ndarray], geometries: list[Geometry]
                       ) -> list[np.ndarray]:
    """A segmenter's `mask` output (class per input pixel) -> per image, class per pixel of
    the file (nearest: each file pixel takes the input pixel its centre maps to)."""
    return [geo.inverse_mask(outputs["mask"][row]) for row, geo in enumerate(geometries)]
