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

from edgetl import tasks
from edgetl.data.samples import DataSet
from edgetl.data.sources import load_data
from edgetl.data.splitnames import SPLIT_FILE_NAMES, split_file_name, split_file_names
from edgetl.spec import TaskRecord

__all__ = ["SPLIT_FILE_NAMES", "read_split", "split_file_name", "split_file_names", "write_split"]


def write_split(data: DataSet, path: str | Path) -> Path:
    """Write `data` (with its splits) where a run keeps it (atomically)."""
    writer = tasks.get(data.task).load("split_writer")
    return writer(data, path)  # type: ignore[no-any-return]


def read_split(path: str | Path, record: TaskRecord) -> DataSet:
    """The run's data as it was split; classes in the task record's order."""
    data = load_data(str(path), check_images=False, task=record.task)
    return data.replace(classes=list(record.names))
