"""`evaluate` for detectors: the scorer the generic evaluators (`outputs_eval`) are bound to.

A checkpoint's outputs (torch, the training evaluation transform, `DetectionOutputs`) and an
artifact's (the deployment reference, its own graph) are read the same way: boxes are mapped
back to each file's pixels with the image's geometry before pycocotools scores them.
"""

from __future__ import annotations

from typing import Any

from edgetl.artifact.postprocess import detections_from_outputs
from edgetl.evaluate.outputs_eval import ArtifactEvaluator, CheckpointEvaluator, Evaluation
from edgetl.metrics.detection import DEFAULT_BOOTSTRAP, DetectionEvaluator


def score(run: Evaluation) -> dict[str, Any]:
    """COCO metrics of the detections in the outputs against the samples' boxes."""
    evaluator = DetectionEvaluator(run.info.task_record)
    evaluator.update(run.samples, detections_from_outputs(run.outputs, run.geometries),
                     [g.source for g in run.geometries])
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    report.update(run.meta)
    return report


evaluate_detector_checkpoint = CheckpointEvaluator(score)
evaluate_detector_artifact = ArtifactEvaluator(score)
