"""`evaluate ARTIFACT`: the same report as for a run, computed through the artifact itself.

The artifact runs on ONNX Runtime with its embedded spec's deployment preprocessing (what a
device runs). The data defaults to the exact split of the run it was exported from, found
through the artifact's manifest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.errors import DataError


def evaluate_artifact(path: str | Path, split: str = "test", data: str | None = None,
                      backend: str = "ort-cpu", operating_points: list[str] | None = None
                      ) -> dict[str, Any]:
    """The report of the artifact's decisions: its operating point when it carries one (the
    rule of `edgetl.decision`), argmax otherwise. `operating_points`: targets to analyse
    through the artifact, chosen on the source run's validation split."""
    from edgetl.artifact.manifest import read_artifact
    from edgetl.decision import ARGMAX_RULE
    from edgetl.evaluate.operating import analyse, requested_targets
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.metrics.classification import classification_report
    from edgetl.metrics.operating_point import figures_at
    from edgetl.predict import predict_artifact_on_samples

    info = read_artifact(path)
    names = info.task_record.names
    point = info.decision
    targets = requested_targets(None, operating_points, names)
    samples, origin = evaluation_samples(info.source_run, split, data, info.task_record.task)
    unknown = sorted({s.label for s in samples} - set(names))
    if unknown:
        raise DataError(f"the data has labels the artifact does not know: {unknown[:5]}",
                        f"it was trained on {list(names)}")
    probs, _ = predict_artifact_on_samples(path, samples, backend=backend)
    y = np.array([info.task_record.index(s.label) for s in samples])
    report = classification_report(y, probs, list(names),
                                   pred=point.decide(probs) if point is not None else None)
    report["decision"] = point.to_dict() if point is not None else {
        "rule": "argmax", "description": ARGMAX_RULE}
    entries = []
    if point is not None:
        entries.append({"target": point.target.text(), "class": point.class_name,
                        "threshold": point.threshold, "rule": point.rule,
                        "recorded_in_artifact": True, "chosen_on": point.chosen_on,
                        split: figures_at(point, y, probs)})
    entries += analyse(targets, info.source_run, names,
                       lambda files: predict_artifact_on_samples(path, files, backend=backend)[0],
                       y, probs, split)
    if entries:
        report["operating_points"] = entries
    report.update({"target": str(path), "kind": f"artifact ({info.format}, {info.precision})",
                   "split": split, "data": origin, "spec_fingerprint": info.spec.fingerprint()})
    return report

