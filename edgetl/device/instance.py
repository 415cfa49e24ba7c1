"""An instance model on the device: its sample's boxes and masks, box and mask parity and the
mask-mAP gate, with verify's own parity checks (`edgetl.verify.detection`,
`edgetl.verify.instance`) and COCO's segm matching in numpy (`edgetl.metrics.coco_match`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.formats import InstanceBudgets
from edgetl.artifact.postprocess import Instances, instances_from_outputs
from edgetl.device.detection import judge_map, judge_parity, truth_of
from edgetl.device.detection import sample_labels as box_labels
from edgetl.metrics.coco_match import Truth, image_records, mask_overlaps
from edgetl.metrics.detection import paired_records_delta
from edgetl.spec import TaskRecord
from edgetl.verify.checks import CheckResult
from edgetl.verify.detection import PAIRED_BOOTSTRAP, check_detection_parity, map_gate
from edgetl.verify.instance import check_mask_parity


def sample_labels(samples: list[Any], info: Any, run: Any, geometries: list[Any]
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """A detector's labels plus each instance's mask at the file's size (boolean
    [instances, H, W], decoded here as verify's evaluator reads it)."""
    from pycocotools import mask as mask_utils

    from edgetl.metrics.instance import truth_masks

    arrays, fields = box_labels(samples, info, run, geometries)
    sizes = [g.source for g in geometries]
    for i, (rles, size) in enumerate(zip(truth_masks(samples, sizes), sizes, strict=True)):
        masks = [mask_utils.decode({**r, "counts": r["counts"].encode()
                                    if isinstance(r["counts"], str) else r["counts"]})
                 for r in rles]
        arrays[f"masks_{i}"] = (np.stack(masks).astype(bool) if masks
                                else np.zeros((0, *size), dtype=bool))
    return arrays, fields


def mask_records(truth: list[Truth], found: list[Instances], classes: int,
                 max_dets: int) -> list[list[tuple | None]]:
    """COCO's segm matching records of `found` (masks pasted at the file's size) against
    `truth`."""
    def overlaps(i: int, dt: np.ndarray, gt: np.ndarray) -> np.ndarray:
        pasted = np.stack([found[i].mask(int(k)) for k in dt])
        return mask_overlaps(pasted, truth[i].masks[gt], truth[i].crowd[gt])

    return image_records(truth, [f.scores for f in found], [f.labels for f in found],
                         overlaps, classes, max_dets)


def device_checks(bundle: dict[str, Any], truth: Any, reference: dict[str, np.ndarray],
                  artifact: dict[str, np.ndarray], geometries: list[Any]) -> list[CheckResult]:
    """An instance model's gates on the device: box parity, mask parity, mask mAP."""
    record = TaskRecord.from_dict(bundle["task_record"])
    budgets = InstanceBudgets(**bundle["budgets"])
    most = max(100, int(bundle["max_detections"]))
    ref = instances_from_outputs(reference, geometries)
    art = instances_from_outputs(artifact, geometries)
    gt = truth_of(truth, len(geometries), masks=True)
    delta = paired_records_delta(mask_records(gt, ref, record.num_classes, most),
                                 mask_records(gt, art, record.num_classes, most), len(gt),
                                 rounds=PAIRED_BOOTSTRAP)
    return [check_detection_parity(ref, art, budgets), check_mask_parity(ref, art, budgets),
            map_gate("mask_map", "mask ", len(gt), delta, budgets.mask_map_points)]


def judge(name: str, details: dict[str, Any], budgets: InstanceBudgets) -> bool:
    """A device check's gate with this machine's budgets."""
    if name == "parity":
        return judge_parity(details, budgets)
    if name == "mask_parity":
        return details["median_mask_iou"] >= budgets.mask_iou
    if name == "mask_map":
        return judge_map(details, budgets.mask_map_points)
    return True
