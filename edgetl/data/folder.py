"""Folder-tree source: one subfolder per class, optionally under train/ val/ test/.

Layouts (split folder names in any case; `validation/` and `valid/` mean `val/`):
- `ROOT/<class>/**/<image>`: no splits; the splitter assigns them.
- `ROOT/train/<class>/...` plus `val/` and `test/`: the three splits are used as given.
- `train/` and `val/` only: `val/` becomes the **test** split (many published trees call their
  held-out set "val"); the splitter later carves a validation split out of train.
- `train/` and `test/`: as given; validation is carved from train later.
Images are searched recursively inside a class folder; hidden files and folders are ignored, and
so are files without an image extension. Loose images outside a class folder are listed in
`skipped`. Decoding is checked later by `load_data`, not here.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

from edgetl.data.samples import DataSet, DataWarning, Sample, is_image_name
from edgetl.errors import DataError

SPLIT_FOLDERS = ("train", "val", "test")
# Folder names users give their splits, lower-cased: Train/, Val/, Validation/, Valid/, Test/.
SPLIT_NAMES = {"train": "train", "val": "val", "valid": "val", "validation": "val",
               "test": "test"}


def _split_folders(subdirs: set[str], root: Path) -> dict[str, str]:
    """Split -> the folder holding it, names matched case-insensitively; two folders naming
    the same split (`val/` and `Validation/`) are an error rather than a guess."""
    found: dict[str, str] = {}
    for name in sorted(subdirs):
        split = SPLIT_NAMES.get(name.lower())
        if split is None:
            continue
        if split in found:
            raise DataError(f"{root}: folders '{found[split]}' and '{name}' both name the "
                            f"{split} split", hint="merge them or rename one")
        found[split] = name
    return found


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _loose_images(folder: Path) -> list[str]:
    return sorted(
        os.path.join(folder, p.name)
        for p in folder.iterdir()
        if p.is_file() and is_image_name(p.name)
    )


def _images_under(folder: Path) -> list[str]:
    """Image files below `folder`, recursively, sorted, hidden entries skipped."""
    found: list[str] = []
    for current, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found.extend(os.path.join(current, f) for f in sorted(files) if is_image_name(f))
    return found


def _class_samples(folder: Path, split: str | None, where: str) -> tuple[list[Sample], list[str]]:
    """Samples of every class folder under `folder`; raises on an empty class folder."""
    samples: list[Sample] = []
    classes: list[str] = []
    for class_dir in _visible_dirs(folder):
        paths = _images_under(class_dir)
        if not paths:
            raise DataError(
                f"class folder '{where}{class_dir.name}' in {folder} holds no images "
                "(extensions: jpg jpeg png bmp tif tiff webp)",
                hint="add images or remove the empty folder",
            )
        classes.append(class_dir.name)
        samples.extend(Sample(path=p, label=class_dir.name, split=split) for p in paths)
    return samples, classes


def load_folder(root: str | Path) -> DataSet:
    """Read a folder tree into a `DataSet` whose origin is the absolute folder path."""
    root = Path(os.path.normpath(os.path.abspath(os.path.expanduser(str(root)))))
    subdirs = {p.name for p in _visible_dirs(root)}
    skipped = [(p, "not inside a class folder") for p in _loose_images(root)]
    notes: list[str] = []
    samples: list[Sample] = []
    classes: set[str] = set()
    folders = _split_folders(subdirs, root)
    if "train" in folders:
        present = [name for name in SPLIT_FOLDERS if name in folders]
        mapping = {name: name for name in present}
        if "val" in present and "test" not in present:
            mapping["val"] = "test"
            notes.append(f"{folders['val']}/ is used as the test split (no test/ folder); "
                         f"a validation split is carved from {folders['train']}/")
        others = sorted(subdirs - set(folders.values()))
        if others:
            warnings.warn(f"{root}: folders {others} ignored beside train/ val/ test/",
                          DataWarning, stacklevel=3)
        for split_name in present:
            folder_name = folders[split_name]
            folder = root / folder_name
            skipped += [(p, "not inside a class folder") for p in _loose_images(folder)]
            found, names = _class_samples(folder, mapping[split_name], f"{folder_name}/")
            samples.extend(found)
            classes.update(names)
    else:
        samples, names = _class_samples(root, None, "")
        classes.update(names)
    if skipped:
        warnings.warn(f"{root}: {len(skipped)} image file(s) outside any class folder ignored, "
                      f"e.g. {skipped[0][0]}", DataWarning, stacklevel=3)
    return DataSet(
        name=root.name,
        classes=sorted(classes),
        samples=samples,
        origin=str(root),
        description=f"folder tree {root}",
        skipped=skipped,
        notes=notes,
    )
