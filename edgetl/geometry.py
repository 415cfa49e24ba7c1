"""Where each pixel of the model's input came from: per-image maps between coordinate frames.

The preprocessing geometry (`PreprocessSpec.geometry`) turns an image of (h, w) pixels into the
fixed input. For every mode that is an axis-aligned affine map, x_in = x * sx + tx and
y_in = y * sy + ty, so one small record per image (`Geometry`) carries boxes and masks into the
input and back. Sizes and offsets are computed here once, with the rounding the resizers use,
and both the torch training path and the numpy deployment reference call these functions, so
the two cannot drift apart. Pure Python and numpy: predict needs it without torch.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgetl.spec import PreprocessSpec


@dataclass(frozen=True)
class Geometry:
    """The map from one original image (size `source` = (h, w)) into the model input.

    `resized` is (h, w) after resizing, `offset` = (top, left) where the resized image sits in
    the input (negative for a crop, positive for letterbox padding), `input` the input's (H, W).
    """

    source: tuple[int, int]
    resized: tuple[int, int]
    offset: tuple[int, int]
    input: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """(sx, sy): input pixels per original pixel along x and y."""
        return self.resized[1] / self.source[1], self.resized[0] / self.source[0]

    @property
    def content(self) -> tuple[int, int, int, int]:
        """(x1, y1, x2, y2) of the image content inside the input (padding excluded)."""
        top, left = self.offset
        height, width = self.input
        return (max(0, left), max(0, top), min(width, left + self.resized[1]),
                min(height, top + self.resized[0]))

    def to_dict(self) -> dict[str, list[int]]:
        return {"source": list(self.source), "resized": list(self.resized),
                "offset": list(self.offset), "input": list(self.input)}

    # ---------------------------------------------------------------- points and boxes
    def forward_boxes(self, boxes: np.ndarray) -> np.ndarray:
        """Boxes [K, 4] (x1, y1, x2, y2) in original pixels -> input pixels (not clipped)."""
        sx, sy = self.scale
        top, left = self.offset
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        out[:, [0, 2]] = out[:, [0, 2]] * sx + left
        out[:, [1, 3]] = out[:, [1, 3]] * sy + top
        return out

    def inverse_boxes(self, boxes: np.ndarray, clip: bool = True) -> np.ndarray:
        """Boxes [K, 4] in input pixels -> original pixels (clipped to the image by default)."""
        sx, sy = self.scale
        top, left = self.offset
        out = np.asarray(boxes, dtype=np.float64).reshape(-1, 4).copy()
        out[:, [0, 2]] = (out[:, [0, 2]] - left) / sx
        out[:, [1, 3]] = (out[:, [1, 3]] - top) / sy
        if clip:
            height, width = self.source
            out[:, [0, 2]] = out[:, [0, 2]].clip(0, width)
            out[:, [1, 3]] = out[:, [1, 3]].clip(0, height)
        return out

    # ---------------------------------------------------------------- masks
    def inverse_mask(self, mask: np.ndarray) -> np.ndarray:
        """A label map [H, W] (or [K, H, W]) over the input -> the original size, nearest.

        Each original pixel takes the input pixel its centre maps to (the padding is never
        sampled), so class indices and instance ids stay exact.
        """
        sx, sy = self.scale
        top, left = self.offset
        height, width = self.source
        rows = np.floor((np.arange(height) + 0.5) * sy + top).astype(np.int64)
        cols = np.floor((np.arange(width) + 0.5) * sx + left).astype(np.int64)
        rows = rows.clip(0, mask.shape[-2] - 1)
        cols = cols.clip(0, mask.shape[-1] - 1)
        return mask[..., rows[:, None], cols[None, :]]


def resized_size(height: int, width: int, spec: PreprocessSpec) -> tuple[int, int]:
    """(H, W) after the resize step, with the rounding torchvision and the reference share."""
    if spec.geometry == "letterbox":
        target_h, target_w = spec.input_size
        scale = min(target_h / height, target_w / width)
        return (min(target_h, max(1, int(round(height * scale)))),
                min(target_w, max(1, int(round(width * scale)))))
    if spec.resize_mode == "none":
        return height, width
    if spec.resize_mode == "exact":
        return spec.resize_size[0], spec.resize_size[1]
    requested = spec.resize_size[0]
    short, long = (width, height) if width <= height else (height, width)
    new_short, new_long = requested, int(requested * long / short)
    return (new_long, new_short) if width <= height else (new_short, new_long)


def crop_offset(height: int, width: int, crop: tuple[int, int]) -> tuple[int, int]:
    """(top, left) of a centre crop inside a (height, width) image, torchvision's rounding."""
    crop_h, crop_w = crop
    return int(round((height - crop_h) / 2.0)), int(round((width - crop_w) / 2.0))


def letterbox_offset(resized: tuple[int, int], size: tuple[int, int]) -> tuple[int, int]:
    """(top, left) padding that centres a resized image in the input (extra pixel at the end)."""
    return (size[0] - resized[0]) // 2, (size[1] - resized[1]) // 2


def geometry_for(height: int, width: int, spec: PreprocessSpec) -> Geometry:
    """The Geometry that `spec` applies to an image of (height, width) pixels."""
    resized = resized_size(height, width, spec)
    if spec.geometry == "letterbox":
        offset = letterbox_offset(resized, spec.input_size)
    elif spec.geometry == "crop" and spec.crop_size is not None:
        top, left = crop_offset(resized[0], resized[1], spec.crop_size)
        offset = (-top, -left)
    else:
        offset = (0, 0)
    return Geometry(source=(height, width), resized=resized, offset=offset,
                    input=tuple(spec.input_size))
