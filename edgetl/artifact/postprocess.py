"""From an artifact's named outputs to results in each file's own pixels (numpy only).

Shared by `predict`, `evaluate` and `verify`, so the three read a detector's outputs the same
way: the fixed-K rows (`boxes` in input pixels, `scores`, `labels`, `num_detections`) are cut
to the real detections and mapped back through each image's `Geometry`. An instance model's
`masks` ([K, M, M] over each box) are pasted into the file here too (`paste_mask`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from edgetl.geometry import Geometry
from edgetl.tiling import Window, merge_detections

MASK_THRESHOLD = 0.5  # a pasted mask pixel is in the instance above this probability


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


def merged_detections(outputs: dict[str, np.ndarray], geometries: list[Geometry],
                       windows: list[list[Window]], min_score: float = 0.0) -> list[Detections]:
    """Tiled outputs -> per image, its detections in the file's pixels: `outputs` and
    `geometries` hold one row per window, `windows` each image's windows in that order (the
    tiles' detections shifted to the image and duplicates across tiles suppressed,
    `edgetl.tiling.merge_detections`)."""
    per_tile = detections_from_outputs(outputs, geometries, min_score)
    found, row = [], 0
    for image_windows in windows:
        parts = [(w, d.boxes, d.scores, d.labels)
                 for w, d in zip(image_windows, per_tile[row:row + len(image_windows)],
                                 strict=True)]
        row += len(image_windows)
        boxes, scores, labels, _ = merge_detections(parts)
        found.append(Detections(boxes, scores, labels))
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


@dataclass
class Instances(Detections):
    """One image's instances: detections plus each one's mask, pasted on demand.

    `masks` are the artifact's [K, M, M] probabilities over `paste_boxes` (the boxes in the
    file's pixels before clipping to the image, so a mask keeps its own extent when its box
    reaches into the letterbox padding); `size` is the file's (H, W)."""

    masks: np.ndarray = field(default_factory=lambda: np.zeros((0, 1, 1), np.float32))
    paste_boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))
    size: tuple[int, int] = (0, 0)

    def mask(self, index: int, threshold: float = MASK_THRESHOLD) -> np.ndarray:
        """Instance `index` as a boolean [H, W] mask of the file."""
        full = np.zeros(self.size, dtype=bool)
        crop, (left, top) = paste_mask(self.masks[index], self.paste_boxes[index], self.size,
                                       threshold)
        full[top:top + crop.shape[0], left:left + crop.shape[1]] = crop
        return full

    def rles(self, threshold: float = MASK_THRESHOLD) -> list[dict]:
        """COCO RLE (compressed, JSON-ready counts) of every instance at the file's size."""
        from pycocotools import mask as mask_utils

        out = []
        for k in range(len(self.scores)):
            rle = mask_utils.encode(np.asfortranarray(self.mask(k, threshold).astype(np.uint8)))
            out.append({"size": [int(v) for v in rle["size"]],
                        "counts": rle["counts"].decode("ascii")})
        return out

    def id_map(self, min_score: float = 0.0, threshold: float = MASK_THRESHOLD) -> np.ndarray:
        """[H, W] int32: 0 background, k + 1 where instance k (in this object's order) is;
        where instances overlap, the higher score wins."""
        ids = np.zeros(self.size, dtype=np.int32)
        for k in np.argsort(self.scores, kind="stable"):
            if self.scores[k] < min_score:
                continue
            crop, (left, top) = paste_mask(self.masks[k], self.paste_boxes[k], self.size,
                                           threshold)
            region = ids[top:top + crop.shape[0], left:left + crop.shape[1]]
            region[crop] = k + 1
        return ids


