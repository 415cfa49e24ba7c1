"""The split a run trains on, saved once in its folder and re-read by every later command.

Each task keeps its split in a format its own reader opens, so the file is also a plain data set
a person can inspect: detection a box CSV with group/split/width/height columns and
`split.classes.txt` for the class order (`split.csv`), instance segmentation a COCO file whose
images carry `split` and `group` (`split.json`); a classifier's is its image list
(`write_image_list`, its task's `split_writer`).
`load_detection(path, task)` (or `load_data(path, task=...)`) reads them back.
"""

from __future__ import annotations

from pathlib import Path

from edgetl import tasks
from edgetl.data.samples import DataSet
from edgetl.data.splitnames import split_file_name
from edgetl.errors import UsageError


def write_split_file(ds: DataSet, path: str | Path) -> Path:
    """Write `ds` (objects with boxes, or with masks; with its splits) where its task's reader
    reads it back (atomic writes)."""
    path = Path(path)
    want = Path(split_file_name(ds.task)).suffix
    task = tasks.get(ds.task)
    if task.dense and path.suffix.lower() != want:
        raise UsageError(f"a {ds.task} split is written as {want[1:].upper()}, not to {path}",
                         hint=f"use a {want} file name")
    if task.object_masks:
        from edgetl.data.detection.coco_write import write_coco

        return write_coco(ds, path)
    from edgetl.data.detection.boxcsv import write_box_csv

    return write_box_csv(ds, path)
