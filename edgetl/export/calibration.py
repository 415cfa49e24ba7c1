"""Calibration images for int8 formats: a stratified pick of the run's own training split.

The images go through the deployment reference transform (`reference.preprocess_file`), which
`verify` proves equal to the training evaluation transform, so the ranges int8 learns are the
ranges the model sees in training's evaluation path. The pick is deterministic (seeded) and its
fingerprint names the TensorRT calibration cache, so a cache is never reused for other images.
"""

from __future__ import annotations

import hashlib
import random
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from edgetl.artifact.reference import preprocess_batch
from edgetl.data.samples import Sample
from edgetl.spec import PreprocessSpec

CALIBRATION_BATCH = 8  # images per calibration run


def training_samples(run: Path) -> list[Sample]:
    """The training split the run used (int8 calibrates on the run's own training images)."""
    from edgetl.runfolder import RunFolder

    return RunFolder(run).samples("train")


def select_calibration_samples(samples: list[Sample], n: int, seed: int = 0) -> list[Sample]:
    """The calibration images: `stratified_subset` of the training split."""
    return stratified_subset(samples, n, seed)


def stratified_subset(samples: list[Sample], n: int, seed: int = 0) -> list[Sample]:
    """Up to `n` samples, stratified by class (proportional, at least one per class), sorted."""
    if n >= len(samples):
        return sorted(samples, key=lambda s: s.path)
    by_class: dict[str, list[Sample]] = defaultdict(list)
    for sample in sorted(samples, key=lambda s: s.path):
        by_class[sample.label].append(sample)
    rng = random.Random(seed)
    for items in by_class.values():
        rng.shuffle(items)
    total = len(samples)
    quota = {label: max(1, int(n * len(items) / total)) for label, items in by_class.items()}
    # Hand out what rounding left over to the largest classes first.
    for label in sorted(by_class, key=lambda k: -len(by_class[k])):
        if sum(quota.values()) >= n:
            break
        if quota[label] < len(by_class[label]):
            quota[label] += 1
    picked = [s for label, items in by_class.items() for s in items[: quota[label]]]
    return sorted(picked, key=lambda s: s.path)


def calibration_batches(samples: list[Sample], spec: PreprocessSpec, batch: int = 8
                        ) -> Iterator[np.ndarray]:
    """Model inputs for the samples, `batch` at a time, exactly as the artifact expects them."""
    for start in range(0, len(samples), batch):
        yield preprocess_batch([s.path for s in samples[start:start + batch]], spec)


def calibration_fingerprint(samples: list[Sample], spec: PreprocessSpec) -> str:
    """sha256 over the spec fingerprint and the image paths: what the calibration depended on."""
    digest = hashlib.sha256(spec.fingerprint().encode())
    for sample in samples:
        digest.update(b"\0" + sample.path.encode())
    return digest.hexdigest()


def class_counts(samples: list[Sample]) -> dict[str, int]:
    counts: dict[str, int] = defaultdict(int)
    for sample in samples:
        counts[sample.label] += 1
    return dict(sorted(counts.items()))
