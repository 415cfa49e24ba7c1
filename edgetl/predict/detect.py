"""A detector's predictions: boxes in each file's own pixels, as JSON and drawn on the images.

Torch-free (numpy, PIL). The artifact's fixed-K outputs go through
`edgetl.artifact.postprocess`, the same reading evaluate and verify use; boxes come back through
each image's letterbox geometry. An artifact whose spec has a tile rule runs tile by tile
(`files.run_tiles`, the windows `evaluate` cuts too) and its tiles' detections are merged
(`postprocess.merged_detections`); each image's result names its windows.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.artifact.manifest import ArtifactInfo
from edgetl.artifact.orientation import upright
from edgetl.artifact.postprocess import Detections, detections_from_outputs, merged_detections
from edgetl.errors import UsageError
from edgetl.io import atomic_write_with
from edgetl.predict.files import PredictOptions, run_files, run_tiles
from edgetl.runtime import Runner

PALETTE = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
           (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


@dataclass(frozen=True)
class ImageDetections:
    """One image's detections, boxes as [x1, y1, x2, y2] in the file's pixels."""

    image: str
    size: tuple[int, int]  # (H, W) of the file
    detections: list[dict[str, Any]]
    tiles: list[tuple[int, int, int, int]] | None = None  # x0, y0, x1, y1 of each window

    def to_dict(self) -> dict[str, Any]:
        out = {"image": self.image, "height": self.size[0], "width": self.size[1],
               "detections": self.detections}
        if self.tiles is not None:
            out["tiles"] = [list(w) for w in self.tiles]
        return out


def detect_images(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path], batch: int,
                  min_score: float) -> list[ImageDetections]:
    """Run the artifact on image files and read its detections."""
    if not 0.0 <= min_score <= 1.0:
        raise UsageError(f"--min-score must be in [0, 1], got {min_score}")
    if info.postprocess.get("raw"):
        raise UsageError(f"{info.path.name} holds the raw head outputs (exported with --raw)",
                         "predict needs an artifact with boxes; export it without --raw")
    names = info.task_record.names
    if info.spec.tile is not None:
        tiled = run_tiles(runner, info, images, batch)
        merged = merged_detections(tiled.outputs, tiled.geometries, tiled.windows, min_score)
        return [ImageDetections(str(image), size, _rows(dets, names), list(windows))
                for image, size, windows, dets in zip(images, tiled.sizes, tiled.windows,
                                                       merged, strict=True)]
    outputs, geometries = run_files(runner, info, images, batch)
    found = detections_from_outputs(outputs, geometries, min_score)
    return [ImageDetections(str(image), geo.source, _rows(dets, names))
            for image, geo, dets in zip(images, geometries, found, strict=True)]


def predict(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path],
            options: PredictOptions) -> list[ImageDetections]:
    """A detector's `predictor`: boxes above the options' min_score."""
    return detect_images(runner, info, images, options.batch, options.min_score)


def write_outputs(artifact: Path, results: list[ImageDetections], draw: Path | None,
                  masks: Path | None) -> None:
    """A detector's `prediction_writer`: each image with its boxes into `draw` (it has no
    masks)."""
    if draw is not None:
        for result in results:
            draw_detections(result, draw)


def _rows(found: Detections, names: tuple[str, ...]) -> list[dict[str, Any]]:
    return [{"label": names[int(label)], "index": int(label), "score": round(float(score), 6),
             "box": [round(float(v), 2) for v in box]}
            for box, score, label in zip(found.boxes, found.scores, found.labels, strict=True)]


def draw_detections(result: ImageDetections, out_dir: Path) -> Path:
    """The image with its boxes and labels drawn, written to OUT_DIR/<stem>.png (atomic)."""
    from PIL import Image, ImageDraw

    with Image.open(result.image) as img:
        canvas = upright(img).convert("RGB")
    draw = ImageDraw.Draw(canvas)
    width = max(2, round(max(canvas.size) / 300))
    for row in result.detections:
        colour = PALETTE[row["index"] % len(PALETTE)]
        x1, y1, x2, y2 = row["box"]
        draw.rectangle((x1, y1, x2, y2), outline=colour, width=width)
        text = f"{row['label']} {row['score']:.2f}"
        left, top, right, bottom = draw.textbbox((x1, y1), text)
        top_y = max(0, y1 - (bottom - top) - 2)
        draw.rectangle((x1, top_y, x1 + right - left + 4, top_y + bottom - top + 2), fill=colour)
        draw.text((x1 + 2, top_y), text, fill=(255, 255, 255))
    target = out_dir / f"{Path(result.image).stem}.png"
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_with(target, lambda tmp: canvas.save(tmp, format="PNG"))
    return target
