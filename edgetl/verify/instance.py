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

from edgetl.artifact.formats import InstanceBudgets
from edgetl.artifact.postprocess import Instances
from edgetl.data.samples import Sample
from edgetl.metrics.matching import matched_mask_ious
from edgetl.spec import TaskRecord
from edgetl.verify.checks import CheckResult
from edgetl.verify.detection import PAIRED_BOOTSTRAP


def instance_budgets(precision: str, match_rate: float | None,
                     map_points: float | None) -> InstanceBudgets:
    """The precision's budgets; the flags override the match rate and the mask mAP points."""
    from dataclasses import replace

    from edgetl.artifact.formats import INSTANCE_BUDGETS

    base = INSTANCE_BUDGETS.get(precision, INSTANCE_BUDGETS["int8"])
    changes: dict[str, Any] = {}
    if match_rate is not None:
        changes["match_rate"] = match_rate
    if map_points is not None:
        changes["mask_map_points"] = map_points
    return replace(base, **changes)


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
    drops = {name: -row["delta"] * 100.0 for name, row in delta.items()}
    passed = all(drop <= budgets.mask_map_points + 1e-9 for drop in drops.values())
    m, m50 = delta["map"], delta["map50"]
    summary = (f"mask mAP torch {m['first']:.4f}, artifact {m['second']:.4f} "
               f"({-drops['map']:+.2f} points, 95% CI {m['delta_ci95'][0] * 100:+.2f} to "
               f"{m['delta_ci95'][1] * 100:+.2f}); mask AP50 {m50['first']:.4f} -> "
               f"{m50['second']:.4f} ({-drops['map50']:+.2f}); budget "
               f"-{budgets.mask_map_points} points")
    return CheckResult("mask_map", passed, summary, {
        "images": len(samples), "budget_points": budgets.mask_map_points, **delta,
        "drop_points": drops, "paired_bootstrap_rounds": PAIRED_BOOTSTRAP})


def verify_budgets(art: Any, match_rate: float | None, map_points: float | None
                   ) -> tuple[InstanceBudgets, dict[str, Any]]:
    """An instance model's `verify_budgets`: its precision's gates (the flags override the
    match rate and the mask mAP points)."""
    budgets = instance_budgets(art.precision, match_rate, map_points)
    return budgets, {**budgets.__dict__}


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
