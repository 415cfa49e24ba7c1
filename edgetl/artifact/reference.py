"""The deployment reference of the evaluation transform: numpy and PIL only, no torch.

This is what `predict` and any user's deployment code run. `verify` proves it matches the
torchvision evaluation transform used in training, on real images. Sizes and crop offsets follow
torchvision's rules exactly (shorter-side rounding, centre-crop rounding) so the two agree.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from edgetl import geometry
from edgetl.artifact.orientation import upright
from edgetl.errors import DataError, SpecError
from edgetl.geometry import Geometry
from edgetl.spec import PreprocessSpec
from edgetl.tiling import Window, image_windows

_PIL_RESAMPLE = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


HIGH_BIT_DEPTH_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I", "F")


def decode_image(path: str | Path, color_mode: str,
                 high_bit_depth: str = "refuse") -> Image.Image:
    """Open and fully decode an image in the spec's colour mode ('RGB' or 'L' PIL image).

    `grayscale3` returns an 'L' image; channel expansion happens when converting to arrays so both
    pipelines repeat the same single channel. Truncated or non-image files raise `DataError`.
    16-bit images follow the spec's `high_bit_depth` (see `to_8bit`); PIL's own conversion
    clips them at 255. Images past PIL's decompression-bomb limit are a `DataError`, those
    past its warning limit a warning naming the file.
    """
    try:
        with Image.open(path) as img:
            _warn_if_huge(img, path)
            img.load()
            img = upright(img)  # as viewers and labelling tools show it (data/orientation.py)
            if img.mode in HIGH_BIT_DEPTH_MODES:
                img = to_8bit(img, path, high_bit_depth)
            if color_mode == "grayscale3":
                return img.convert("L")
            return img.convert("RGB")
    except FileNotFoundError as exc:
        raise DataError(f"image not found: {path}") from exc
    except Image.DecompressionBombError as exc:
        raise DataError(f"image {path} is too large to decode safely: {_bomb_words(exc)}",
                        "downscale it") from exc
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise DataError(f"cannot decode image {path}: {exc}") from exc


def to_8bit(img: Image.Image, path: str | Path, rule: str) -> Image.Image:
    """A 16-bit grey image ('I;16*', or 'I' within 0..65535) as 8-bit 'L' by its real range:
    round(v * 255 / 65535), in integers so every platform agrees. `rule` "refuse" (the spec's
    default) and float or wider-than-16-bit images raise `DataError` instead."""
    if rule != "scale":
        raise DataError(
            f"{path} is a 16-bit image (PIL mode {img.mode}) and this preprocessing spec reads "
            "8-bit images only (PIL would clip it at 255: almost white)",
            "set preprocess.high_bit_depth: scale in the recipe to read 16-bit images by their "
            "full range, or convert them to 8-bit")
    arr = np.asarray(img)
    if img.mode == "F" or arr.min(initial=0) < 0 or arr.max(initial=0) > 65535:
        raise DataError(f"{path} is a {img.mode} image outside 0..65535 (float or wider than "
                        "16 bits): no range to scale it by", "convert it to 8 or 16 bits")
    scaled = (arr.astype(np.uint32) * 255 + 32767) // 65535
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def _warn_if_huge(img: Image.Image, path: str | Path) -> None:
    limit = Image.MAX_IMAGE_PIXELS
    if limit and img.width * img.height > limit:
        import warnings

        from edgetl.errors import DataWarning

        warnings.warn(f"{path} is very large ({img.width}x{img.height} = "
                      f"{img.width * img.height:,} pixels, over PIL's decompression-bomb "
                      f"warning limit of {limit:,}): decoding it anyway", DataWarning,
                      stacklevel=3)


def _bomb_words(exc: Exception) -> str:
    import re

    found = re.findall(r"\d+", str(exc))
    if len(found) >= 2:
        return f"{int(found[0]):,} pixels, over PIL's limit of {int(found[1]):,}"
    return str(exc)


def to_hwc3(img: Image.Image, color_mode: str) -> np.ndarray:
    """uint8 HxWx3 array in the spec's channel order."""
    arr = np.asarray(img, dtype=np.uint8)
    if arr.ndim == 2:
        arr = np.repeat(arr[:, :, None], 3, axis=2)
    if color_mode == "bgr":
        arr = arr[:, :, ::-1]
    return np.ascontiguousarray(arr)


def resized_size(height: int, width: int, spec: PreprocessSpec) -> tuple[int, int]:
    """(H, W) after the resize step, with torchvision's rounding (see `edgetl.geometry`)."""
    return geometry.resized_size(height, width, spec)


def crop_box(height: int, width: int, crop: tuple[int, int]) -> tuple[int, int, int, int]:
    """(top, left, bottom, right) of a centre crop, with torchvision's rounding."""
    crop_h, crop_w = crop
    if crop_h > height or crop_w > width:
        raise SpecError(f"centre crop {crop} is larger than the resized image {(height, width)}")
    top, left = geometry.crop_offset(height, width, crop)
    return top, left, top + crop_h, left + crop_w