def paste_mask(probs: np.ndarray, box: np.ndarray, size: tuple[int, int],
               threshold: float = MASK_THRESHOLD) -> tuple[np.ndarray, tuple[int, int]]:
    """An M x M mask over `box` (x1, y1, x2, y2 in the file's pixels) -> (boolean crop of the
    pixels the box covers, (left, top) of the crop in the file).

    Each pixel whose centre lies in the box samples the mask bilinearly at the matching point
    (the mask's cells tile the box; edges clamp) and is in the instance when the probability
    exceeds `threshold`. Pixels outside the box are not."""
    height, width = size
    x1, y1, x2, y2 = (float(v) for v in box)
    left, top = max(0, int(np.floor(x1))), max(0, int(np.floor(y1)))
    right, bottom = min(width, int(np.ceil(x2))), min(height, int(np.ceil(y2)))
    if right <= left or bottom <= top or x2 <= x1 or y2 <= y1:
        return np.zeros((0, 0), dtype=bool), (left, top)
    m_rows, m_cols = probs.shape
    cx = np.arange(left, right) + 0.5
    cy = np.arange(top, bottom) + 0.5
    u = (cx - x1) / (x2 - x1) * m_cols - 0.5
    v = (cy - y1) / (y2 - y1) * m_rows - 0.5
    values = _bilinear(probs.astype(np.float64), v, u)
    inside = ((cy >= y1) & (cy < y2))[:, None] & ((cx >= x1) & (cx < x2))[None, :]
    return (values > threshold) & inside, (left, top)


def _bilinear(grid: np.ndarray, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """grid sampled at every (row, col) pair of the two coordinate vectors, edges clamped."""
    def axis(coords: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        coords = coords.clip(0, n - 1)
        low = np.floor(coords).astype(np.int64)
        high = np.minimum(low + 1, n - 1)
        return low, high, coords - low

    r0, r1, fr = axis(rows, grid.shape[0])
    c0, c1, fc = axis(cols, grid.shape[1])
    top = grid[r0][:, c0] * (1 - fc) + grid[r0][:, c1] * fc
    bottom = grid[r1][:, c0] * (1 - fc) + grid[r1][:, c1] * fc
    return top * (1 - fr)[:, None] + bottom * fr[:, None]


def instances_from_outputs(outputs: dict[str, np.ndarray], geometries: list[Geometry],
                           min_score: float = 0.0) -> list[Instances]:
    """An instance artifact's fixed-K outputs -> per image, `Instances` in the file's pixels
    (the same rows `detections_from_outputs` keeps, with their masks)."""
    found = []
    for row, geo in enumerate(geometries):
        kept = int(outputs["num_detections"][row])
        scores = outputs["scores"][row, :kept].astype(np.float64)
        raw = geo.inverse_boxes(outputs["boxes"][row, :kept], clip=False)
        boxes = geo.inverse_boxes(outputs["boxes"][row, :kept])
        keep = (scores >= min_score) & (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
        found.append(Instances(boxes[keep], scores[keep],
                               outputs["labels"][row, :kept][keep].astype(np.int64),
                               outputs["masks"][row, :kept][keep], raw[keep], geo.source))
    return found


def merged_instances(outputs: dict[str, np.ndarray], geometries: list[Geometry],
                     windows: list[list[Window]], min_score: float = 0.0) -> list[Instances]:
    """Tiled instance outputs -> per image, `Instances` in the file's pixels
    (`merge_instance_tiles` of each image's tiles)."""
    per_tile = instances_from_outputs(outputs, geometries, min_score)
    found, row = [], 0
    for image_windows in windows:
        found.append(merge_instance_tiles(image_windows,
                                          per_tile[row:row + len(image_windows)]))
        row += len(image_windows)
    return found


def merge_instance_tiles(windows: list[Window], tiles: list[Instances]) -> Instances:
    """One image's instances from its tiles' (each in its window's pixels): shifted to the
    image, duplicates across tiles suppressed by their boxes as detections are
    (`tiling.merge_detections`); each kept instance keeps its own mask, pasted over its
    shifted box."""
    parts = [(w, t.boxes, t.scores, t.labels) for w, t in zip(windows, tiles, strict=True)]
    boxes, scores, labels, keep = merge_detections(parts)
    side = max((t.masks.shape[-1] for t in tiles if t.masks.ndim == 3), default=1)
    paste = np.concatenate([t.paste_boxes.reshape(-1, 4)
                            + np.array([w[0], w[1], w[0], w[1]], dtype=np.float64)
                            for w, t in zip(windows, tiles, strict=True)])
    masks = np.concatenate([t.masks.reshape(-1, side, side) for t in tiles])
    size = (max(w[3] for w in windows), max(w[2] for w in windows))
    return Instances(boxes, scores, labels, masks[keep], paste[keep], size)
