"""Training and evaluation transforms built from a `PreprocessSpec` (torchvision transforms v2).

The evaluation transform takes the decoded PIL image (`load_image`), so torchvision resizes it
with PIL itself: the same resampler as the torch-free deployment reference (`reference.py`).
Resizing uint8 tensors instead (torchvision's own antialias kernels) was measured to differ from
PIL by up to 4 levels with bicubic on noisy RGB JPEGs, a train/deploy mismatch for no gain.
Tensors of an image already in the spec's channel order (`load_uint8_tensor`) are accepted too
and then resized by torchvision's tensor kernels. Training augmentation runs on cached tensors.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import torch
from PIL import Image
from torchvision import tv_tensors
from torchvision.transforms import InterpolationMode, v2
from torchvision.transforms.v2 import functional as F

from edgetl.artifact.reference import decode_image, to_hwc3
from edgetl.errors import RecipeError
from edgetl.geometry import geometry_for
from edgetl.spec import PreprocessSpec

_INTERP = {
    "nearest": InterpolationMode.NEAREST,
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
}

AugmentPreset = Literal["none", "light", "standard", "strong", "conservative"]


@dataclass(frozen=True)
class AugmentSettings:
    """What the training transform may change. Presets fill these; a recipe may override each."""

    random_resized_crop: bool = False
    scale: tuple[float, float] = (0.6, 1.0)
    ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: bool = False
    vflip: bool = False
    rot90: bool = False  # random multiples of 90 degrees (for square, orientation-free domains)
    rotate_degrees: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    hue: float = 0.0
    random_erasing: float = 0.0


PRESETS: dict[str, AugmentSettings] = {
    "none": AugmentSettings(),
    "light": AugmentSettings(random_resized_crop=True, scale=(0.8, 1.0), hflip=True),
    "standard": AugmentSettings(
        random_resized_crop=True, scale=(0.6, 1.0), hflip=True, brightness=0.2, contrast=0.2,
        saturation=0.2,
    ),
    "strong": AugmentSettings(
        random_resized_crop=True, scale=(0.35, 1.0), hflip=True, rotate_degrees=15.0,
        brightness=0.4, contrast=0.4, saturation=0.4, hue=0.05, random_erasing=0.25,
    ),
    # Geometry carries meaning (text, gauges, oriented parts): only mild scale changes and
    # photometric jitter; flips or rotations only when the recipe turns them on explicitly.
    "conservative": AugmentSettings(
        random_resized_crop=True, scale=(0.85, 1.0), ratio=(0.95, 1.05), brightness=0.1,
        contrast=0.1,
    ),
}


def augment_settings(preset: str, **overrides: object) -> AugmentSettings:
    """The preset's settings with the recipe's explicit overrides applied."""
    if preset not in PRESETS:
        raise RecipeError(f"unknown augmentation preset {preset!r}",
                          f"use one of {sorted(PRESETS)}")
    clean = {k: v for k, v in overrides.items() if v is not None}
    for key in ("scale", "ratio"):
        if key in clean:
            clean[key] = tuple(clean[key])  # type: ignore[arg-type]
    return replace(PRESETS[preset], **clean)  # type: ignore[arg-type]


class Letterbox(v2.Transform):
    """Resize to fit the spec's input size keeping the aspect ratio, then pad to it.

    Sizes and offsets come from `edgetl.geometry` (shared with the numpy reference); images
    are padded with the spec's fill, masks with `mask_fill`, and boxes move with the pixels
    (tv_tensors). PIL images are resized by PIL, as in the reference.
    """

    def __init__(self, spec: PreprocessSpec, mask_fill: int = 0) -> None:
        super().__init__()
        self.spec = spec
        self.mask_fill = mask_fill
        self.interpolation = _INTERP[spec.interpolation]

    def make_params(self, flat_inputs: list) -> dict:
        height, width = v2.query_size(flat_inputs)
        return {"geometry": geometry_for(height, width, self.spec)}

    def transform(self, inpt: object, params: dict) -> object:
        geo = params["geometry"]
        is_mask = isinstance(inpt, tv_tensors.Mask)
        resized = F.resize(inpt, list(geo.resized),
                           interpolation=InterpolationMode.NEAREST if is_mask
                           else self.interpolation, antialias=self.spec.antialias)
        top, left = geo.offset
        height, width = geo.input
        padding = [left, top, width - left - geo.resized[1], height - top - geo.resized[0]]
        if isinstance(inpt, Image.Image) and inpt.mode == "L":
            fill: object = self.spec.fill[0]
        else:
            fill = self.mask_fill if is_mask else list(self.spec.fill)
        return F.pad(resized, padding, fill=fill)


def _resize_step(spec: PreprocessSpec) -> list[v2.Transform]:
    if spec.geometry == "letterbox":
        return [Letterbox(spec)]
    if spec.resize_mode == "none":
        return []
    size = [spec.resize_size[0]] if spec.resize_mode == "shorter" else list(spec.resize_size)
    return [v2.Resize(size, interpolation=_INTERP[spec.interpolation], antialias=spec.antialias)]


def _normalize_steps(spec: PreprocessSpec) -> list[v2.Transform]:
    steps: list[v2.Transform] = [v2.ToDtype(torch.float32, scale=False)]
    steps.append(v2.Lambda(lambda t: t * spec.scale))
    steps.append(v2.Normalize(mean=list(spec.mean), std=list(spec.std)))
    return steps


class ToChannels:
    """PIL image -> uint8 CHW tensor in the spec's channel order (grey repeated to 3 channels).

    Tensors pass through unchanged: they are already 3-channel in the spec's order."""

    def __init__(self, color_mode: str) -> None:
        self.color_mode = color_mode

    def __call__(self, img: Image.Image | torch.Tensor) -> torch.Tensor:
        if isinstance(img, torch.Tensor):
            return img
        arr = to_hwc3(img, self.color_mode)
        return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))


