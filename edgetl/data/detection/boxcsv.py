"""Box CSV: `path,xmin,ymin,xmax,ymax,label`, one row per box, read and written.

Relative paths resolve against the CSV's folder. A row whose box fields are all empty is an
image without boxes. An image with a row that cannot be used (not four numbers, no label, an
unknown class, no area in the image) is left out and listed. Optional columns: `difficult`
(1: a crowd box), `group`, `split` (train/val/test or empty), `width,height` (checked against
the image). Class order comes from
`<csv stem>.classes.txt` beside the file, else `classes.txt` in its folder, else sorted names.

`write_box_csv` writes a detection data set in this format with absolute paths and the class
order beside it, so a run's split file reads back to the same samples and classes.
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from edgetl.data.csvrows import csv_rows
from edgetl.data.detection import problems as P
from edgetl.data.detection.build import ClassNames, Record, assemble
from edgetl.data.detection.folders import abspath, read_names
from edgetl.data.detection.geometry import Box
from edgetl.data.samples import SPLITS, DataSet, is_image_name
from edgetl.data.targets import BoxTarget
from edgetl.errors import DataError
from edgetl.io import atomic_write_text

BOX_COLUMNS = ("path", "xmin", "ymin", "xmax", "ymax", "label")
WRITTEN_COLUMNS = (*BOX_COLUMNS, "difficult", "group", "split", "width", "height")
_COORDS = BOX_COLUMNS[1:5]


def classes_file(csv_path: Path) -> Path | None:
    """The class-order file of a box CSV, if it has one."""
    for candidate in (csv_path.with_name(f"{csv_path.stem}.classes.txt"),
                      csv_path.with_name("classes.txt")):
        if candidate.is_file():
            return candidate
    return None


def has_box_columns(csv_path: Path) -> bool:
    """True when the CSV's header holds the box columns (what sniffing asks)."""
    try:
        with open(csv_path, encoding="utf-8-sig", newline="") as handle:
            header = next(csv.reader(handle), [])
    except (OSError, UnicodeDecodeError):
        return False
    return set(BOX_COLUMNS) <= {h.strip().lower() for h in header}


@dataclass
class _Image:
    path: str
    group: str | None
    split: str | None
    size: tuple[int, int] | None
    line: int
    boxes: list[tuple[Box, str, bool, int]] = field(default_factory=list)  # box, label, crowd, line
    bad: list[tuple[str, str]] = field(default_factory=list)  # (where, detail) of unusable rows


def _read_rows(csv_path: Path) -> list[dict[str, str]]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read box CSV {csv_path}: {exc}") from exc
    header, rows = csv_rows(text, f"box CSV {csv_path}")
    names = [n.lower() for n in header]
    rows = [{k.lower(): v for k, v in r.items()} for r in rows]
    missing = [c for c in BOX_COLUMNS if c not in names]
    if missing:
        raise DataError(f"box CSV {csv_path} lacks column(s) {missing}; header is "
                        f"{names}", hint="the first line must be "
                        "path,xmin,ymin,xmax,ymax,label[,difficult][,group][,split]")
    if not rows:
        raise DataError(f"box CSV {csv_path} has no rows")
    return rows


def _value(row: dict[str, str], key: str) -> str:
    return (row.get(key) or "").strip()


def _stated_size(row: dict[str, str]) -> tuple[int, int] | None:
    try:
        width, height = int(float(_value(row, "width"))), int(float(_value(row, "height")))
    except ValueError:
        return None
    return (height, width) if width > 0 and height > 0 else None


