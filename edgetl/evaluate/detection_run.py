"""`evaluate` for detectors: the scorer the generic evaluators (`outputs_eval`) are bound to.

A checkpoint's outputs (torch, the training evaluation transform, `DetectionOutputs`) and an
artifact's (the deployment reference, its own graph) are read the same way: boxes are mapped
back to each file's pixels with the image's geometry before pycocotools scores them. A spec
with a tile rule gives one output row per window: the tiles' detections are merged per image
(`postprocess.merged_detections`, as `predict` does) and the report names each image's windows.
"""

from __future__ import annotations

from typing import Any

from edgetl.artifact.postprocess import detections_from_outputs, merged_detections
from edgetl.evaluate.outputs_eval import (
    ArtifactEvaluator,
    CheckpointEvaluator,
    Evaluation,
    tiles_record,
)
from edgetl.metrics.detection import DEFAULT_BOOTSTRAP, DetectionEvaluator


def score(run: Evaluation) -> dict[str, Any]:
    """COCO metrics of the detections in the outputs against the samples' boxes."""
    evaluator = DetectionEvaluator(run.info.task_record)
    if run.windows is None:
        evaluator.update(run.samples, detections_from_outputs(run.outputs, run.geometries),
                         [g.source for g in run.geometries])
    else:
        sizes = [(max(w[3] for w in ws), max(w[2] for w in ws)) for ws in run.windows]
        evaluator.update(run.samples, merged_detections(run.outputs, run.geometries,
                                                        run.windows), sizes)
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    report.update(run.meta)
    if run.windows is not None:
        report["tiles"] = tiles_record(run)
    return report


evaluate_detector_checkpoint = CheckpointEvaluator(score)
evaluate_detector_artifact = ArtifactEvaluator(score)
