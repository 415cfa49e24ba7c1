"""The file a run keeps its split in, per task: written once, read back by every later command.

Classification keeps the CSV manifest (`path,label,group,split`). Each dense task stores its
own annotation format with `group` and `split` columns, readable by that task's sources, so the
split file is also a data set a user can pass as `--data`. Reading it back never re-decodes the
images (they were checked when the run began) and takes the class order from the task record.
"""

from __future__ import annotations

from pathlib import Path

from edgetl.data.samples import DataSet
from edgetl.spec import TaskRecord

SPLIT_FILE_NAMES: dict[str, str] = {
    "classification": "split.csv",
    "detection": "split.csv",
    "semantic": "split.csv",
    "instance": "split.json",
}


def split_file_name(task: str) -> str:
    return SPLIT_FILE_NAMES.get(task, "split.csv")


def write_split(data: DataSet, path: str | Path) -> Path:
    """Write `data` (with its splits) where a run keeps it (atomically)."""
    if data.task == "classification":
        from edgetl.data.manifest import write_manifest

        return write_manifest(data, path)
    from edgetl.data.sources import write_split_file

    return write_split_file(data, path)


def read_split(path: str | Path, record: TaskRecord) -> DataSet:
    """The run's data as it was split; classes in the task record's order."""
    from edgetl.data.sources import load_data

    if record.task == "classification":
        data = load_data(str(path), check_images=False)
    else:
        data = load_data(str(path), check_images=False, task=record.task)
    return data.replace(classes=list(record.names))
