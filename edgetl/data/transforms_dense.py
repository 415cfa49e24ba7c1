"""Training and evaluation transforms for the dense tasks: pixels and their labels move together.

Built on torchvision transforms v2 and tv_tensors: a sample is a dict with an `image`
(tv_tensors.Image, uint8) and its labels (`boxes` as tv_tensors.BoundingBoxes with `labels`,
and/or a `mask` as tv_tensors.Mask), so flips and photometric jitter from torchvision move boxes
and masks with the pixels. The geometry every sample ends in is the spec's fixed input size:

- evaluation: `Letterbox` (the spec's own resize + pad; the same sizes as the numpy reference);
- training: `RandomLetterbox`, scale jitter around the letterbox scale with a random position:
  smaller than the input it lands somewhere on the padded canvas (zoom out), larger it is
  cropped (zoom in). A box (instance) whose visible share falls below `min_visible` is dropped,
  the rest are clipped; masks are resized with nearest-neighbour sampling and padded with the
  ignore value. `conservative` keeps geometry to flips.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

import torch
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from edgetl.data.transforms import _INTERP, Letterbox, normalize_transform
from edgetl.errors import RecipeError
from edgetl.spec import PreprocessSpec


@dataclass(frozen=True)
class DenseAugment:
    """What dense-task training may change. Presets fill these; a recipe may override each."""

    scale: tuple[float, float] = (1.0, 1.0)  # jitter of the letterbox scale
    min_visible: float = 0.3
    hflip: bool = False
    vflip: bool = False
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0


DENSE_PRESETS: dict[str, DenseAugment] = {
    "none": DenseAugment(),
    "light": DenseAugment(scale=(0.8, 1.25), hflip=True),
    "standard": DenseAugment(scale=(0.5, 1.5), hflip=True, brightness=0.2, contrast=0.2,
                             saturation=0.2),
    "strong": DenseAugment(scale=(0.35, 2.0), hflip=True, brightness=0.4, contrast=0.4,
                           saturation=0.4, hue=0.05),
    # Geometry carries meaning: no rescaling or cropping, flips only (and mild photometry).
    "conservative": DenseAugment(hflip=True, brightness=0.1, contrast=0.1),
}

_DENSE_KEYS = {"scale", "min_visible", "hflip", "vflip", "brightness", "contrast", "saturation",
               "hue"}


def dense_augment(preset: str, **overrides: Any) -> DenseAugment:
    """The preset's settings with the recipe's explicit overrides (classification-only keys
    such as random_resized_crop or rot90 are refused, not ignored)."""
    if preset not in DENSE_PRESETS:
        raise RecipeError(f"unknown augmentation preset {preset!r}",
                          f"use one of {sorted(DENSE_PRESETS)}")
    clean = {k: v for k, v in overrides.items() if v is not None}
    foreign = sorted(set(clean) - _DENSE_KEYS)
    if foreign:
        raise RecipeError(f"augment.{foreign[0]} applies to classification only",
                          f"dense tasks take {', '.join(sorted(_DENSE_KEYS))}")
    if "scale" in clean:
        clean["scale"] = tuple(clean["scale"])
    return replace(DENSE_PRESETS[preset], **clean)


class RandomLetterbox(v2.Transform):
    """Scale jitter + random placement into the spec's input size (see the module docstring)."""

    def __init__(self, spec: PreprocessSpec, scale: tuple[float, float], min_visible: float,
                 mask_fill: int = 255) -> None:
        super().__init__()
        self.spec, self.scale, self.min_visible = spec, scale, min_visible
        self.mask_fill = mask_fill
        self.interpolation = _INTERP[spec.interpolation]

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        target_h, target_w = self.spec.input_size
        low, high = self.scale  # torch's generator: seeded per epoch by the trainer
        jitter = low + (high - low) * float(torch.rand(()))
        factor = min(target_h / height, target_w / width) * jitter
        new_h, new_w = max(1, round(height * factor)), max(1, round(width * factor))
        top = _randint(min(0, target_h - new_h), max(0, target_h - new_h))
        left = _randint(min(0, target_w - new_w), max(0, target_w - new_w))
        return {"size": (new_h, new_w), "offset": (top, left)}

    def transform(self, inpt: Any, params: dict) -> Any:
        size, (top, left) = params["size"], params["offset"]
        height, width = self.spec.input_size
        if isinstance(inpt, tv_tensors.BoundingBoxes):
            return self._boxes(inpt, size, top, left)
        if not isinstance(inpt, tv_tensors.Image | tv_tensors.Mask):
            return inpt
        is_mask = isinstance(inpt, tv_tensors.Mask)
        resized = F.resize(inpt.as_subclass(torch.Tensor), list(size),
                           interpolation=InterpolationMode.NEAREST if is_mask
                           else self.interpolation, antialias=not is_mask)
        fill = torch.tensor([self.mask_fill] if is_mask else list(self.spec.fill),
                            dtype=resized.dtype).view(-1, 1, 1)
        canvas = fill.expand(resized.shape[0], height, width).clone()
        y0, x0 = max(0, top), max(0, left)
        y1, x1 = min(height, top + size[0]), min(width, left + size[1])
        if y1 > y0 and x1 > x0:
            canvas[:, y0:y1, x0:x1] = resized[:, y0 - top:y1 - top, x0 - left:x1 - left]
        return tv_tensors.wrap(canvas, like=inpt)

    def _boxes(self, boxes: tv_tensors.BoundingBoxes, size: tuple[int, int], top: int,
               left: int) -> tv_tensors.BoundingBoxes:
        old_h, old_w = boxes.canvas_size
        height, width = self.spec.input_size
        xyxy = boxes.as_subclass(torch.Tensor).float().clone()
        xyxy[:, [0, 2]] = xyxy[:, [0, 2]] * (size[1] / old_w) + left
        xyxy[:, [1, 3]] = xyxy[:, [1, 3]] * (size[0] / old_h) + top
        area = (xyxy[:, 2] - xyxy[:, 0]).clamp(min=0) * (xyxy[:, 3] - xyxy[:, 1]).clamp(min=0)
        clipped = torch.stack([xyxy[:, 0].clamp(0, width), xyxy[:, 1].clamp(0, height),
                               xyxy[:, 2].clamp(0, width), xyxy[:, 3].clamp(0, height)], dim=1)
        visible = (clipped[:, 2] - clipped[:, 0]) * (clipped[:, 3] - clipped[:, 1])
        hidden = visible < self.min_visible * area.clamp(min=1e-6)
        clipped[hidden] = 0.0  # zero area: SanitizeBoundingBoxes drops it with its label
        return tv_tensors.BoundingBoxes(clipped, format="XYXY", canvas_size=(height, width))


