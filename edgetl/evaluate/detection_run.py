"""`evaluate` for detectors: a run's checkpoint in torch, or an exported artifact on its runtime.

Both produce the same report (`DetectionReport.to_dict()` plus where it came from) on the same
images: the run's own split by default. The checkpoint goes through the training evaluation
transform (torchvision, PIL resize, letterbox) and `DetectionOutputs`; the artifact through the
deployment reference and its own graph. Boxes are mapped back to each file's pixels with the
image's geometry before pycocotools scores them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.postprocess import Detections, detections_from_outputs
from edgetl.data.samples import Sample
from edgetl.geometry import Geometry
from edgetl.metrics.detection import DEFAULT_BOOTSTRAP, DetectionEvaluator
from edgetl.tasks.detection import TASK

EVAL_BATCH = 8


def torch_detections(model: Any, spec: Any, samples: list[Sample], device: str = "cpu",
                     task: str = TASK.name) -> tuple[dict[str, np.ndarray], list[Geometry]]:
    """The detector's (or instance model's) deployable outputs for files, through the
    training evaluation path."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.artifact.postprocess import concat_outputs
    from edgetl.data.transforms import geometry_transform, load_image, normalize_transform
    from edgetl.geometry import geometry_for
    from edgetl.models.deployable import deployable

    outputs = deployable(model, task)[0].to(device).eval()
    to_input, normalize = geometry_transform(spec), normalize_transform(spec)
    parts, geometries = [], []
    with torch.inference_mode():
        for start in range(0, len(samples), EVAL_BATCH):
            batch = []
            for sample in samples[start:start + EVAL_BATCH]:
                image = load_image(sample.path, spec)
                geometries.append(geometry_for(image.height, image.width, spec))
                batch.append(normalize(to_input(image)))
            found = outputs(torch.stack(batch).to(device))
            parts.append({k: v.cpu().numpy() for k, v in found.items()})
    return concat_outputs(parts), geometries


def _report(record: Any, samples: list[Sample], found: list[Detections],
            geometries: list[Geometry], meta: dict[str, Any]) -> dict[str, Any]:
    evaluator = DetectionEvaluator(record)
    evaluator.update(samples, found, [g.source for g in geometries])
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    report.update(meta)
    return report


def evaluate_detector_checkpoint(run: str | Path, split: str = "test", data: str | None = None,
                                 device: str = "cpu") -> dict[str, Any]:
    """COCO metrics of a run's best checkpoint on `split` (its own split unless `data`)."""
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.models.loading import load_model

    model, info = load_model(run, "best")
    samples, origin = evaluation_samples(Path(run), split, data, TASK.name)
    outputs, geometries = torch_detections(model, info.spec, samples, device)
    found = detections_from_outputs(outputs, geometries)
    return _report(info.task_record, samples, found, geometries, {
        "target": str(Path(run)), "kind": "checkpoint", "split": split, "data": origin,
        "spec_fingerprint": info.spec.fingerprint(), "checkpoint_epoch": info.record.get("epoch")})


def evaluate_detector_artifact(path: str | Path, split: str = "test", data: str | None = None,
                               backend: str = "ort-cpu") -> dict[str, Any]:
    """The same report through an exported artifact (deployment preprocessing, its graph)."""
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.predict import open_artifact, run_files

    runner, info = open_artifact(path, backend)
    try:
        samples, origin = evaluation_samples(info.source_run, split, data, TASK.name)
        outputs, geometries = run_files(runner, info, [s.path for s in samples])
    finally:
        runner.close()
    found = detections_from_outputs(outputs, geometries)
    return _report(info.task_record, samples, found, geometries, {
        "target": str(path), "kind": f"artifact ({info.format}, {info.precision})",
        "split": split, "data": origin, "spec_fingerprint": info.spec.fingerprint()})
