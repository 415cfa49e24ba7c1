"""Tiles of a large image: the rule, its windows, boxes cut at tile borders and merged back.

A detector whose objects are small at the input size sees them larger when each image is cut
into tiles of `TileRule.size` source pixels (each tile then letterboxed to the input as a whole
image would be). The rule is resolved once at training (given in the recipe's `tile:` section,
or chosen from the training objects' sizes by `choose_rule`), stored in the run's spec and
embedded with it in every artifact, so training, `predict`, `evaluate`, `verify` and `bench`
cut the same windows (`image_windows`) and merge their detections the same way
(`merge_detections`: boxes shifted to the image's pixels, duplicates across tiles suppressed).

Pure Python and numpy (layer 1): the deployment side imports it without torch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgetl.errors import SpecError

Window = tuple[int, int, int, int]  # x0, y0, x1, y1 in the image's pixels (x1, y1 exclusive)

# choose_rule: a tile is sized so that the smallest third of the objects (the same count
# `data/detection/small.py` warns on) reach TARGET_SIDE px at the input size ...
TARGET_SIDE = 24
# ... but a tile is never smaller than input / MAX_ZOOM source pixels (upsampling beyond it adds
# no detail), and its size is a multiple of ROUND px.
MAX_ZOOM = 4
ROUND = 16
DEFAULT_OVERLAP = 0.25
# Merging across tiles: a box is a duplicate of a higher-scored one of its class from another
# window when their intersection covers more than this share of the smaller box (SAHI's
# default match: intersection over smaller, 0.5).
MERGE_OVERLAP = 0.5


@dataclass(frozen=True)
class TileRule:
    """Square tiles of `size` source pixels overlapping by `overlap` of a tile (0 to 0.9), and
    optionally the whole image as one more tile (`whole_image`: large objects seen whole)."""

    size: int
    overlap: float = DEFAULT_OVERLAP
    whole_image: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.size, bool) or not isinstance(self.size, int) or self.size < 16:
            raise SpecError(f"tile size must be a whole number of pixels, at least 16, got "
                            f"{self.size!r}")
        if not 0.0 <= float(self.overlap) <= 0.9:
            raise SpecError(f"tile overlap must be in [0, 0.9], got {self.overlap!r}")
        object.__setattr__(self, "overlap", float(self.overlap))
        object.__setattr__(self, "whole_image", bool(self.whole_image))

    @property
    def stride(self) -> int:
        """Pixels between neighbouring tiles' starts."""
        return max(1, round(self.size * (1.0 - self.overlap)))

    def to_dict(self) -> dict[str, Any]:
        return {"size": self.size, "overlap": self.overlap, "whole_image": self.whole_image}

    @classmethod
    def from_value(cls, value: Any) -> TileRule | None:
        """A rule from its dict (JSON), a rule, or None (no tiling)."""
        if value is None or isinstance(value, TileRule):
            return value
        if not isinstance(value, dict) or set(value) - {"size", "overlap", "whole_image"}:
            raise SpecError(f"tile rule must be an object with size, overlap and whole_image, "
                            f"got {value!r}")
        return cls(**value)

    def describe(self) -> str:
        whole = ", plus the whole image as one more tile" if self.whole_image else ""
        return (f"cut into {self.size}x{self.size} px tiles overlapping by "
                f"{100 * self.overlap:g}% (the last row and column flush with the border)"
                f"{whole}; each tile goes through the steps below, its detections are shifted "
                f"to the image and merged: of two same-class boxes from different tiles whose "
                f"intersection covers over {MERGE_OVERLAP} of the smaller, the higher score "
                "stays")


def tile_starts(length: int, size: int, stride: int) -> list[int]:
    """Starts along one axis: every `stride`, the last one flush with the border."""
    if length <= size:
        return [0]
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] + size < length:
        starts.append(length - size)
    return starts


def tile_windows(width: int, height: int, rule: TileRule) -> list[Window]:
    """The tiles covering a width x height image, row by row (a tile larger than the image
    along an axis is cut to it)."""
    return [(x0, y0, min(width, x0 + rule.size), min(height, y0 + rule.size))
            for y0 in tile_starts(height, rule.size, rule.stride)
            for x0 in tile_starts(width, rule.size, rule.stride)]


def image_windows(width: int, height: int, rule: TileRule | None) -> list[Window]:
    """Every window an image is run on: its tiles, then the whole image when the rule says so
    (and when it is not already a single tile). No rule: the whole image."""
    whole = (0, 0, width, height)
    if rule is None:
        return [whole]
    windows = tile_windows(width, height, rule)
    if rule.whole_image and windows != [whole]:
        windows.append(whole)
    return windows


