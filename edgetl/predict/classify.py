"""A classifier's prediction: top-k labels and softmax probabilities per image, and the class
its artifact's rule decided (argmax, or the operating point it carries)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetl.artifact.manifest import ArtifactInfo
from edgetl.predict import Prediction, class_logits, decisions, softmax
from edgetl.predict.files import PredictOptions, run_files
from edgetl.runtime import Runner


def predict(runner: Runner, info: ArtifactInfo, images: Sequence[str | Path],
            options: PredictOptions) -> list[Prediction]:
    """A classifier's `predictor`: the options' top_k classes of each image, most likely
    first."""
    outputs, _ = run_files(runner, info, images, options.batch)
    probs = softmax(class_logits(outputs, info.task_record.num_classes))
    k = min(options.top_k, info.task_record.num_classes)
    out = []
    decided = decisions(probs, info.task_record.names, info.decision)
    for image, row, decision in zip(images, probs, decided, strict=True):
        order = np.argsort(-row, kind="stable")[:k]
        out.append(Prediction(image=str(image), labels=[info.task_record.names[i] for i in order],
                              indices=[int(i) for i in order],
                              probabilities=[float(row[i]) for i in order], decision=decision))
    return out


def write_outputs(artifact: Path, results: list[Prediction], draw: Path | None,
                  masks: Path | None) -> None:
    """A classifier's `prediction_writer`: nothing to write (--draw and --masks do not apply to
    it, so `predict` refuses them before this is reached)."""