def resize_transform(spec: PreprocessSpec) -> v2.Compose:
    """Decoded image -> uint8 CHW tensor after the resize step only (what caches store)."""
    return v2.Compose([*_resize_step(spec), ToChannels(spec.color_mode)])


def center_crop_transform(spec: PreprocessSpec) -> v2.Compose:
    """The crop step only: applied to a cached resized image it completes the geometry."""
    return v2.Compose([v2.CenterCrop(list(spec.crop_size))] if spec.crop_size else [])


def geometry_transform(spec: PreprocessSpec) -> v2.Compose:
    """Decoded image -> uint8 CHW tensor after resize and centre crop (no normalisation)."""
    steps = _resize_step(spec)
    if spec.crop_size is not None:
        steps.append(v2.CenterCrop(list(spec.crop_size)))
    steps.append(ToChannels(spec.color_mode))
    return v2.Compose(steps)


def eval_transform(spec: PreprocessSpec) -> v2.Compose:
    """Decoded image (`load_image`) -> normalised float32 CHW tensor: the evaluation path."""
    return v2.Compose([geometry_transform(spec), *_normalize_steps(spec)])


def normalize_transform(spec: PreprocessSpec) -> v2.Compose:
    """uint8 CHW tensor at the final size -> normalised float32 (for cached, pre-resized images)."""
    return v2.Compose(_normalize_steps(spec))


def train_transform(spec: PreprocessSpec, aug: AugmentSettings) -> v2.Compose:
    """uint8 CHW tensor -> augmented, normalised float32 CHW tensor of the spec's input size."""
    interp = _INTERP[spec.interpolation]
    steps: list[v2.Transform] = []
    if aug.random_resized_crop:
        steps.append(
            v2.RandomResizedCrop(
                list(spec.input_size), scale=aug.scale, ratio=aug.ratio, interpolation=interp,
                antialias=spec.antialias,
            )
        )
    else:
        steps.append(geometry_transform(spec))
    if aug.hflip:
        steps.append(v2.RandomHorizontalFlip())
    if aug.vflip:
        steps.append(v2.RandomVerticalFlip())
    if aug.rot90:
        steps.append(v2.RandomChoice([v2.RandomRotation((a, a)) for a in (0, 90, 180, 270)]))
    if aug.rotate_degrees > 0:
        steps.append(v2.RandomRotation(aug.rotate_degrees,
                                       interpolation=InterpolationMode.BILINEAR))
    if any((aug.brightness, aug.contrast, aug.saturation, aug.hue)):
        steps.append(
            v2.ColorJitter(
                brightness=aug.brightness or None,
                contrast=aug.contrast or None,
                saturation=(aug.saturation or None) if spec.color_mode != "grayscale3" else None,
                hue=(aug.hue or None) if spec.color_mode != "grayscale3" else None,
            )
        )
    steps.extend(_normalize_steps(spec))
    if aug.random_erasing > 0:
        steps.append(v2.RandomErasing(p=aug.random_erasing))
    return v2.Compose(steps)


def load_image(path: str, spec: PreprocessSpec) -> Image.Image:
    """Decode a file in the spec's colour mode (PIL 'RGB' or 'L'); input of `eval_transform`."""
    return decode_image(path, spec.color_mode, spec.high_bit_depth)


def load_uint8_tensor(path: str, spec: PreprocessSpec) -> torch.Tensor:
    """Decode a file in the spec's colour mode into a uint8 CHW tensor (3 channels)."""
    arr = to_hwc3(decode_image(path, spec.color_mode, spec.high_bit_depth), spec.color_mode)
    return torch.from_numpy(np.ascontiguousarray(arr.transpose(2, 0, 1)))
