"""Which images an evaluation scores: the run's own split, or a data set the user names."""

from __future__ import annotations

from pathlib import Path

from edgetl.data.samples import Sample
from edgetl.errors import ArtifactError, DataError, EdgetlError, UsageError
from edgetl.runfolder import SPLIT_NAMES, RunFolder
from edgetl.spec import DEFAULT_TASK

ALL = "all"  # every image of the data, whatever its split: reported as split "all"


def _run_words(run: Path | None) -> str:
    """The run to name in a hint: the model's own when its split file is still there."""
    try:
        if run is not None and RunFolder(run).split_path().is_file():
            return str(run)
    except (EdgetlError, OSError):
        pass
    return "RUN"


def evaluation_samples(run: Path | None, split: str, data: str | None,
                       task: str = DEFAULT_TASK) -> tuple[list[Sample], str]:
    """(samples, where they came from). `data` wins (its `split`; all of it for `all`);
    otherwise the run's stored split (checked when the run began).

    Data without train/val/test splits has no test split: scoring all of it as "test" would
    count the images a model was trained on as test images, so that is refused unless the
    caller asks for `all`.
    """
    if split not in (*SPLIT_NAMES, ALL):
        raise UsageError(f"unknown split {split!r}", "use train, val, test or all")
    if data is None:
        if run is None or not RunFolder(run).exists():
            raise ArtifactError(f"cannot find the run {run} to read its {split} split",
                                "pass --data DATA, or keep the run folder where it was")
        folder = RunFolder(run)
        samples = folder.dataset().samples if split == ALL else folder.samples(split)
        return samples, str(folder.split_path())
    from edgetl.data.sources import load_data

    dataset = load_data(data, task=task)
    if split == ALL:
        samples = dataset.samples
    elif dataset.has_splits:
        samples = dataset.by_split(split)
    else:
        raise DataError(
            f"{data} has no train/val/test split, so it has no '{split}' split: scoring all "
            f"{len(dataset.samples)} image(s) as '{split}' would count any a model was trained "
            "on",
            f"pass --split-from {_run_words(run)} to score the {split} split of the run the "
            "model came from (its split file), or --split all to score every image (reported "
            "as 'all')")
    if not samples:
        raise DataError(f"split '{split}' of {data} holds no images",
                        "use --split train, val or test")
    return samples, data
