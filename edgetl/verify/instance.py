"""verify's instance checks: detection's, then the masks of matched detections and mask mAP.

- coordinates and box parity: detection's (`edgetl.verify.detection`) on the same rows;
- mask parity: the torch model's confident detections matched to the artifact's (same label,
  box IoU >= 0.5, greedily by score); each matched pair's masks are pasted at the file's size
  (`postprocess.paste_mask`, as predict does) and the median mask IoU is gated;
- mask map: the artifact's test mask mAP and AP50 against the torch model's on the same images
  (pycocotools `segm`), with a paired bootstrap interval of the difference.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.formats import INSTANCE_BUDGETS, InstanceBudgets
from edgetl.artifact.postprocess import Instances
from edgetl.data.samples import Sample
from edgetl.metrics.matching import matched_mask_ious
from edgetl.spec import TaskRecord
from edgetl.tasks.instance import TASK
from edgetl.verify.budgets import BudgetTable
from edgetl.verify.checks import CheckResult
from edgetl.verify.detection import PAIRED_BOOTSTRAP, map_gate

# An instance model's `verify_budgets`: its precision's gates (the flags override the match
# rate and the mask mAP points).
BUDGETS = BudgetTable(rows=INSTANCE_BUDGETS, fallback="int8", agreement="match_rate",
                      drop="mask_map_points", agreement_words="matched-detection share",
                      drop_words="mask mAP", task_words=f"{TASK.name} segmentation")


def check_mask_parity(reference: list[Instances], candidate: list[Instances],
                      budgets: InstanceBudgets) -> CheckResult:
    """Median mask IoU of the torch model's confident detections matched in the artifact."""
    considered, ious = matched_mask_ious(reference, candidate, budgets.min_score)
    median = float(np.median(ious)) if ious else (1.0 if not considered else 0.0)
    passed = median >= budgets.mask_iou
    summary = (f"median mask IoU {median:.4f} over {len(ious)} matched detections of "
               f"{considered} (score >= {budgets.min_score}), budget >= {budgets.mask_iou}")
    return CheckResult("mask_parity", passed, summary, {
        "matched": len(ious), "reference_detections": considered, "median_mask_iou": median,
        "budget": budgets.mask_iou, "min_mask_iou": float(min(ious)) if ious else None,
        "share_below_budget": float(np.mean(np.asarray(ious) < budgets.mask_iou))
        if ious else 0.0})


def check_mask_map(samples: list[Sample], record: TaskRecord, reference: list[Instances],
                   candidate: list[Instances], budgets: InstanceBudgets,
                   max_dets: int) -> CheckResult:
    """Test mask mAP/AP50 of the artifact against the torch model's, paired bootstrap."""
    from edgetl.metrics.detection import paired_map_delta
    from edgetl.metrics.instance import InstanceEvaluator, truth_masks

    truth = truth_masks(samples, [f.size for f in reference])
    evaluations = []
    for found in (reference, candidate):
        evaluator = InstanceEvaluator(record, max_dets)
        evaluator.update(samples, found, truth)
        evaluations.append(evaluator._coco_eval(evaluator.gt_segm, evaluator.dt_segm, "segm",
                                                max_dets))
    delta = paired_map_delta(*evaluations, rounds=PAIRED_BOOTSTRAP)
    return map_gate("mask_map", "mask ", len(samples), delta, budgets.mask_map_points)


def verify_checks(side: Any, info: Any, samples: list[Sample], budgets: InstanceBudgets,
                  run: Any, point: Any, reference: dict[str, Any], artifact: dict[str, Any],
                  outputs: CheckResult) -> list[CheckResult]:
    """An instance model's `verify_checks`: coordinates, outputs, box parity, mask parity,
    mask mAP."""
    from edgetl.artifact.postprocess import instances_from_outputs
    from edgetl.verify.detection import check_coordinates, check_detection_parity

    ref = instances_from_outputs(reference, side.geometries)
    art = instances_from_outputs(artifact, side.geometries)
    max_dets = int(info.head.get("max_detections", 100))
    return [check_coordinates(samples, info.spec, side.geometries), outputs,
            check_detection_parity(ref, art, budgets),
            check_mask_parity(ref, art, budgets),
            check_mask_map(samples, info.task_record, ref, art, budgets, max_dets)]