def choose_rule(sides: Sequence[float], input_size: int, overlap: float = DEFAULT_OVERLAP,
                whole_image: bool = False) -> TileRule:
    """The tile size for objects whose shorter sides (source pixels) are `sides`.

    A tile of T source px is letterboxed into `input_size`, a scale of input_size / T; the
    smallest third of the objects (their largest side, `s`) should reach TARGET_SIDE px there,
    so T = input_size * s / TARGET_SIDE, rounded down to a multiple of ROUND, at least
    input_size / MAX_ZOOM. An image no larger than T is one tile, so a rule chosen for large
    objects changes nothing."""
    lowest = max(ROUND, math.ceil(input_size / MAX_ZOOM / ROUND) * ROUND)
    positive = sorted(s for s in sides if s > 0)
    if not positive:
        return TileRule(max(lowest, input_size), overlap, whole_image)
    third = positive[len(positive) // 3]
    size = int(input_size * third / TARGET_SIDE) // ROUND * ROUND
    return TileRule(max(lowest, size), overlap, whole_image)


def clip_boxes(boxes: np.ndarray, window: Window, min_visible: float
               ) -> tuple[np.ndarray, np.ndarray]:
    """Boxes [K, 4] (image pixels) cut to `window`: (the kept boxes in the window's pixels,
    the kept rows' indices). A box stays when at least `min_visible` of its area is inside the
    window (and some is), clipped to it."""
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    x0, y0, x1, y1 = window
    inside = np.stack([boxes[:, 0].clip(x0, x1), boxes[:, 1].clip(y0, y1),
                       boxes[:, 2].clip(x0, x1), boxes[:, 3].clip(y0, y1)], axis=1)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    visible = (inside[:, 2] - inside[:, 0]) * (inside[:, 3] - inside[:, 1])
    keep = np.flatnonzero((visible > 0) & (visible >= min_visible * area))
    return inside[keep] - np.array([x0, y0, x0, y0], dtype=np.float64), keep


def nms(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray,
        groups: np.ndarray | None = None, threshold: float = MERGE_OVERLAP) -> np.ndarray:
    """Indices kept by greedy class-wise suppression, highest score first (ties: the earlier
    row). A box is suppressed by a kept one of its class whose intersection covers more than
    `threshold` of the smaller of the two (a box cut at a tile border lies inside the whole
    one the neighbouring tile sees, where its IoU may be low). With `groups` (each row's
    window), only boxes of different windows suppress each other: within one window the
    model's own NMS has already decided."""
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    labels = np.asarray(labels)
    groups = np.zeros(len(boxes), dtype=np.int64) - np.arange(len(boxes)) - 1 \
        if groups is None else np.asarray(groups)
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    suppressed = np.zeros(len(boxes), dtype=bool)
    kept = []
    for i in order:
        if suppressed[i]:
            continue
        kept.append(i)
        rest = np.flatnonzero((labels == labels[i]) & ~suppressed & (groups != groups[i]))
        if not len(rest):
            continue
        w = (np.minimum(boxes[rest, 2], boxes[i, 2]) - np.maximum(boxes[rest, 0], boxes[i, 0]))
        h = (np.minimum(boxes[rest, 3], boxes[i, 3]) - np.maximum(boxes[rest, 1], boxes[i, 1]))
        inter = w.clip(0) * h.clip(0)
        smaller = np.maximum(np.minimum(area[rest], area[i]), 1e-12)
        suppressed[rest[inter / smaller > threshold]] = True
    return np.asarray(kept, dtype=np.int64)


def merge_detections(parts: Sequence[tuple[Window, np.ndarray, np.ndarray, np.ndarray]],
                     threshold: float = MERGE_OVERLAP
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """One image's detections from its windows' (window, boxes in the window's pixels, scores,
    labels): boxes shifted to the image's pixels, then duplicates across windows suppressed
    (`nms` with the window as group).
    Returns (boxes, scores, labels, kept rows' indices into the concatenated parts), highest
    score first."""
    shifted = [np.asarray(b, dtype=np.float64).reshape(-1, 4)
               + np.array([w[0], w[1], w[0], w[1]], dtype=np.float64) for w, b, _, _ in parts]
    boxes = np.concatenate(shifted) if shifted else np.zeros((0, 4))
    scores = (np.concatenate([np.asarray(s, dtype=np.float64) for _, _, s, _ in parts])
              if parts else np.zeros(0))
    labels = (np.concatenate([np.asarray(lab, dtype=np.int64) for _, _, _, lab in parts])
              if parts else np.zeros(0, dtype=np.int64))
    groups = np.concatenate([np.full(len(np.asarray(s)), k) for k, (_, _, s, _)
                             in enumerate(parts)]) if parts else np.zeros(0, dtype=np.int64)
    keep = nms(boxes, scores, labels, groups, threshold)
    return boxes[keep], scores[keep], labels[keep], keep