def apply_geometry(img: Image.Image, spec: PreprocessSpec) -> tuple[Image.Image, Geometry]:
    """Resize and centre-crop, letterbox or stretch a decoded PIL image as the spec says; also
    return the image's `Geometry` (how its coordinates map into the input)."""
    if not spec.antialias and spec.interpolation != "nearest":
        raise SpecError("the PIL reference always antialiases; set antialias: true in the spec")
    geo = geometry.geometry_for(img.height, img.width, spec)
    new_h, new_w = geo.resized
    if (new_h, new_w) != (img.height, img.width):
        img = img.resize((new_w, new_h), resample=_PIL_RESAMPLE[spec.interpolation])
    if spec.geometry == "letterbox":
        fill = spec.fill[0] if img.mode == "L" else tuple(spec.fill)
        canvas = Image.new(img.mode, (spec.input_size[1], spec.input_size[0]), fill)
        canvas.paste(img, (geo.offset[1], geo.offset[0]))
        img = canvas
    elif spec.geometry == "crop" and spec.crop_size is not None:
        top, left, bottom, right = crop_box(new_h, new_w, spec.crop_size)
        img = img.crop((left, top, right, bottom))
    return img, geo


def resize_and_crop(img: Image.Image, spec: PreprocessSpec) -> Image.Image:
    """The spec's geometry applied to a decoded PIL image (see `apply_geometry`)."""
    return apply_geometry(img, spec)[0]


def pixels_uint8(path: str | Path, spec: PreprocessSpec) -> np.ndarray:
    """uint8 HxWx3 image after decode and geometry: the input of `uint8_raw` artifacts."""
    return pixels_and_geometry(path, spec)[0]


def pixels_and_geometry(path: str | Path, spec: PreprocessSpec) -> tuple[np.ndarray, Geometry]:
    """`pixels_uint8` and the image's `Geometry` (to map outputs back to the file's pixels)."""
    img, geo = apply_geometry(decode_image(path, spec.color_mode, spec.high_bit_depth),
                              spec)
    return to_hwc3(img, spec.color_mode), geo


def normalize(pixels: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """uint8 HxWx3 -> float32 in the spec's layout (CHW or HWC), scaled and normalised."""
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    out = (pixels.astype(np.float32) * np.float32(spec.scale) - mean) / std
    if spec.layout == "NCHW":
        out = out.transpose(2, 0, 1)
    return np.ascontiguousarray(out, dtype=np.float32)


def preprocess_file(path: str | Path, spec: PreprocessSpec) -> np.ndarray:
    """One image file -> the model input for one sample, exactly as the artifact expects it."""
    pixels = pixels_uint8(path, spec)
    if spec.graph_input == "uint8_raw":
        return pixels
    return normalize(pixels, spec)


def preprocess_batch(paths: list[str | Path], spec: PreprocessSpec) -> np.ndarray:
    """Several files stacked into one batch (N first)."""
    return preprocess_with_geometry(paths, spec)[0]


def preprocess_with_geometry(paths: list[str | Path], spec: PreprocessSpec
                             ) -> tuple[np.ndarray, list[Geometry]]:
    """A batch of model inputs and each image's geometry."""
    inputs, geometries = [], []
    for path in paths:
        pixels, geo = pixels_and_geometry(path, spec)
        inputs.append(pixels if spec.graph_input == "uint8_raw" else normalize(pixels, spec))
        geometries.append(geo)
    return np.stack(inputs, axis=0), geometries


def decoded_tiles(path: str | Path, spec: PreprocessSpec
                  ) -> tuple[tuple[int, int], list[Window], list[Image.Image]]:
    """The file decoded once and cut by the spec's tile rule: ((H, W) of the file, its windows,
    the decoded crop of each). The one place the windows of a file are made: the torch side
    (training's evaluation, `evaluate RUN`, verify) and the deployment side (`predict`,
    `evaluate ARTIFACT`, bench) both cut their tiles here."""
    img = decode_image(path, spec.color_mode, spec.high_bit_depth)
    windows = image_windows(img.width, img.height, spec.tile)
    crops = [img if w == (0, 0, img.width, img.height) else img.crop(w) for w in windows]
    return (img.height, img.width), windows, crops


def preprocess_tiles(path: str | Path, spec: PreprocessSpec
                     ) -> tuple[tuple[int, int], list[Window], np.ndarray, list[Geometry]]:
    """`decoded_tiles` through the deployment transform: (file size, windows, one model input
    per window, each tile's geometry)."""
    size, windows, crops = decoded_tiles(path, spec)
    inputs, geometries = [], []
    for crop in crops:
        img, geo = apply_geometry(crop, spec)
        pixels = to_hwc3(img, spec.color_mode)
        inputs.append(pixels if spec.graph_input == "uint8_raw" else normalize(pixels, spec))
        geometries.append(geo)
    return size, windows, np.stack(inputs, axis=0), geometries