def _collect(csv_path: Path, rows: list[dict[str, str]], group_column: str,
             problems: P.Problems) -> list[_Image]:
    """Rows gathered per image (first-seen order), each box parsed; bad rows listed."""
    images: dict[str, _Image] = {}
    for line, row in enumerate(rows, start=2):
        where = f"{csv_path} line {line}"
        raw = _value(row, "path")
        if not raw:
            problems.add(where, P.BAD_ANNOTATION, "empty path")
            continue
        path = os.path.normpath(os.path.join(csv_path.parent, os.path.expanduser(raw)))
        split = _value(row, "split").lower() or None
        if split is not None and split not in SPLITS:
            raise DataError(f"{where}: split {split!r} is not one of {', '.join(SPLITS)} "
                            "(or empty)")
        group = _value(row, group_column) or None
        image = images.setdefault(path, _Image(path, group, split, _stated_size(row), line))
        if (image.group, image.split) != (group, split):
            raise DataError(f"{where}: {raw} has group/split {group!r}/{split!r} here and "
                            f"{image.group!r}/{image.split!r} on line {image.line}",
                            hint="give every row of an image the same group and split")
        coords = [_value(row, c) for c in _COORDS]
        label = _value(row, "label")
        if not any(coords):
            continue
        try:
            box = tuple(float(v) for v in coords)
        except ValueError:
            image.bad.append((where, f"box {coords} is not four numbers"))
            continue
        if not label or not all(math.isfinite(v) for v in box):
            image.bad.append((where, "box without a label" if not label
                              else f"box {coords} is not finite"))
            continue
        crowd = _value(row, "difficult").lower() in ("1", "true", "yes")
        image.boxes.append((box, label, crowd, line))  # type: ignore[arg-type]
    return list(images.values())


def read_box_csv(csv_path: Path, task: str, problems: P.Problems,
                 group_column: str = "group") -> DataSet:
    """A box CSV as a detection `DataSet`; its origin is `csv:<absolute path>`."""
    csv_path = abspath(csv_path)
    rows = _read_rows(csv_path)
    if group_column != "group" and group_column not in rows[0]:
        raise DataError(f"box CSV {csv_path} has no column {group_column!r}")
    names_file = classes_file(csv_path)
    classes = ClassNames(read_names(names_file), str(names_file)) if names_file else ClassNames()
    records: list[Record] = []
    for image in _collect(csv_path, rows, group_column, problems):
        mark = problems.mark()
        for where, detail in image.bad:
            problems.add(where, P.BAD_ANNOTATION, detail)
        if not os.path.isfile(image.path):
            problems.add(image.path, P.IMAGE_MISSING, f"{csv_path.name} line {image.line}")
            continue
        if not is_image_name(image.path):
            problems.add(image.path, P.BAD_ANNOTATION, "not an image extension")
            continue
        size = problems.image_size(image.path)
        if size is None:
            continue
        if image.size is not None and image.size != size:
            problems.add(image.path, P.IMAGE_SIZE, f"the CSV says {image.size[1]}x"
                         f"{image.size[0]}, the image is {size[1]}x{size[0]}")
        boxes, labels, crowd = [], [], []
        for raw, label, is_crowd, line in image.boxes:
            where = f"{csv_path} line {line}"
            if not classes.accept(label):
                problems.add(where, P.UNKNOWN_CLASS, classes.unknown(label))
                continue
            box = problems.box(raw, size, where, label)
            if box is not None:
                boxes.append(box)
                labels.append(label)
                crowd.append(is_crowd)
        if problems.lost_objects(mark, image.path):
            continue
        target = BoxTarget(boxes=tuple(boxes), labels=tuple(labels), crowd=tuple(crowd),
                           image_size=size)
        records.append(Record(path=image.path, target=target, group=image.group,
                              split=image.split))
    return assemble(name=csv_path.stem, origin=f"csv:{csv_path}", task=task,
                    classes=classes.order(), records=records, problems=problems,
                    description=f"box CSV {csv_path}")


def _num(value: float) -> str:
    """Shortest text that reads back to the same float (integers without '.0')."""
    return str(int(value)) if value.is_integer() and abs(value) < 2**53 else repr(value)


def box_csv_text(ds: DataSet) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(WRITTEN_COLUMNS)
    for s in ds.samples:
        target = s.target
        size = target.image_size if target is not None and target.image_size else None
        tail = [s.group or "", s.split or "", *((str(size[1]), str(size[0])) if size
                                                 else ("", ""))]
        boxes = list(zip(target.boxes, target.labels, target.crowd, strict=True)) \
            if target is not None else []
        if not boxes:
            writer.writerow([s.path, "", "", "", "", "", "", *tail])
        for box, label, crowd in boxes:
            writer.writerow([s.path, *(_num(v) for v in box), label, int(crowd), *tail])
    return buffer.getvalue()


def write_box_csv(ds: DataSet, path: str | Path) -> Path:
    """Write `ds` as a box CSV plus `<stem>.classes.txt` (class order); both atomic."""
    path = Path(path)
    atomic_write_text(path.with_name(f"{path.stem}.classes.txt"), "\n".join(ds.classes) + "\n")
    return atomic_write_text(path, box_csv_text(ds))
