"""A segmenter's predictions: a class per pixel of each file, as mask PNGs, overlays and shares.

Torch-free (numpy, PIL). The artifact's `mask` output (class per input pixel) goes back to the
file's size through the image's letterbox geometry (nearest). With `tile`, an image larger
than the input is predicted tile by tile at its own scale (input-sized windows overlapping by
`overlap` pixels, the last row and column shifted inward) and each pixel takes the class of
the tile in which it lies farthest from an edge, as aerial and inspection images need. An
artifact whose spec records a tile rule is always cut by that rule (`edgetl.tiling`, the
windows `artifact.reference.decoded_tiles` makes for every task), `overlap` then unused.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.manifest import ArtifactInfo, read_artifact
from edgetl.artifact.orientation import upright
from edgetl.artifact.postprocess import masks_from_outputs
from edgetl.artifact.reference import apply_geometry, decoded_tiles, normalize, to_hwc3
from edgetl.errors import UsageError
from edgetl.io import atomic_write_with
from edgetl.predict.detect import PALETTE
from edgetl.predict.files import PredictOptions, run_files
from edgetl.runtime import Runner
from edgetl.tiling import TileRule

DEFAULT_OVERLAP = 32


@dataclass
class ImageMask:
    """One image's class map (H x W of the file) and the share of each class."""

    image: str
    mask: np.ndarray
    names: tuple[str, ...]
    tiles: int = 1
    mask_png: str | None = None
    overlay_png: str | None = None

    def shares(self) -> dict[str, float]:
        counts = np.bincount(self.mask.ravel().astype(np.int64), minlength=len(self.names))
        total = max(1, int(counts.sum()))
        return {name: round(int(counts[i]) / total, 6) for i, name in enumerate(self.names)}

    def to_dict(self) -> dict[str, Any]:
        height, width = self.mask.shape
        return {"image": self.image, "height": int(height), "width": int(width),
                "tiles": self.tiles, "shares": self.shares(), "mask_png": self.mask_png,
                "overlay_png": self.overlay_png}


def segment_images(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path],
                   batch: int, tile: bool = False, overlap: int = DEFAULT_OVERLAP
                   ) -> list[ImageMask]:
    """Class maps of image files at their own size (tiled when `tile` and larger)."""
    if info.postprocess.get("raw"):
        raise UsageError(f"{info.path.name} holds the raw logits (exported with --raw)",
                         "predict needs an artifact with the mask output; export it without "
                         "--raw")
    names = info.task_record.names
    if not tile and info.spec.tile is None:
        outputs, geometries = run_files(runner, info, images, batch)
        return [ImageMask(str(p), m, names)
                for p, m in zip(images, masks_from_outputs(outputs, geometries), strict=True)]
    return [_tiled(runner, info, str(p), overlap) for p in images]


def predict(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path],
            options: PredictOptions) -> list[ImageMask]:
    """A segmenter's `predictor`: class maps, tiled when the options ask."""
    return segment_images(runner, info, images, options.batch, options.tile, options.overlap)


def write_outputs(artifact: Path, results: list[ImageMask], draw: Path | None,
                  masks: Path | None) -> None:
    """A segmenter's `prediction_writer`: class masks into `masks` and overlays into `draw`,
    in the artifact's palette."""
    if draw is None and masks is None:
        return
    palette = palette_of(read_artifact(artifact))
    for result in results:
        if masks is not None:
            write_mask(result, masks, palette)
        if draw is not None:
            write_overlay(result, draw, palette)


def tile_rule(info: ArtifactInfo, overlap: int) -> TileRule:
    """The artifact's recorded rule, else input-sized tiles at the file's own scale sharing
    `overlap` pixels."""
    if info.spec.tile is not None:
        return info.spec.tile
    size = max(info.spec.input_size)
    if not 0 <= overlap <= 0.9 * size:
        raise UsageError(f"--tile-overlap must be from 0 to {int(0.9 * size)} px (90% of the "
                         f"{size} px tile), got {overlap}")
    return TileRule(size, overlap / size)


def _tiled(runner: Runner, info: ArtifactInfo, path: str, overlap: int) -> ImageMask:
    spec = info.spec.with_overrides(tile=tile_rule(info, overlap))
    (height, width), windows, crops = decoded_tiles(path, spec)
    best = np.full((height, width), -1, dtype=np.int64)
    out = np.zeros((height, width), dtype=np.int64)
    for (left, top, _, _), window in zip(windows, crops, strict=True):
        pixels, geo = apply_geometry(window, spec)
        arr = to_hwc3(pixels, spec.color_mode)
        feed = arr if spec.graph_input == "uint8_raw" else normalize(arr, spec)
        mask = geo.inverse_mask(runner.run(feed[None])["mask"][0])
        h, w = mask.shape
        rows = np.minimum(np.arange(h) + 1, h - np.arange(h))
        cols = np.minimum(np.arange(w) + 1, w - np.arange(w))
        margin = np.minimum(rows[:, None], cols[None, :])
        region = best[top:top + h, left:left + w]
        take = margin > region
        region[take] = margin[take]
        out[top:top + h, left:left + w][take] = mask[take]
    return ImageMask(path, out, info.task_record.names, tiles=len(windows))


def palette_of(info: ArtifactInfo) -> list[tuple[int, int, int]]:
    """The artifact's class colours (see `class_palette`)."""
    return class_palette(info.task_record)


def class_palette(record: Any) -> list[tuple[int, int, int]]:
    """The classes' colours: the data set's palette when it had one, else a fixed set."""
    if record.palette:
        return [tuple(c) for c in record.palette]
    return [PALETTE[i % len(PALETTE)] for i in range(record.num_classes)]


def write_mask(result: ImageMask, folder: Path, palette: list[tuple[int, int, int]]) -> Path:
    """FOLDER/<stem>.png: class indices as a palette PNG (values are the class indices)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{Path(result.image).stem}.png"
    img = Image.fromarray(result.mask.astype(np.uint8), mode="P")
    flat = [v for colour in palette for v in colour]
    img.putpalette(flat + [0] * (768 - len(flat)))
    atomic_write_with(target, lambda tmp: img.save(tmp, format="PNG"))
    result.mask_png = str(target)
    return target


def write_overlay(result: ImageMask, folder: Path, palette: list[tuple[int, int, int]],
                  alpha: float = 0.5) -> Path:
    """FOLDER/<stem>.png: the image with its class colours blended in."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    with Image.open(result.image) as img:
        base = np.asarray(upright(img).convert("RGB"), dtype=np.float32)
    colours = np.asarray(palette, dtype=np.float32)[result.mask.astype(np.int64)]
    blended = (base * (1 - alpha) + colours * alpha).round().astype(np.uint8)
    target = folder / f"{Path(result.image).stem}.png"
    atomic_write_with(target, lambda tmp: Image.fromarray(blended).save(tmp, format="PNG"))
    result.overlay_png = str(target)
    return target
