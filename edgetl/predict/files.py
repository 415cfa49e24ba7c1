"""Image files through an artifact: the one batching loop every task's prediction shares (its own
module so `edgetl.predict` and the per-task modules both use it without importing each other)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgetl.artifact.manifest import ArtifactInfo
from edgetl.artifact.postprocess import concat_outputs
from edgetl.artifact.reference import preprocess_tiles, preprocess_with_geometry
from edgetl.errors import UsageError
from edgetl.geometry import Geometry
from edgetl.runtime import Runner
from edgetl.tiling import Window

DEFAULT_BATCH = 16


@dataclass(frozen=True)
class PredictOptions:
    """What `predict` was asked for; each task's `predictor` reads the options it has."""

    batch: int = DEFAULT_BATCH
    top_k: int = 3  # classifiers: classes per image
    min_score: float = 0.3  # detectors and instance models: the lowest score kept
    tile: bool = False  # segmenters: large images tile by tile
    overlap: int = 32  # segmenters: pixels neighbouring tiles share


def run_files(runner: Runner, info: ArtifactInfo, paths: Sequence[str | Path],
              batch: int = DEFAULT_BATCH) -> tuple[dict[str, np.ndarray], list[Geometry]]:
    """The artifact's named outputs for image files (through the deployment reference
    transform), and each image's geometry (to map outputs back to the file's pixels)."""
    if batch < 1:
        raise UsageError("batch size must be at least 1")
    parts, geometries = [], []
    for start in range(0, len(paths), batch):
        inputs, geos = preprocess_with_geometry(list(paths[start:start + batch]), info.spec)
        parts.append(runner.run(inputs))
        geometries += geos
    return concat_outputs(parts), geometries


@dataclass(frozen=True)
class TiledRun:
    """The artifact's outputs for files cut by its spec's tile rule: one output row and
    geometry per window, `windows[i]` file i's windows in row order, `sizes[i]` its (H, W)."""

    outputs: dict[str, np.ndarray]
    geometries: list[Geometry]
    windows: list[list[Window]]
    sizes: list[tuple[int, int]]


def run_tiles(runner: Runner, info: ArtifactInfo, paths: Sequence[str | Path],
              batch: int = DEFAULT_BATCH) -> TiledRun:
    """`run_files` tile by tile (`artifact.reference.preprocess_tiles`): what `predict` and
    `evaluate ARTIFACT` both run for an artifact whose spec has a tile rule, so the two cut
    the same windows. Tiles of several files share a batch of up to `batch` inputs."""
    if batch < 1:
        raise UsageError("batch size must be at least 1")
    parts: list[dict[str, np.ndarray]] = []
    geometries: list[Geometry] = []
    windows: list[list[Window]] = []
    sizes: list[tuple[int, int]] = []
    pending: list[np.ndarray] = []

    def flush() -> None:
        if pending:
            parts.append(runner.run(np.concatenate(pending, axis=0)))
            pending.clear()

    for path in paths:
        size, wins, inputs, geos = preprocess_tiles(path, info.spec)
        sizes.append(size)
        windows.append(wins)
        geometries += geos
        for start in range(0, len(inputs), batch):
            if pending and sum(len(p) for p in pending) + len(inputs[start:start + batch]) > batch:
                flush()
            pending.append(inputs[start:start + batch])
    flush()
    return TiledRun(concat_outputs(parts), geometries, windows, sizes)
