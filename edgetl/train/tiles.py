"""Detection training on tiles: every window of every image, every epoch (`edgetl.tiling`).

With a tile rule in the run's spec, an image of the split is cut into the rule's windows
(`tiling.image_windows`, the windows prediction cuts); each window is one training item, its
boxes cut at the window's border with the augmentation's `min_visible` rule
(`tiling.clip_boxes`), and goes through the usual transform (scale jitter, flips) as a whole
image would. Tiles are made from images already split, so an image's tiles and its group stay
in one split. Validation runs the same windows of each validation image and merges their
detections per image (`tiling.merge_detections`), so its mAP is the whole images' mAP, as the
test report's and `evaluate`'s.

All windows every epoch rather than a random window per image: an epoch still sees every
object (objects near tile borders twice), and the validation windows are the prediction ones.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors

from edgetl.artifact.postprocess import Detections
from edgetl.data.detection.geometry import image_size
from edgetl.data.samples import Sample
from edgetl.tiling import TileRule, Window, clip_boxes, image_windows, merge_detections


def tile_items(samples: list[Sample], rule: TileRule) -> list[tuple[int, Window]]:
    """(sample index, window) of every window of every sample, in order."""
    items = []
    for index, sample in enumerate(samples):
        height, width = sample.target.image_size or image_size(sample.path)
        items += [(index, w) for w in image_windows(width, height, rule)]
    return items


class TileSamples(Dataset):
    """Windows of decoded images with their boxes cut to the window, through a v2 transform:
    (image, {boxes, labels}, item index)."""

    def __init__(self, samples: list[Sample], images: list[Any], transform: Any,
                 record_index: Callable[[str], int], rule: TileRule,
                 min_visible: float) -> None:
        self.samples, self.images, self.transform = samples, images, transform
        self.items = tile_items(samples, rule)
        self.min_visible = min_visible
        self.boxes = []
        for sample in samples:
            keep = [i for i, crowd in enumerate(sample.target.crowd) if not crowd]
            self.boxes.append((np.array([sample.target.boxes[i] for i in keep],
                                        dtype=np.float64).reshape(-1, 4),
                               np.array([record_index(sample.target.labels[i]) for i in keep],
                                        dtype=np.int64)))

    def __len__(self) -> int:
        return len(self.items)

    def crop(self, item: int) -> Any:
        """The item's window of its decoded image, as a decoded image of its own (pixels,
        factor, window size)."""
        index, (x0, y0, x1, y1) = self.items[item]
        image = self.images[index]
        f = image.factor
        height, width = image.pixels.shape[-2:]
        top, left = min(height - 1, round(y0 * f)), min(width - 1, round(x0 * f))
        bottom, right = max(top + 1, round(y1 * f)), max(left + 1, round(x1 * f))
        return type(image)(image.pixels[:, top:bottom, left:right], f, (y1 - y0, x1 - x0))

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        index, window = self.items[item]
        tile = self.crop(item)
        boxes, labels = self.boxes[index]
        kept, rows = clip_boxes(boxes, window, self.min_visible)
        out = self.transform({
            "image": tv_tensors.Image(tile.pixels),
            "boxes": tv_tensors.BoundingBoxes(torch.as_tensor(kept * tile.factor,
                                                              dtype=torch.float32),
                                              format="XYXY",
                                              canvas_size=tuple(tile.pixels.shape[-2:])),
            "labels": torch.as_tensor(labels[rows])})
        return (out["image"].as_subclass(torch.Tensor),
                {"boxes": out["boxes"].as_subclass(torch.Tensor).float(),
                 "labels": out["labels"]}, item)


class TileMerger:
    """Collects each window's detections (in the window's pixels) and merges them per image."""

    def __init__(self, dataset: TileSamples) -> None:
        self.dataset = dataset
        self.parts: list[list[tuple[Window, np.ndarray, np.ndarray, np.ndarray]]] = [
            [] for _ in dataset.samples]

    def add(self, items: list[int], found: list[Detections]) -> None:
        for item, dets in zip(items, found, strict=True):
            index, window = self.dataset.items[item]
            self.parts[index].append((window, dets.boxes, dets.scores, dets.labels))

    def merged(self) -> list[Detections]:
        out = []
        for parts in self.parts:
            boxes, scores, labels, _ = merge_detections(parts)
            out.append(Detections(boxes, scores, labels))
        return out
