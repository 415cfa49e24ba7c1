"""The operating point an artifact records: a threshold chosen on the run's validation split.

The threshold comes from the PyTorch checkpoint's validation probabilities (through the
training evaluation transform), the same numbers `finetune` and `evaluate RUN` report, so
every format exported from a run carries the same threshold and verify judges the artifact
and the checkpoint by the same rule. Chosen before anything is traced, so a class the model
does not have or a target validation cannot meet fails in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from edgetl import tasks
from edgetl.checkpoint import CheckpointInfo
from edgetl.decision import OperatingPoint, Target
from edgetl.errors import DataError, UsageError


def choose_for_export(run: Path, info: CheckpointInfo, text: str) -> OperatingPoint:
    """The operating point for `text` (CLASS:recall=R or CLASS:precision=P) on RUN's
    validation split with the checkpoint `info` names; DataError when it cannot be met."""
    from edgetl.metrics.operating_point import choose, unreachable_reason
    from edgetl.models.inference import torch_probs
    from edgetl.models.loading import load_model
    from edgetl.runfolder import RunFolder

    if not tasks.get(info.task_record.task).operating_point:
        raise UsageError(f"an operating point applies to classifiers, not to "
                         f"{info.task_record.task} models")
    target = Target.parse(text)
    names = info.task_record.names
    target.index_in(names)
    samples = RunFolder(run).dataset().by_split("val")
    if not samples:
        raise DataError(f"the run {run} has no validation images to choose the threshold of "
                        f"{target.text()} on", "export without --operating-point")
    model, _ = load_model(info.folder)
    probs = torch_probs(model, info.spec, [s.path for s in samples])
    y = np.array([info.task_record.index(s.label) for s in samples])
    point = choose(target, names, y, probs)
    if point is None:
        why = unreachable_reason(target, names, y, probs)
        raise DataError(f"cannot choose {target.text()}: {why}",
                        "lower the target or export without --operating-point")
    chosen = {**point.chosen_on, "checkpoint": info.folder.name,
              "scores": "PyTorch checkpoint, training evaluation transform"}
    return OperatingPoint(point.class_name, point.class_index, point.threshold, point.target,
                          chosen)
