"""Operating points in evaluation reports: which targets, and the validation scores.

`evaluate RUN` (and `finetune`'s closing report) analyse the targets given with
`--operating-point`, else the run recipe's `operating_point`: each threshold is chosen on the
run's own validation split and scored on the evaluated split. `evaluate ARTIFACT` decides by
the operating point the artifact carries and reports what it gives; targets given on the
command line are analysed through the artifact the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.decision import Target
from edgetl.errors import ArtifactError


def requested_targets(run: Path | None, given: Sequence[str] | None,
                      names: tuple[str, ...]) -> list[Target]:
    """The targets to analyse: `given`, else the run recipe's key; classes checked."""
    from edgetl.runfolder import RunFolder

    texts = list(given or [])
    if not texts and run is not None and RunFolder(run).exists():
        key = RunFolder(run).recipe().operating_point
        texts = [key] if key else []
    targets = [Target.parse(t) for t in texts]
    for target in targets:
        target.index_in(names)
    return targets


def analyse(targets: list[Target], run: Path | None, names: tuple[str, ...],
            scores: Callable[[list[Any]], np.ndarray], y: np.ndarray, probs: np.ndarray,
            split: str) -> list[dict[str, Any]]:
    """One report entry per target: threshold chosen on RUN's validation split (`scores`
    gives the model's probabilities for samples), figures on the evaluated split."""
    from edgetl.metrics.operating_point import operating_point_report
    from edgetl.runfolder import RunFolder

    if not targets:
        return []
    if run is None or not RunFolder(run).exists():
        raise ArtifactError(f"cannot find the run {run} to choose thresholds on its "
                            "validation split", "keep the run folder where it was")
    samples = RunFolder(run).samples("val")
    val_probs = scores(samples)
    y_val = np.array([names.index(s.label) for s in samples])
    return [operating_point_report(t, list(names), y_val, val_probs, y, probs, split)
            for t in targets]
