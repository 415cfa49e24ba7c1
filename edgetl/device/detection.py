"""A detector on the device: its sample's boxes, detection parity and the mAP gate.

Parity is verify's own check (`edgetl.verify.detection`); mAP is COCO's, matched in numpy
(`edgetl.metrics.coco_match`, the same records pycocotools makes) and accumulated with verify's
arithmetic and paired bootstrap, so the device needs no pycocotools.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.formats import DetectionBudgets
from edgetl.artifact.postprocess import Detections, detections_from_outputs
from edgetl.metrics.coco_match import Truth, box_overlaps, image_records
from edgetl.metrics.detection import paired_records_delta
from edgetl.spec import TaskRecord
from edgetl.verify.checks import CheckResult
from edgetl.verify.detection import PAIRED_BOOTSTRAP, check_detection_parity, map_gate


def sample_labels(samples: list[Any], info: Any, run: Any, geometries: list[Any]
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each image's boxes (the file's pixels), class indices and crowd flags, and the
    classes each shows."""
    arrays: dict[str, np.ndarray] = {}
    for i, sample in enumerate(samples):
        target = sample.target
        arrays[f"boxes_{i}"] = np.asarray(target.boxes, dtype=np.float64).reshape(-1, 4)
        arrays[f"labels_{i}"] = np.array([info.task_record.index(name)
                                          for name in target.labels], dtype=np.int64)
        arrays[f"crowd_{i}"] = np.asarray(target.crowd, dtype=bool)
    return arrays, {"labels": [list(s.classes) for s in samples],
                    "max_detections": int(info.head.get("max_detections", 100))}


def truth_of(truth: Any, images: int, masks: bool = False) -> list[Truth]:
    """The bundle's labels.npz as one `Truth` per image."""
    return [Truth(truth[f"boxes_{i}"], truth[f"labels_{i}"], truth[f"crowd_{i}"],
                  truth[f"masks_{i}"] if masks else None) for i in range(images)]


def box_records(truth: list[Truth], found: list[Detections], classes: int,
                max_dets: int = 100) -> list[list[tuple | None]]:
    """COCO's bbox matching records of `found` against `truth`."""
    def overlaps(i: int, dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
        return box_overlaps(found[i].boxes[dt], truth[i].boxes[gt], truth[i].crowd[gt])

    return image_records(truth, [f.scores for f in found], [f.labels for f in found],
                         overlaps, classes, max_dets)


def device_checks(bundle: dict[str, Any], truth: Any, reference: dict[str, np.ndarray],
                  artifact: dict[str, np.ndarray], geometries: list[Any]) -> list[CheckResult]:
    """A detector's gates on the device: detection parity, mAP against the stored truth."""
    record = TaskRecord.from_dict(bundle["task_record"])
    budgets = DetectionBudgets(**bundle["budgets"])
    ref = detections_from_outputs(reference, geometries)
    art = detections_from_outputs(artifact, geometries)
    gt = truth_of(truth, len(geometries))
    delta = paired_records_delta(box_records(gt, ref, record.num_classes),
                                 box_records(gt, art, record.num_classes), len(gt),
                                 rounds=PAIRED_BOOTSTRAP)
    return [check_detection_parity(ref, art, budgets),
            map_gate("map", "", len(gt), delta, budgets.map_points)]


def judge_parity(details: dict[str, Any], budgets: DetectionBudgets) -> bool:
    """The matched share and (where gated) the median IoU."""
    return details["match_rate"] >= budgets.match_rate and (
        budgets.median_iou is None or details["median_iou"] >= budgets.median_iou)


def judge_map(details: dict[str, Any], budget_points: float) -> bool:
    """No mAP or AP50 drop beyond the budget."""
    return all(drop <= budget_points + 1e-9 for drop in details["drop_points"].values())


def judge(name: str, details: dict[str, Any], budgets: DetectionBudgets) -> bool:
    """A device check's gate with this machine's budgets."""
    if name == "parity":
        return judge_parity(details, budgets)
    if name == "map":
        return judge_map(details, budgets.map_points)
    return True
