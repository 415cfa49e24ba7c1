"""`evaluate` for models scored on their deployable outputs (boxes, class maps, instances): one
checkpoint evaluator and one artifact evaluator, each bound to a task's scorer.

Both produce the same report on the same images, the run's own split by default. The checkpoint
runs in torch through the training evaluation transform (`models.inference.torch_outputs`); the
artifact on its runtime through the deployment reference and its own graph
(`predict.run_files`). Either way the scorer gets the named outputs and each image's geometry,
reads them back to the file's pixels the task's way and scores them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.checkpoint import BEST
from edgetl.data.samples import Sample
from edgetl.geometry import Geometry


@dataclass(frozen=True)
class Evaluation:
    """What a scorer reads: the model's record (a checkpoint's or an artifact's info), the
    images, their outputs and geometries, where the split came from and the report's origin
    fields (`meta`: target, kind, split, data, ...)."""

    info: Any
    samples: list[Sample]
    outputs: dict[str, np.ndarray]
    geometries: list[Geometry]
    run: Path | None  # the run whose split (or mask record) the images come from
    data: str | None  # the data set given instead of the run's split
    meta: dict[str, Any]
    # A spec with a tile rule: `outputs` and `geometries` hold one row per window and
    # windows[i] are sample i's windows in row order (None: one row per image).
    windows: list[list[tuple[int, int, int, int]]] | None = None


Scorer = Callable[[Evaluation], dict[str, Any]]


@dataclass(frozen=True)
class CheckpointEvaluator:
    """fn(run, split, data, device) -> report: a run's best checkpoint on `split` (its own split
    unless `data`), scored by `score`."""

    score: Scorer

    def __call__(self, run: str | Path, split: str = "test", data: str | None = None,
                 device: str = "cpu") -> dict[str, Any]:
        from edgetl.evaluate.samples import evaluation_samples
        from edgetl.models.inference import torch_outputs
        from edgetl.models.loading import load_model

        model, info = load_model(run, BEST)
        task = info.task_record.task
        samples, origin = evaluation_samples(Path(run), split, data, task)
        outputs, geometries, windows = torch_outputs(model, info.spec, samples, task, device,
                                                     tiles=True)
        return self.score(Evaluation(info, samples, outputs, geometries, Path(run), data, {
            "target": str(Path(run)), "kind": "checkpoint", "split": split, "data": origin,
            "spec_fingerprint": info.spec.fingerprint(),
            "checkpoint_epoch": info.record.get("epoch")}, windows))


@dataclass(frozen=True)
class ArtifactEvaluator:
    """fn(artifact, split, data, backend) -> report: the same report through an exported
    artifact (deployment preprocessing, its graph), scored by `score`."""

    score: Scorer

    def __call__(self, path: str | Path, split: str = "test", data: str | None = None,
                 backend: str = "ort-cpu") -> dict[str, Any]:
        from edgetl.evaluate.samples import evaluation_samples
        from edgetl.predict import open_artifact, run_files
        from edgetl.predict.files import run_tiles

        runner, info = open_artifact(path, backend)
        windows = None
        try:
            samples, origin = evaluation_samples(info.source_run, split, data,
                                                 info.task_record.task)
            paths = [s.path for s in samples]
            if info.spec.tile is not None:  # the windows `predict` cuts (run_tiles)
                tiled = run_tiles(runner, info, paths)
                outputs, geometries, windows = tiled.outputs, tiled.geometries, tiled.windows
            else:
                outputs, geometries = run_files(runner, info, paths)
        finally:
            runner.close()
        return self.score(Evaluation(info, samples, outputs, geometries, info.source_run, data, {
            "target": str(path), "kind": f"artifact ({info.format}, {info.precision})",
            "split": split, "data": origin, "spec_fingerprint": info.spec.fingerprint()},
            windows))


def tiles_record(run: Evaluation) -> dict[str, Any]:
    """A tiled evaluation's record in its report: the rule and each image's windows (what
    `predict --json` lists under `tiles`)."""
    return {"rule": run.info.spec.tile.to_dict(),
            "windows": {s.path: [list(w) for w in ws]
                        for s, ws in zip(run.samples, run.windows or [], strict=True)}}


def outputs_of(target: Path, samples: list[Sample], device: str = "cpu"
               ) -> tuple[dict[str, np.ndarray], list[Geometry], Any]:
    """(outputs, geometries, info) of `samples` from a run's checkpoint (a folder) or an
    artifact (a file, on its family's default backend): what a report's figures predict again."""
    if target.is_dir():
        from edgetl.models.inference import torch_outputs
        from edgetl.models.loading import load_model

        model, info = load_model(target, BEST)
        outputs, geometries = torch_outputs(model, info.spec, samples, info.task_record.task,
                                            device)
        return outputs, geometries, info
    from edgetl.predict import open_artifact, run_files
    from edgetl.runtime.backends import default_backend

    runner, info = open_artifact(target, default_backend(target))
    try:
        outputs, geometries = run_files(runner, info, [s.path for s in samples])
    finally:
        runner.close()
    return outputs, geometries, info


def report_samples(report: dict[str, Any], task: str
                   ) -> tuple[Path | None, str | None, list[Sample]]:
    """(run, data, samples) a `task` report was computed on: its run's own split, or the data
    it names; what its worst-images figure draws from."""
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.runfolder import RunFolder

    target = Path(report["target"])
    run = target if target.is_dir() else None
    if run is None:
        from edgetl.artifact.manifest import read_artifact

        run = read_artifact(target).source_run
    own_split = run is not None and report["data"] == str(RunFolder(run).split_path())
    data = None if own_split else report["data"]
    return run, data, evaluation_samples(run, report["split"], data, task)[0]


def with_worst(report: dict[str, Any], meta: dict[str, Any], samples: list[Sample],
               per_image: str, figure: str, count: int) -> dict[str, Any]:
    """The report with its origin (`meta`) and the `count` images lowest on its `per_image`
    figure, named under `worst_images` with that figure as `figure`."""
    report.update(meta)
    order = np.argsort(report[per_image], kind="stable")[:count]
    report["worst_images"] = [{"path": samples[i].path, figure: report[per_image][i]}
                              for i in order]
    return report
