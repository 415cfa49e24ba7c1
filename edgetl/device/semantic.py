"""A segmenter on the device: its sample's class maps, pixel parity and the mIoU gate, with
verify's own checks (`edgetl.verify.semantic`) on the stored torch outputs and the artifact's."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.formats import SemanticBudgets
from edgetl.artifact.postprocess import masks_from_outputs
from edgetl.metrics.semantic import confusion
from edgetl.spec import TaskRecord
from edgetl.verify.checks import CheckResult
from edgetl.verify.semantic import check_pixel_parity, miou_gate


def sample_labels(samples: list[Any], info: Any, run: Any, geometries: list[Any]
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """Each image's truth as class indices at the file's size (the run's mask record read
    here, so the device needs no mask decoding), and the classes each shows."""
    from edgetl.data.semantic import read_mask
    from edgetl.runfolder import RunFolder

    record = RunFolder(run).dataset().record
    arrays = {f"mask_{i}": read_mask(s.target, record) for i, s in enumerate(samples)}
    return arrays, {"labels": [list(s.classes) for s in samples]}


def device_checks(bundle: dict[str, Any], truth: Any, reference: dict[str, np.ndarray],
                  artifact: dict[str, np.ndarray], geometries: list[Any]) -> list[CheckResult]:
    """A segmenter's gates on the device: pixel parity, mIoU against the stored truth."""
    record = TaskRecord.from_dict(bundle["task_record"])
    budgets = SemanticBudgets(**bundle["budgets"])
    first, second = [], []
    for i, (ref, art) in enumerate(zip(masks_from_outputs(reference, geometries),
                                       masks_from_outputs(artifact, geometries), strict=True)):
        mask = truth[f"mask_{i}"]
        first.append(confusion(mask, ref, record.num_classes, record.ignore_index))
        second.append(confusion(mask, art, record.num_classes, record.ignore_index))
    return [check_pixel_parity(reference["mask"], artifact["mask"], geometries, budgets),
            miou_gate(first, second, budgets)]


def judge(name: str, details: dict[str, Any], budgets: SemanticBudgets) -> bool:
    """A device check's gate with this machine's budgets."""
    if name == "parity":
        return details["pixel_agreement"] >= budgets.pixel_agreement
    if name == "miou":
        return details["drop_points"] <= budgets.miou_points + 1e-9
    return True
