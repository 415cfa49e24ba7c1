"""The CSV image list (`path,label[,group][,split]`, one row per image): a source, and a split.

Relative paths resolve against the CSV's own folder, so an image list can travel with its
images.
`split` is 'train', 'val', 'test' or empty (not assigned). A row with more fields than the
header (an unquoted comma in a label) is an error naming its line. Extra columns are ignored
when reading, which lets `--group-column` pick any column as the group, and carried into a
split written from the list (`extra_columns`). Classes are sorted: a CSV defines no order.
`write_image_list` writes absolute paths so its output works from any folder.
"""

from __future__ import annotations

import csv
import io
import os
import warnings
from pathlib import Path

from edgetl.data.csvrows import csv_rows
from edgetl.data.samples import SPLITS, DataSet, DataWarning, Sample, is_image_name
from edgetl.errors import DataError
from edgetl.io import atomic_write_text

MANIFEST_COLUMNS = ("path", "label", "group", "split")


def _read_rows(csv_path: Path) -> tuple[list[str], list[dict[str, str]]]:
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read manifest {csv_path}: {exc}") from exc
    return csv_rows(text, f"manifest {csv_path}")


def read_image_list(csv_path: str | Path, *, group_column: str = "group") -> DataSet:
    """Read a CSV manifest into a `DataSet` whose origin is the absolute CSV path."""
    csv_path = Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(csv_path)))))
    header, rows = _read_rows(csv_path)
    missing = [c for c in ("path", "label") if c not in header]
    if missing:
        raise DataError(
            f"manifest {csv_path} lacks column(s) {missing}; header is {header}",
            hint="the first line must be path,label[,group][,split]",
        )
    if group_column != "group" and group_column not in header:
        raise DataError(f"manifest {csv_path} has no column {group_column!r}; header is {header}")
    base = csv_path.parent
    samples: list[Sample] = []
    skipped: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    labels: set[str] = set()
    for line, row in enumerate(rows, start=2):
        raw_path = (row.get("path") or "").strip()
        label = (row.get("label") or "").strip()
        if not raw_path or not label:
            raise DataError(f"manifest {csv_path} line {line}: empty path or label")
        split = (row.get("split") or "").strip().lower() or None
        if split is not None and split not in SPLITS:
            raise DataError(f"manifest {csv_path} line {line}: split {split!r} is not one of "
                            f"{', '.join(SPLITS)} (or empty)")
        group = (row.get(group_column) or "").strip() or None
        path = os.path.normpath(os.path.join(base, os.path.expanduser(raw_path)))
        labels.add(label)
        if path in seen:
            if seen[path] != label:
                raise DataError(f"manifest {csv_path} line {line}: {raw_path} is listed with "
                                f"labels {seen[path]!r} and {label!r}", hint="keep one row")
            skipped.append((path, "listed twice in the manifest"))
            continue
        seen[path] = label
        if not os.path.isfile(path):
            skipped.append((path, "file not found"))
            continue
        if not is_image_name(path):
            skipped.append((path, "not an image extension (jpg jpeg png bmp tif tiff webp)"))
            continue
        samples.append(Sample(path=path, label=label, group=group, split=split))
    if not rows:
        raise DataError(f"manifest {csv_path} has no rows")
    if skipped:
        warnings.warn(f"{csv_path}: {len(skipped)} row(s) skipped, e.g. {skipped[0][0]}: "
                      f"{skipped[0][1]}", DataWarning, stacklevel=3)
    return DataSet(
        name=csv_path.stem,
        classes=sorted(labels),
        samples=samples,
        origin=str(csv_path),
        description=f"CSV manifest {csv_path}",
        skipped=skipped,
    )


Extras = tuple[list[str], dict[str, dict[str, str]]]


def extra_columns(csv_path: str | Path) -> Extras:
    """A manifest's columns beyond path,label,group,split, and their values by absolute path
    (as `read_image_list` resolves it), so a split written from it keeps them."""
    csv_path = Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(csv_path)))))
    header, rows = _read_rows(csv_path)
    names = [c for c in header if c and c not in MANIFEST_COLUMNS]
    values: dict[str, dict[str, str]] = {}
    for row in rows:
        raw = (row.get("path") or "").strip()
        path = os.path.normpath(os.path.join(csv_path.parent, os.path.expanduser(raw)))
        values.setdefault(path, {c: row.get(c) or "" for c in names})
    return names, values


def image_list_text(ds: DataSet, extras: Extras | None = None) -> str:
    """The CSV text of a data set: path,label,group,split with absolute paths (then `extras`)."""
    names, values = extras or ([], {})
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*MANIFEST_COLUMNS, *names])
    for s in ds.samples:
        more = values.get(s.path, {})
        writer.writerow([s.path, s.label, s.group or "", s.split or "",
                         *[more.get(c, "") for c in names]])
    return buffer.getvalue()


def write_image_list(ds: DataSet, path: str | Path, extras: Extras | None = None) -> Path:
    """Write `ds` as a manifest that `load_data` reads back to the same samples (atomic)."""
    return atomic_write_text(path, image_list_text(ds, extras))
