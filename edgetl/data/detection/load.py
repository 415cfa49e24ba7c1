"""`load_detection`: a DATA string to a validated detection or instance-segmentation `DataSet`.

DATA is a built-in name (`neon-trees`, `neon-trees:<tile>`), a path with a format prefix
(`voc:`, `coco:`, `yolo:`, `csv:`, `via:`, `masks:`), or a path whose format is sniffed. Every
reader lists what it could not use; undecodable images (full decode, `checks.py`) join that
list, one DataWarning summarises it, and a source with nothing usable left is a DataError.
The origin recorded in the DataSet carries the prefix, so a run re-opens the same reader.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Callable
from pathlib import Path

from edgetl.data.checks import find_unreadable
from edgetl.data.detection import problems as P
from edgetl.data.detection.boxcsv import read_box_csv
from edgetl.data.detection.build import to_boxes
from edgetl.data.detection.coco import read_coco
from edgetl.data.detection.idmask import read_id_masks
from edgetl.data.detection.neon import NEON_NAME, load_neon
from edgetl.data.detection.sniff import FORMAT_NAMES, sniff
from edgetl.data.detection.via import read_via
from edgetl.data.detection.voc import read_voc
from edgetl.data.detection.which import dense_tasks, has_masks, reads_objects, task_for
from edgetl.data.detection.yolo import read_yolo
from edgetl.data.samples import DataSet
from edgetl.errors import DataError

BOXES_ONLY = frozenset({"voc", "csv"})
MASKS_ONLY = frozenset({"via", "masks"})  # read as instances; detection takes their extents
_PREFIX = re.compile(r"^(voc|coco|yolo|csv|via|masks):(.+)$", re.IGNORECASE)
_PREFIX_LIST = ", ".join(f"{k}: ({v})" for k, v in FORMAT_NAMES.items())

Reader = Callable[[Path, str, P.Problems], DataSet]
READERS: dict[str, Reader] = {"voc": read_voc, "coco": read_coco, "yolo": read_yolo,
                              "via": read_via, "masks": read_id_masks}


def split_prefix(text: str) -> tuple[str | None, str]:
    """('coco', 'path') for 'coco:path'; (None, text) without a known prefix."""
    match = _PREFIX.match(text)
    return (match.group(1).lower(), match.group(2)) if match else (None, text)


def _read(fmt: str, path: Path, task: str, problems: P.Problems, group_column: str) -> DataSet:
    if fmt in BOXES_ONLY and has_masks(task):
        raise DataError(f"{path} is {FORMAT_NAMES[fmt]} with boxes only; instance segmentation "
                        "needs masks", hint="COCO polygons/RLE, VIA polygons, YOLO segments or "
                        f"instance-mask PNGs; or use --task {task_for(masks=False)}")
    if fmt == "csv":
        if path.is_dir():
            raise DataError(f"csv: needs a .csv file, not the folder {path}")
        return read_box_csv(path, task, problems, group_column)
    if group_column != "group":
        raise DataError(f"--group-column applies to CSV files only, not to {path}")
    if fmt in MASKS_ONLY and not has_masks(task):
        ds = READERS[fmt](path, task_for(masks=True), problems)
        return ds.replace(task=task, samples=[
            dataclasses.replace(s, target=to_boxes(s.target)) for s in ds.samples])
    return READERS[fmt](path, task, problems)


def _drop_unreadable(ds: DataSet, problems: P.Problems) -> DataSet:
    bad = find_unreadable(s.path for s in ds.samples)
    if not bad:
        return ds
    problems.extend(sorted(bad.items()))
    return ds.replace(samples=[s for s in ds.samples if s.path not in bad])


def validate(ds: DataSet, problems: P.Problems, source: str) -> None:
    """Something usable is left: images, classes, and at least one annotated object."""
    what = "instances" if has_masks(ds.task) else "boxes"
    listed = f" ({len(problems)} problem(s): {problems.summary()}; first: " \
        f"{problems.items[0][0]}: {problems.items[0][1]})" if len(problems) else ""
    if not ds.samples:
        raise DataError(f"{source}: no usable image{listed}",
                        hint="fix the annotations or the paths they name")
    if not ds.classes:
        raise DataError(f"{source}: no class found{listed}")
    if not any(s.target is not None and s.target.boxes for s in ds.samples):
        raise DataError(f"{source}: {len(ds.samples)} image(s) but no {what}{listed}")


def load_detection(source: str, task: str | None = None, *, check_images: bool = True,
                   group_column: str = "group") -> DataSet:
    """Open a detection/instance source (see the module docstring) and validate it.

    With `check_images`, every user image is fully decoded once and failures are listed like
    annotation problems; the built-in set is not decoded (its tiles are written here).
    """
    task = task_for(masks=False) if task is None else task  # None: boxes alone
    if not reads_objects(task):
        raise DataError(f"task {task!r} is not one of {', '.join(dense_tasks())}")
    text = str(source).strip()
    if not text:
        raise DataError("DATA is empty; give a folder or file with annotations, prefixed with "
                        f"one of {_PREFIX_LIST} when its format is not obvious, or {NEON_NAME}")
    if text.lower().split(":", 1)[0] == NEON_NAME:
        return load_neon(text, task)
    fmt, rest = split_prefix(text)
    path = Path(os.path.normpath(os.path.abspath(os.path.expanduser(rest))))
    if not path.exists():
        raise DataError(f"no such folder or file: {rest}")
    if fmt is None:
        found = sniff(path)
        if found is None:
            raise DataError(f"cannot tell the annotation format of {path}",
                            hint=f"prefix it with one of {_PREFIX_LIST}")
        fmt, path = found.fmt, found.path
    problems = P.Problems()
    ds = _read(fmt, path, task, problems, group_column)
    if check_images:
        ds = _drop_unreadable(ds, problems)
    ds = ds.replace(skipped=list(problems.items))
    problems.warn(ds.origin)
    validate(ds, problems, text)
    return ds
