"""An instance model's predictions: boxes, scores, labels and masks in each file's own pixels.

Torch-free (numpy, PIL, pycocotools for RLE). The artifact's fixed-K outputs go through
`edgetl.artifact.postprocess.instances_from_outputs` (the reading evaluate uses): boxes come
back through each image's letterbox geometry and each [M, M] mask is pasted into its box at the
file's size (bilinear, threshold 0.5). Per image: the detections above `min_score` with their
mask as COCO RLE, and one id map (0 background, k + 1 on detection k; the higher score wins an
overlap), written as a PNG by `--masks` and drawn by `--draw`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.manifest import ArtifactInfo
from edgetl.artifact.orientation import upright
from edgetl.artifact.postprocess import instances_from_outputs, merged_instances
from edgetl.errors import UsageError
from edgetl.io import atomic_write_with
from edgetl.predict.detect import PALETTE
from edgetl.predict.files import PredictOptions, run_files, run_tiles
from edgetl.runtime import Runner


@dataclass(frozen=True)
class ImageInstances:
    """One image's instances: rows (label, score, box, `instance_id`, `rle`) and the id map."""

    image: str
    size: tuple[int, int]  # (H, W) of the file
    detections: list[dict[str, Any]]
    ids: np.ndarray  # [H, W] int32, 0 background, row k is instance_id k + 1
    tiles: list[tuple[int, int, int, int]] | None = None  # x0, y0, x1, y1 of each window

    def to_dict(self) -> dict[str, Any]:
        out = {"image": self.image, "height": self.size[0], "width": self.size[1],
               "instances": self.detections}
        if self.tiles is not None:
            out["tiles"] = [list(w) for w in self.tiles]
        return out


def segment_instances(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path],
                      batch: int, min_score: float) -> list[ImageInstances]:
    """Run the artifact on image files and read its instances."""
    if not 0.0 <= min_score <= 1.0:
        raise UsageError(f"--min-score must be in [0, 1], got {min_score}")
    if info.spec.tile is not None:  # the windows evaluate cuts, merged as it merges them
        tiled = run_tiles(runner, info, images, batch)
        merged = merged_instances(tiled.outputs, tiled.geometries, tiled.windows, min_score)
        windows: list[Any] = tiled.windows
    else:
        outputs, geometries = run_files(runner, info, images, batch)
        merged = instances_from_outputs(outputs, geometries, min_score)
        windows = [None] * len(merged)
    names = info.task_record.names
    out = []
    for image, found, tiles in zip(images, merged, windows, strict=True):
        rows = [{"label": names[int(label)], "index": int(label), "instance_id": k + 1,
                 "score": round(float(score), 6), "box": [round(float(v), 2) for v in box],
                 "rle": rle}
                for k, (box, score, label, rle) in enumerate(zip(
                    found.boxes, found.scores, found.labels, found.rles(), strict=True))]
        out.append(ImageInstances(str(image), found.size, rows, found.id_map(),
                                  None if tiles is None else list(tiles)))
    return out


def predict(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path],
            options: PredictOptions) -> list[ImageInstances]:
    """An instance model's `predictor`: instances above the options' min_score."""
    return segment_instances(runner, info, images, options.batch, options.min_score)


def write_outputs(artifact: Path, results: list[ImageInstances], draw: Path | None,
                  masks: Path | None) -> None:
    """An instance model's `prediction_writer`: per image its id mask into `masks`, then its
    instances drawn into `draw`."""
    if draw is None and masks is None:
        return
    for result in results:
        if masks is not None:
            write_id_mask(result, masks)
        if draw is not None:
            draw_instances(result, draw)


def write_id_mask(result: ImageInstances, out_dir: Path) -> Path:
    """OUT_DIR/<stem>.png: the id map (8-bit while ids fit, else 16-bit), atomic."""
    from PIL import Image

    ids = result.ids
    picture = Image.fromarray(ids.astype(np.uint8), mode="L") if ids.max() < 256 else \
        Image.fromarray(ids.astype(np.uint16))
    target = out_dir / f"{Path(result.image).stem}.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_with(target, lambda tmp: picture.save(tmp, format="PNG"))
    return target


def draw_instances(result: ImageInstances, out_dir: Path, alpha: float = 0.5) -> Path:
    """The image with each instance tinted in its own colour and its box and label drawn,
    written to OUT_DIR/<stem>.png (atomic)."""
    from PIL import Image, ImageDraw

    with Image.open(result.image) as img:
        photo = np.asarray(upright(img).convert("RGB")).astype(np.float64)
    colours = np.array([PALETTE[k % len(PALETTE)] for k in range(len(result.detections) + 1)],
                       dtype=np.float64)
    inside = result.ids > 0
    photo[inside] = (1 - alpha) * photo[inside] + alpha * colours[result.ids[inside] - 1]
    canvas = Image.fromarray(photo.clip(0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(canvas)
    for k, row in enumerate(result.detections):
        colour = tuple(int(v) for v in colours[k])
        draw.rectangle(tuple(row["box"]), outline=colour, width=1)
        draw.text((row["box"][0] + 1, row["box"][1]), f"{row['score']:.2f}", fill=colour)
    target = out_dir / f"{Path(result.image).stem}.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_with(target, lambda tmp: canvas.save(tmp, format="PNG"))
    return target
