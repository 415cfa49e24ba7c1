"""Which images an evaluation scores: the run's own split, or a data set the user names."""

from __future__ import annotations

from pathlib import Path

from edgetl.data.samples import Sample
from edgetl.errors import ArtifactError, DataError, UsageError
from edgetl.runfolder import SPLIT_NAMES, RunFolder


def evaluation_samples(run: Path | None, split: str, data: str | None,
                       task: str = "classification") -> tuple[list[Sample], str]:
    """(samples, where they came from). `data` wins (its `split` when it has splits, else all
    of it, images checked); otherwise the run's stored split (checked when the run began)."""
    if split not in SPLIT_NAMES:
        raise UsageError(f"unknown split {split!r}", "use train, val or test")
    if data is None:
        if run is None or not RunFolder(run).exists():
            raise ArtifactError(f"cannot find the run {run} to read its {split} split",
                                "pass --data DATA, or keep the run folder where it was")
        folder = RunFolder(run)
        return folder.samples(split), str(folder.split_path())
    from edgetl.data.sources import load_data

    dataset = load_data(data) if task == "classification" else load_data(data, task=task)
    samples = dataset.by_split(split) if dataset.has_splits else dataset.samples
    if not samples:
        raise DataError(f"split '{split}' of {data} holds no images",
                        "use --split train, val or test")
    return samples, data
