"""verify's semantic segmentation checks: pixel agreement and the test-mIoU gate.

- parity: the share of input pixels inside the image (letterbox padding excluded) where the
  artifact's class equals the torch model's;
- miou: the artifact's test mIoU (at each image's own resolution, against the ground truth)
  against the torch model's on the same images, with a paired bootstrap interval of the
  difference; the point difference is gated.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.formats import SEMANTIC_BUDGETS, SemanticBudgets
from edgetl.data.samples import Sample
from edgetl.geometry import Geometry
from edgetl.metrics.semantic import paired_miou_delta
from edgetl.spec import TaskRecord
from edgetl.tasks.semantic import TASK
from edgetl.verify.budgets import BudgetTable
from edgetl.verify.checks import CheckResult

PAIRED_BOOTSTRAP = 500

# A segmenter's `verify_budgets`: its precision's gates (the flags override the pixel agreement
# and the mIoU points).
BUDGETS = BudgetTable(rows=SEMANTIC_BUDGETS, fallback="int8", agreement="pixel_agreement",
                      drop="miou_points", agreement_words="pixel agreement",
                      drop_words="mIoU", task_words=f"{TASK.name} segmentation")


def check_pixel_parity(reference: np.ndarray, candidate: np.ndarray,
                       geometries: list[Geometry], budgets: SemanticBudgets) -> CheckResult:
    """Agreement of the two class maps over the image content of every input."""
    agreed = total = 0
    worst: list[tuple[float, int]] = []
    for row, geo in enumerate(geometries):
        x1, y1, x2, y2 = geo.content
        ref, art = reference[row, y1:y2, x1:x2], candidate[row, y1:y2, x1:x2]
        same = int((ref == art).sum())
        agreed += same
        total += ref.size
        worst.append((same / max(1, ref.size), row))
    share = agreed / max(1, total)
    passed = share >= budgets.pixel_agreement
    worst.sort()
    return CheckResult(
        "parity", passed,
        f"{share:.4%} of {total} image pixels get the torch model's class (budget >= "
        f"{budgets.pixel_agreement:.1%}); worst image {worst[0][0]:.2%}" if worst else
        "no pixels compared",
        {"pixel_agreement": share, "pixels": total, "budget": budgets.pixel_agreement,
         "worst_images": [{"image": i, "agreement": a} for a, i in worst[:10]]})


def check_miou(samples: list[Sample], record: TaskRecord, mask_record: Any,
               reference: list[np.ndarray], candidate: list[np.ndarray],
               budgets: SemanticBudgets) -> CheckResult:
    """Test mIoU of the artifact against the torch model's, paired bootstrap interval."""
    from edgetl.data.semantic import read_mask
    from edgetl.metrics.semantic import confusion

    first, second = [], []
    for sample, ref, art in zip(samples, reference, candidate, strict=True):
        truth = read_mask(sample.target, mask_record)
        first.append(confusion(truth, ref, record.num_classes, record.ignore_index))
        second.append(confusion(truth, art, record.num_classes, record.ignore_index))
    return miou_gate(first, second, budgets)


def miou_gate(first: list[np.ndarray], second: list[np.ndarray],
              budgets: SemanticBudgets) -> CheckResult:
    """The mIoU gate from per-image confusion matrices against the truth (torch model's,
    artifact's): paired bootstrap interval of the difference, the point drop gated."""
    delta = paired_miou_delta(first, second, rounds=PAIRED_BOOTSTRAP)
    drop = -delta["delta"] * 100.0
    passed = drop <= budgets.miou_points + 1e-9
    low, high = (v * 100 for v in delta["delta_ci95"])
    return CheckResult(
        "miou", passed,
        f"mIoU torch {delta['first']:.4f}, artifact {delta['second']:.4f} ({-drop:+.2f} points, "
        f"95% CI {low:+.2f} to {high:+.2f}); budget -{budgets.miou_points} points",
        {"images": len(first), "budget_points": budgets.miou_points, **delta,
         "drop_points": drop, "paired_bootstrap_rounds": PAIRED_BOOTSTRAP})


def verify_checks(side: Any, info: Any, samples: list[Sample], budgets: SemanticBudgets,
                  run: Any, point: Any, reference: dict[str, Any], artifact: dict[str, Any],
                  outputs: CheckResult) -> list[CheckResult]:
    """A segmenter's `verify_checks`: outputs, pixel parity, mIoU (against the run's masks)."""
    from edgetl.artifact.postprocess import masks_from_outputs
    from edgetl.runfolder import RunFolder

    mask_record = RunFolder(run).dataset().record
    return [outputs,
            check_pixel_parity(reference["mask"], artifact["mask"], side.geometries, budgets),
            check_miou(samples, info.task_record, mask_record,
                       masks_from_outputs(reference, side.geometries),
                       masks_from_outputs(artifact, side.geometries), budgets)]