def _randint(low: int, high: int) -> int:
    """An integer in [low, high] from torch's generator."""
    return low + int(torch.randint(high - low + 1, ()))


def dense_train_transform(spec: PreprocessSpec, aug: DenseAugment, mask_fill: int = 255,
                          boxes: bool = True, per_box: tuple[str, ...] = ()) -> v2.Compose:
    """uint8 sample dict -> augmented sample at the input size, image normalised (float32).

    With `boxes`, boxes that lost their visible share (and their labels, and the sample's
    other per-box entries named in `per_box`, e.g. instance ids) are removed."""
    steps: list[v2.Transform] = []
    if any((aug.brightness, aug.contrast, aug.saturation, aug.hue)):
        grey = spec.color_mode == "grayscale3"
        steps.append(v2.ColorJitter(brightness=aug.brightness or None,
                                    contrast=aug.contrast or None,
                                    saturation=None if grey else aug.saturation or None,
                                    hue=None if grey else aug.hue or None))
    steps.append(RandomLetterbox(spec, aug.scale, aug.min_visible, mask_fill))
    if aug.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if aug.vflip:
        steps.append(v2.RandomVerticalFlip())
    if boxes:
        steps.append(v2.SanitizeBoundingBoxes(min_size=1.0) if not per_box else
                     SanitizePerBox(("labels", *per_box), min_size=1.0))
    steps.append(_NormalizeImage(spec))
    return v2.Compose(steps)


class SanitizePerBox:
    """Drop degenerate boxes and the same rows of the per-box entries `keys`, leaving masks
    whole. torchvision's `SanitizeBoundingBoxes` also indexes every `Mask` by the kept boxes
    (it takes masks to be one per box), so an instance-id map, one mask for all boxes, lost
    its only channel whenever a single box was dropped."""

    def __init__(self, keys: tuple[str, ...], min_size: float = 1.0) -> None:
        self.keys = keys
        self.min_size = min_size

    def __call__(self, sample: dict[str, Any]) -> dict[str, Any]:
        boxes = sample["boxes"]
        height, width = boxes.canvas_size
        valid = ((boxes[:, 2] - boxes[:, 0] >= self.min_size)
                 & (boxes[:, 3] - boxes[:, 1] >= self.min_size)
                 & (boxes >= 0).all(dim=-1) & (boxes[:, 0] < width) & (boxes[:, 1] < height))
        out = dict(sample)
        out["boxes"] = tv_tensors.wrap(boxes[valid], like=boxes)
        for key in self.keys:
            out[key] = sample[key][valid]
        return out


def dense_eval_transform(spec: PreprocessSpec, mask_fill: int = 255) -> v2.Compose:
    """uint8 sample dict -> the evaluation input: the spec's letterbox, image normalised."""
    return v2.Compose([Letterbox(spec, mask_fill=mask_fill), _NormalizeImage(spec)])


class _NormalizeImage(v2.Transform):
    """The spec's scale/mean/std on the image only (boxes and masks pass through)."""

    def __init__(self, spec: PreprocessSpec) -> None:
        super().__init__()
        self.normalize = normalize_transform(spec)

    def transform(self, inpt: Any, params: dict) -> Any:
        if isinstance(inpt, tv_tensors.Image):
            return tv_tensors.wrap(self.normalize(inpt.as_subclass(torch.Tensor)), like=inpt)
        return inpt
