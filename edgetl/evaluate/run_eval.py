"""Evaluate a run's checkpoint (or an exported artifact) on a split of its recorded data.

A run's samples come from its own `split.csv`, so `finetune`'s closing test figure and
`edgetl evaluate RUN` are computed by this same function on the same images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.checkpoint import BEST
from edgetl.errors import DataError
from edgetl.models.inference import torch_probs

__all__ = ["evaluate_checkpoint", "torch_probs"]


def evaluate_checkpoint(run_dir: str | Path, split: str = "test", data: str | None = None,
                        device: str = "cpu", operating_points: list[str] | None = None
                        ) -> dict[str, Any]:
    """classification_report of the run's best checkpoint on `split`, with the operating
    points asked for (`operating_points`, else the recipe's) chosen on validation."""
    from edgetl.evaluate.operating import analyse, requested_targets
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.metrics.classification import classification_report
    from edgetl.models.loading import load_model

    model, info = load_model(run_dir, BEST)
    names = info.task_record.names
    targets = requested_targets(Path(run_dir), operating_points, names)
    samples, origin = evaluation_samples(Path(run_dir), split, data, info.task_record.task)
    _check_labels(samples, names)
    probs = torch_probs(model, info.spec, [s.path for s in samples], device)
    y = np.array([info.task_record.index(s.label) for s in samples])
    report = classification_report(y, probs, list(names))
    if targets:
        report["operating_points"] = analyse(
            targets, Path(run_dir), names,
            lambda files: torch_probs(model, info.spec, [f.path for f in files], device),
            y, probs, split)
    report.update({"target": str(Path(run_dir)), "kind": "checkpoint", "split": split,
                   "data": origin, "spec_fingerprint": info.spec.fingerprint(),
                   "checkpoint_epoch": info.record.get("epoch")})
    return report


def _check_labels(samples: list, names: tuple[str, ...]) -> None:
    unknown = sorted({s.label for s in samples} - set(names))
    if unknown:
        raise DataError(f"the data has labels the model does not know: {unknown[:5]}",
                        f"the model was trained on {list(names)}")
