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
                      backend: str = "ort-cpu") -> dict[str, Any]:
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.export.manifest import read_artifact
    from edgetl.metrics.classification import classification_report
    from edgetl.predict import predict_artifact_on_samples

    info = read_artifact(path)
    samples, origin = evaluation_samples(info.source_run, split, data, info.task_record.task)
    unknown = sorted({s.label for s in samples} - set(info.task_record.names))
    if unknown:
        raise DataError(f"the data has labels the artifact does not know: {unknown[:5]}",
                        f"it was trained on {list(info.task_record.names)}")
    probs, _ = predict_artifact_on_samples(path, samples, backend=backend)
    y = np.array([info.task_record.index(s.label) for s in samples])
    report = classification_report(y, probs, list(info.task_record.names))
    report.update({"target": str(path), "kind": f"artifact ({info.format}, {info.precision})",
                   "split": split, "data": origin, "spec_fingerprint": info.spec.fingerprint()})
    return report
