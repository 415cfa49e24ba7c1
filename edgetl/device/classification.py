"""A classifier on the device: its sample's class indices, top-1 parity and the accuracy gate
(argmax on both sides, verify's budgets; no McNemar test, which needs scipy)."""

from __future__ import annotations

from typing import Any

import numpy as np

from edgetl.artifact.manifest import OUTPUT_NAME
from edgetl.spec import TaskRecord
from edgetl.verify.checks import Budgets, CheckResult, check_parity


def sample_labels(samples: list[Any], info: Any, run: Any, geometries: list[Any]
                  ) -> tuple[dict[str, np.ndarray], dict[str, Any]]:
    """The class index of each image (labels.npz) and its class name (bundle.json)."""
    targets = np.array([info.task_record.index(s.label) for s in samples], dtype=np.int64)
    return {"targets": targets}, {"labels": [s.label for s in samples]}


def check_metric(targets: np.ndarray, reference: np.ndarray, logits: np.ndarray,
                 budgets: Budgets) -> CheckResult:
    """The artifact's accuracy on the sample may not fall more than the budget below torch's."""
    torch_acc = float((reference.argmax(axis=1) == targets).mean())
    acc = float((logits.argmax(axis=1) == targets).mean())
    delta = (acc - torch_acc) * 100.0
    details = {"images": int(len(targets)), "pytorch_accuracy": torch_acc,
               "artifact_accuracy": acc, "delta_points": delta,
               "budget_points": budgets.accuracy_points}
    return CheckResult("accuracy", -delta <= budgets.accuracy_points + 1e-9,
                       f"sample of {len(targets)}: PyTorch {torch_acc:.2%}, artifact {acc:.2%}, "
                       f"delta {delta:+.2f} points (budget -{budgets.accuracy_points})", details)


def device_checks(bundle: dict[str, Any], truth: Any, reference: dict[str, np.ndarray],
                  artifact: dict[str, np.ndarray], geometries: list[Any]) -> list[CheckResult]:
    """A classifier's gates on the device: top-1 parity, accuracy."""
    record = TaskRecord.from_dict(bundle["task_record"])
    budgets = Budgets(**bundle["budgets"])
    ref, art = reference[OUTPUT_NAME], artifact[OUTPUT_NAME]
    return [check_parity(ref, art, record, budgets),
            check_metric(np.asarray(truth["targets"]), ref, art, budgets)]


def judge(name: str, details: dict[str, Any], budgets: Budgets) -> bool:
    """A device check's gate with this machine's budgets."""
    if name == "parity":
        return details["top1_agreement"] >= budgets.top1_agreement
    if name == "accuracy":
        return -details["delta_points"] <= budgets.accuracy_points + 1e-9
    return True
