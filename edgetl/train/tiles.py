"""Detection and instance training on tiles: every window of every image, every epoch
(`edgetl.tiling`).

With a tile rule in the run's spec, an image of the split is cut into the rule's windows
(`tiling.image_windows`, the windows prediction cuts); each window is one training item, its
boxes cut at the window's border with the augmentation's `min_visible` rule
(`tiling.clip_boxes`; an instance model's id map cut with it), and goes through the usual
transform (scale jitter, flips) as a whole
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

from edgetl.artifact.postprocess import Detections, Instances, merge_instance_tiles
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

    def bounds(self, item: int) -> tuple[int, int, int, int]:
        """(top, left, bottom, right) of the item's window in its decoded image's pixels."""
        index, (x0, y0, x1, y1) = self.items[item]
        image = self.images[index]
        f = image.factor
        height, width = image.pixels.shape[-2:]
        top, left = min(height - 1, round(y0 * f)), min(width - 1, round(x0 * f))
        return top, left, max(top + 1, round(y1 * f)), max(left + 1, round(x1 * f))

    def crop(self, item: int) -> Any:
        """The item's window of its decoded image, as a decoded image of its own (pixels,
        factor, window size)."""
        index, (x0, y0, x1, y1) = self.items[item]
        image = self.images[index]
        top, left, bottom, right = self.bounds(item)
        return type(image)(image.pixels[:, top:bottom, left:right], image.factor,
                           (y1 - y0, x1 - x0))

    def sample(self, item: int) -> dict[str, Any]:
        """What the transform moves together: the tile, the boxes cut to it (min_visible)
        and their labels; `rows` are the kept boxes' indices among the image's boxes."""
        index, window = self.items[item]
        tile = self.crop(item)
        boxes, labels = self.boxes[index]
        kept, rows = clip_boxes(boxes, window, self.min_visible)
        return {"image": tv_tensors.Image(tile.pixels),
                "boxes": tv_tensors.BoundingBoxes(
                    torch.as_tensor(kept * tile.factor, dtype=torch.float32), format="XYXY",
                    canvas_size=tuple(tile.pixels.shape[-2:])),
                "labels": torch.as_tensor(labels[rows]), "rows": rows}

    def target(self, out: dict[str, Any]) -> dict[str, torch.Tensor]:
        """The training target of a transformed sample."""
        return {"boxes": out["boxes"].as_subclass(torch.Tensor).float(), "labels": out["labels"]}

    def __getitem__(self, item: int) -> tuple[torch.Tensor, dict[str, torch.Tensor], int]:
        sample = self.sample(item)
        sample.pop("rows")
        out = self.transform(sample)
        return out["image"].as_subclass(torch.Tensor), self.target(out), item


class InstanceTileSamples(TileSamples):
    """Tiles with their boxes and the id map cut to the window: (image, {boxes, labels, ids,
    idmap}, item index). An instance keeps its id (its row + 1, as in the whole image's id
    map); one whose box was dropped by min_visible leaves its pixels without a box."""

    def __init__(self, samples: list[Sample], images: list[Any], id_maps: list[torch.Tensor],
                 transform: Any, record_index: Callable[[str], int], rule: TileRule,
                 min_visible: float) -> None:
        super().__init__(samples, images, transform, record_index, rule, min_visible)
        self.id_maps = id_maps

    def sample(self, item: int) -> dict[str, Any]:
        sample = super().sample(item)
        top, left, bottom, right = self.bounds(item)
        index = self.items[item][0]
        sample["ids"] = torch.as_tensor(sample["rows"] + 1, dtype=torch.int64)
        sample["masks"] = tv_tensors.Mask(
            self.id_maps[index][top:bottom, left:right][None].float())
        return sample

    def target(self, out: dict[str, Any]) -> dict[str, torch.Tensor]:
        return {**super().target(out), "ids": out["ids"],
                "idmap": out["masks"].as_subclass(torch.Tensor)[0]}


class TileMerger:
    """Collects each window's detections (in the window's pixels) and merges them per image."""

    def __init__(self, dataset: TileSamples) -> None:
        self.dataset = dataset
        self.parts: list[list[tuple[Window, Any]]] = [[] for _ in dataset.samples]

    def add(self, items: list[int], found: list[Detections]) -> None:
        for item, dets in zip(items, found, strict=True):
            index, window = self.dataset.items[item]
            self.parts[index].append((window, dets))

    def merged(self) -> list[Detections]:
        out = []
        for parts in self.parts:
            boxes, scores, labels, _ = merge_detections(
                [(w, d.boxes, d.scores, d.labels) for w, d in parts])
            out.append(Detections(boxes, scores, labels))
        return out

    def merged_instances(self) -> list[Instances]:
        """Each image's instances (`postprocess.merge_instance_tiles`)."""
        return [merge_instance_tiles([w for w, _ in parts], [d for _, d in parts])
                for parts in self.parts]
