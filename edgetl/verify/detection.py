"""verify's detection checks: coordinates, matched detections, and the test-mAP gate.

- coordinates: every ground-truth box mapped into the input and back by the torch training
  path (tv_tensors through `Letterbox`) and by the numpy reference (`Geometry`): both must
  agree within 0.5 px, in the input and back in the file's pixels;
- parity: per image, the torch model's detections with score >= `min_score` are matched to the
  artifact's (same label, IoU >= 0.5, greedily by score); the share matched and the median IoU
  of matched pairs are gated;
- map: the artifact's test mAP and AP50 against the torch model's on the same images, with a
  paired bootstrap interval of the difference; the point difference is gated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.formats import DETECTION_BUDGETS, DetectionBudgets
from edgetl.artifact.postprocess import Detections
from edgetl.data.samples import Sample
from edgetl.geometry import Geometry
from edgetl.metrics.matching import MATCH_IOU, match_pairs
from edgetl.spec import PreprocessSpec, TaskRecord
from edgetl.tasks.detection import TASK
from edgetl.verify.budgets import BudgetTable
from edgetl.verify.checks import CheckResult

COORDINATE_BUDGET_PX = 0.5
PAIRED_BOOTSTRAP = 500

# A detector's `verify_budgets`: its precision's gates (the flags override the match rate and
# the mAP points).
BUDGETS = BudgetTable(rows=DETECTION_BUDGETS, fallback="int8", agreement="match_rate",
                      drop="map_points", agreement_words="matched-detection share",
                      drop_words="mAP", task_words=TASK.name)


def match_detections(reference: Detections, candidate: Detections, min_score: float,
                     iou: float = MATCH_IOU) -> tuple[int, list[float]]:
    """(reference detections considered, IoUs of the matched ones): greedy by reference score,
    each candidate used once, same label required."""
    considered, pairs = match_pairs(reference, candidate, min_score, iou)
    return considered, [overlap for _, _, overlap in pairs]


def check_detection_parity(reference: list[Detections], candidate: list[Detections],
                           budgets: DetectionBudgets) -> CheckResult:
    """Matched share and median IoU of the torch model's confident detections."""
    considered, ious, per_image = 0, [], []
    for ref, cand in zip(reference, candidate, strict=True):
        n, matched = match_detections(ref, cand, budgets.min_score)
        considered += n
        ious += matched
        per_image.append((n, len(matched)))
    rate = len(ious) / considered if considered else 1.0
    median = float(np.median(ious)) if ious else (1.0 if not considered else 0.0)
    worst = sorted(((n - m, i) for i, (n, m) in enumerate(per_image) if n > m), reverse=True)
    details = {"images": len(reference), "reference_detections": considered,
               "matched": len(ious), "match_rate": rate, "match_rate_budget": budgets.match_rate,
               "median_iou": median, "median_iou_budget": budgets.median_iou,
               "min_iou_matched": float(min(ious)) if ious else None,
               "min_score": budgets.min_score, "match_iou": MATCH_IOU,
               "images_with_unmatched": [{"image": i, "unmatched": d} for d, i in worst[:10]]}
    iou_ok = budgets.median_iou is None or median >= budgets.median_iou
    passed = rate >= budgets.match_rate and iou_ok
    gate = f"budget >= {budgets.median_iou}" if budgets.median_iou is not None else "not gated"
    summary = (f"{len(ious)}/{considered} torch detections (score >= {budgets.min_score}) "
               f"matched, {rate:.2%} (budget >= {budgets.match_rate:.0%}); median IoU "
               f"{median:.4f} ({gate})")
    return CheckResult("parity", passed, summary, details)


def check_detection_map(samples: list[Sample], record: TaskRecord, reference: list[Detections],
                        candidate: list[Detections], sizes: list[tuple[int, int]],
                        budgets: DetectionBudgets) -> CheckResult:
    """Test mAP/AP50 of the artifact against the torch model's, paired bootstrap interval."""
    from edgetl.metrics.detection import DetectionEvaluator, paired_map_delta

    evaluations = []
    for found in (reference, candidate):
        evaluator = DetectionEvaluator(record)
        evaluator.update(samples, found, sizes)
        evaluations.append(evaluator.coco_eval())
    return map_gate("map", "", len(samples), paired_map_delta(*evaluations,
                                                             rounds=PAIRED_BOOTSTRAP),
                    budgets.map_points)


