"""The file a run keeps its split in, per task: written once, read back by every later command.

Each task keeps its split in a format its own reader opens, so the split file is also a data
set a user can pass as `--data`: classification a CSV manifest (`path,label,group,split`),
detection a box CSV with group/split columns, semantic segmentation a `path,mask,group,split`
CSV with a sidecar for its pixel map, instance segmentation a COCO file whose images carry
`split` and `group`. Reading it back never re-decodes the images (they were checked when the
run began) and takes the class order from the task record.
"""

from __future__ import annotations

from pathlib import Path

from edgetl.data.samples import DataSet
from edgetl.errors import UsageError
from edgetl.spec import TaskRecord

SPLIT_FILE_NAMES: dict[str, str] = {
    "classification": "split.csv",
    "detection": "split.csv",
    "semantic": "split.csv",
    "instance": "split.json",
}

# Files a split file's writer puts beside it: the semantic pixel-map sidecar, the box CSV's
# class order.
SPLIT_SIDECAR_NAMES: tuple[str, ...] = ("split.csv.json", "split.classes.txt")


def split_file_names() -> set[str]:
    """Every name a run's split may take on disk, over all tasks (sidecars included)."""
    return {*SPLIT_FILE_NAMES.values(), *SPLIT_SIDECAR_NAMES}


def split_file_name(task: str) -> str:
    """The file name a run folder uses for the split of `task`."""
    if task not in SPLIT_FILE_NAMES:
        raise UsageError(f"no split file format for task {task!r} in this version")
    return SPLIT_FILE_NAMES[task]


def write_split(data: DataSet, path: str | Path) -> Path:
    """Write `data` (with its splits) where a run keeps it (atomically)."""
    if data.task == "semantic":
        from edgetl.data.semantic import write_split_file

        return write_split_file(data, path)  # type: ignore[arg-type]
    from edgetl.data.detection.splitfile import write_split_file

    return write_split_file(data, path)


def read_split(path: str | Path, record: TaskRecord) -> DataSet:
    """The run's data as it was split; classes in the task record's order."""
    from edgetl.data.sources import load_data

    task = None if record.task == "classification" else record.task
    data = load_data(str(path), check_images=False, task=task)
    return data.replace(classes=list(record.names))
