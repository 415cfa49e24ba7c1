"""Deployment-side prediction: the artifact and its embedded spec, nothing else.

Torch-free on purpose (onnxruntime, numpy and PIL only): this is the code path a user copies to
a device. The spec and task record come from the artifact's own metadata (read through the
onnxruntime session, so not even the `onnx` package is needed); images go through
`edgetl.artifact.reference`, which `verify` proves equal to training's evaluation transform.
Per task (its `predictor` slot): a classifier's top-k in `edgetl.predict.classify`, a detector's
boxes in `edgetl.predict.detect`, an instance model's boxes and masks in
`edgetl.predict.instances`, a segmenter's class maps in `edgetl.predict.segment`.
A classifier's decision is argmax, or the operating point its artifact carries
(`edgetl.decision`: the class when its probability reaches the threshold, otherwise the most
probable other class); each prediction says which rule decided.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgetl import tasks
from edgetl.artifact.manifest import (
    OUTPUT_NAME,
    ArtifactInfo,
    metadata_from_mapping,
    read_artifact,
    read_manifest,
    spec_tampering,
)
from edgetl.decision import ARGMAX_RULE, OperatingPoint
from edgetl.errors import ArtifactError, UsageError
from edgetl.predict.files import DEFAULT_BATCH, PredictOptions, run_files
from edgetl.runtime import Runner, open_runner
from edgetl.spec import unfingerprinted_labels

__all__ = ["DEFAULT_BATCH", "open_artifact", "predict_artifact", "predict_images", "run_files"]


@dataclass(frozen=True)
class Prediction:
    """Top-k classes of one image, most likely first, and the class the artifact's rule
    decided (`decision`: label, index, rule, why)."""

    image: str
    labels: list[str]
    indices: list[int]
    probabilities: list[float]
    decision: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "image": self.image,
            "top": [{"label": label, "index": index, "probability": prob}
                    for label, index, prob in zip(self.labels, self.indices,
                                                  self.probabilities, strict=True)],
        }
        if self.decision is not None:
            out["decision"] = self.decision
        return out


def decisions(probs: np.ndarray, names: tuple[str, ...], point: OperatingPoint | None
              ) -> list[dict[str, Any]]:
    """Per row: the decided class and the rule that decided it, in words."""
    chosen = point.decide(probs) if point is not None else probs.argmax(axis=1)
    out = []
    for row, index in zip(probs, chosen, strict=True):
        decided = {"label": names[int(index)], "index": int(index),
                   "probability": float(row[int(index)])}
        if point is None:
            decided.update(rule="argmax", why=ARGMAX_RULE)
        else:
            score = float(row[point.class_index])
            decided.update(rule="operating_point", target=point.target.text(),
                           threshold=point.threshold, score=score, why=point.why(score))
        out.append(decided)
    return out


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable), returned as float32."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def open_artifact(artifact: str | Path, backend: str = "ort-cpu", threads: int | None = None,
                  force: bool = False) -> tuple[Runner, ArtifactInfo]:
    """A runner and the artifact's own spec/labels (ONNX: from the session's metadata).

    An artifact whose embedded spec or class names were edited after export is refused
    (`refuse_edited`); `force` runs it anyway, with a warning."""
    path = Path(artifact)
    if not path.is_file():
        read_artifact(path)  # raises the usual "artifact not found" error
    runner = open_runner(path, backend, threads=threads)
    metadata = getattr(runner, "metadata", None)
    try:
        if metadata is not None:
            info = metadata_from_mapping(path, metadata, read_manifest(path))
        else:
            info = read_artifact(path)
        _ = info.decision  # a damaged operating point is refused before any image runs
        refuse_edited(info, force)
    except BaseException:
        runner.close()
        raise
    return runner, info


def refuse_edited(info: ArtifactInfo, force: bool = False) -> None:
    """Refuse an artifact whose embedded spec or task record (class names) was edited after
    export (`ArtifactError`, exit 2): its results would come from preprocessing the model was
    not trained with, or carry names it was not trained on. `force`: a warning instead. One
    exported before class names were fingerprinted: a warning (`unfingerprinted_labels`)."""
    problem = spec_tampering(info)
    if problem and not force:
        raise ArtifactError(problem, "re-export it from its run ('edgetl verify' shows what "
                            "differs; predict --force runs it anyway)")
    if problem:
        warnings.warn(f"{problem}; running it anyway (--force): its predictions are not the "
                      "trained model's", stacklevel=2)
    old = unfingerprinted_labels(info.path, info.metadata)
    if old:
        warnings.warn(old, stacklevel=2)


def class_logits(outputs: dict[str, np.ndarray], num_classes: int) -> np.ndarray:
    """A classifier's logits [N, C] (an empty [0, C] array for no images)."""
    return outputs.get(OUTPUT_NAME, np.zeros((0, num_classes), dtype=np.float32)
                       ).astype(np.float32, copy=False)


def predict_images(artifact: str | Path, images: Sequence[str | Path], top_k: int = 3,
                   backend: str = "ort-cpu", threads: int | None = None,
                   batch: int = DEFAULT_BATCH, min_score: float = 0.3,
                   force: bool = False, tile: bool = False, overlap: int = 32) -> list[Any]:
    """Per image, in the order given, what the task's `predictor` returns: a classifier's top-k
    labels and softmax probabilities (`Prediction`), a detector's boxes above `min_score`
    (`detect.ImageDetections`), an instance model's boxes and masks above `min_score`
    (`instances.ImageInstances`), a segmenter's class map at the file's size
    (`segment.ImageMask`; `tile`: large images tile by tile)."""
    return predict_artifact(artifact, images, top_k, backend, threads, batch, min_score, force,
                            tile, overlap)[1]


def predict_artifact(artifact: str | Path, images: Sequence[str | Path], top_k: int = 3,
                     backend: str = "ort-cpu", threads: int | None = None,
                     batch: int = DEFAULT_BATCH, min_score: float = 0.3,
                     force: bool = False, tile: bool = False, overlap: int = 32
                     ) -> tuple[ArtifactInfo, list[Any]]:
    """`predict_images`, and the artifact it read (its task says how to show the results)."""
    if top_k < 1:
        raise UsageError(f"--top-k must be at least 1, got {top_k}")
    runner, info = open_artifact(artifact, backend, threads, force=force)
    options = PredictOptions(batch=batch, top_k=top_k, min_score=min_score, tile=tile,
                             overlap=overlap)
    try:
        return info, tasks.get(info.task_record.task).load("predictor")(runner, info, images,
                                                                         options)
    finally:
        runner.close()


def predict_artifact_on_samples(artifact_path: str | Path, samples: Sequence[Any],
                                backend: str = "ort-cpu", batch: int = 32,
                                threads: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, logits), both [N, C] float32, for `Sample`s (anything with `.path`).

    Column i is the artifact's label i (`read_artifact(path).labels.names[i]`); map the
    samples' label names through that, not through a data set's own class order.
    """
    runner, info = open_artifact(artifact_path, backend, threads)
    try:
        outputs, _ = run_files(runner, info, [s.path for s in samples], batch)
        logits = class_logits(outputs, info.task_record.num_classes)
    finally:
        runner.close()
    return softmax(logits), logits