def map_gate(name: str, prefix: str, images: int, delta: dict[str, Any],
             budget_points: float) -> CheckResult:
    """The dataset gate on mAP and AP50 (`prefix` + "mAP" in the summary): `delta`, the
    artifact's against the torch model's with a paired bootstrap interval
    (`paired_map_delta`); neither may drop more than `budget_points`."""
    drops = {stat: -row["delta"] * 100.0 for stat, row in delta.items()}
    passed = all(drop <= budget_points + 1e-9 for drop in drops.values())
    m, m50 = delta["map"], delta["map50"]
    summary = (f"{prefix}mAP torch {m['first']:.4f}, artifact {m['second']:.4f} "
               f"({-drops['map']:+.2f} points, 95% CI {m['delta_ci95'][0] * 100:+.2f} to "
               f"{m['delta_ci95'][1] * 100:+.2f}); {prefix}AP50 {m50['first']:.4f} -> "
               f"{m50['second']:.4f} ({-drops['map50']:+.2f}); budget -{budget_points} points")
    return CheckResult(name, passed, summary, {
        "images": images, "budget_points": budget_points, **delta,
        "drop_points": drops, "paired_bootstrap_rounds": PAIRED_BOOTSTRAP})


def check_coordinates(samples: list[Sample], spec: PreprocessSpec,
                      geometries: list[Geometry]) -> CheckResult:
    """Ground-truth boxes into the input and back: torch path against the numpy reference."""
    # not at the top: importing this module loads no torch
    import torch
    from torchvision import tv_tensors

    from edgetl.data.transforms import Letterbox, geometry_transform

    letterbox = Letterbox(spec) if spec.geometry == "letterbox" else geometry_transform(spec)
    worst_in, worst_back, compared = 0.0, 0.0, 0
    for sample, geo in zip(samples, geometries, strict=True):
        boxes = np.asarray(sample.target.boxes, dtype=np.float64).reshape(-1, 4)
        if not len(boxes):
            continue
        moved = letterbox(tv_tensors.BoundingBoxes(
            torch.as_tensor(boxes, dtype=torch.float64), format="XYXY",
            canvas_size=geo.source)).as_subclass(torch.Tensor).numpy()
        reference = geo.forward_boxes(boxes)
        inside = (reference[:, 0] >= 0) & (reference[:, 2] <= geo.input[1])
        worst_in = max(worst_in, float(np.abs(moved - reference)[inside].max(initial=0.0)))
        back = geo.inverse_boxes(moved, clip=False)
        worst_back = max(worst_back, float(np.abs(back - boxes).max()))
        compared += len(boxes)
    passed = worst_in <= COORDINATE_BUDGET_PX and worst_back <= COORDINATE_BUDGET_PX
    return CheckResult(
        "coordinates", passed,
        f"{compared} boxes: torch path vs numpy reference max {worst_in:.4f} px in the input, "
        f"{worst_back:.4f} px back in the image (budget <= {COORDINATE_BUDGET_PX})",
        {"boxes": compared, "max_px_input": worst_in, "max_px_back": worst_back,
         "budget_px": COORDINATE_BUDGET_PX})


def verify_checks(side: Any, info: Any, samples: list[Sample], budgets: DetectionBudgets,
                  run: Any, point: Any, reference: dict[str, Any], artifact: dict[str, Any],
                  outputs: CheckResult) -> list[CheckResult]:
    """A detector's `verify_checks`: coordinates, outputs, detection parity, mAP."""
    from edgetl.artifact.postprocess import detections_from_outputs

    ref = detections_from_outputs(reference, side.geometries)
    art = detections_from_outputs(artifact, side.geometries)
    sizes = [g.source for g in side.geometries]
    return [check_coordinates(samples, info.spec, side.geometries), outputs,
            check_detection_parity(ref, art, budgets),
            check_detection_map(samples, info.task_record, ref, art, sizes, budgets)]
