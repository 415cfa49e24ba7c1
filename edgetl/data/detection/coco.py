"""COCO JSON: images, categories and annotations (boxes, polygons, RLE), read and written.

Sources: one COCO file (its images found below the file's folder, or below the folder holding
`annotations/`), or a folder with one COCO file per split as labelling tools export them
(`train/_annotations.coco.json`, `valid/...`, `test/...`; or `annotations/instances_train.json`
with the split in the file name). Class order is the categories sorted by id. `iscrowd` marks
crowd regions. Detection reads `bbox` (x, y, w, h); instance segmentation reads `segmentation`
(polygons or RLE) and takes each box from its mask's extents, so a box always matches its mask.
An image with no annotations is an image without objects (the format says so); an image with an
annotation that cannot be used (unknown category_id, a box or mask without area, a mask of
another size) is left out and listed, never kept with the object missing.
A category that only names the supercategory of the others and has no annotations (Roboflow
exports add one) is not a class.

The split files of instance-segmentation runs are COCO files written by `write_coco`
(`coco_write`): absolute `file_name`s, each image's `split` and `group` as extra fields, masks
kept as polygons or RLE.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl.data.detection import problems as P
from edgetl.data.detection.build import Record, assemble
from edgetl.data.detection.folders import (
    SPLIT_FOLDER_NAMES,
    ImageIndex,
    abspath,
    split_folders,
)
from edgetl.data.detection.geometry import Box, Size
from edgetl.data.detection.masks import check_polygons, polygons_box, rle_box
from edgetl.data.detection.which import has_masks
from edgetl.data.samples import SPLITS, DataSet
from edgetl.data.targets import BoxTarget, InstanceMask, InstanceTarget
from edgetl.errors import DataError

_HEAD_BYTES = 1 << 22


def looks_like_coco(path: Path) -> bool:
    """Cheap test on the start of a .json file: COCO has "images" and "annotations" keys."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(_HEAD_BYTES)
    except OSError:
        return False
    return b'"images"' in head and (b'"annotations"' in head or b'"categories"' in head)


def split_from_name(path: Path) -> str | None:
    """The split a COCO file's folder or name says (train, val/valid, test), else None."""
    folder = path.parent.name.lower()
    if folder in SPLIT_FOLDER_NAMES:
        return SPLIT_FOLDER_NAMES[folder]
    tokens = {t for t in re.split(r"[^a-z]+", path.stem.lower()) if t}
    found = {SPLIT_FOLDER_NAMES[t] for t in tokens if t in SPLIT_FOLDER_NAMES}
    return found.pop() if len(found) == 1 else None


def find_coco_files(root: Path) -> list[Path]:
    """COCO files in a folder, its `annotations/` and its split folders (and theirs)."""
    folders = [root, root / "annotations"]
    for folder, _ in split_folders(root):
        folders += [folder, folder / "annotations"]
    found = [p for f in folders if f.is_dir() for p in sorted(f.glob("*.json"))
             if not p.name.startswith(".") and looks_like_coco(p)]
    return list(dict.fromkeys(found))


def load_json(path: Path) -> Any:
    """The parsed file; ValueError with a short reason when it cannot be used."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"cannot read ({exc})") from exc
    if not text.strip():
        raise ValueError("empty file")
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc})") from exc


@dataclass
class Categories:
    """Category id -> name over every file of a source; names must agree across files."""

    names: dict[int, str] = field(default_factory=dict)
    used: set[int] = field(default_factory=set)
    supers: dict[int, str] = field(default_factory=dict)

    def add(self, raw: list[Any], where: Path) -> None:
        for entry in raw:
            if not isinstance(entry, dict) or "id" not in entry or "name" not in entry:
                raise DataError(f"{where}: a category lacks 'id' or 'name': {entry!r}")
            try:
                ident, name = int(entry["id"]), str(entry["name"]).strip()
            except (TypeError, ValueError) as exc:
                raise DataError(f"{where}: category id {entry['id']!r} is not a whole number") \
                    from exc
            if self.names.get(ident, name) != name:
                raise DataError(f"{where}: category id {ident} is {name!r} here and "
                                f"{self.names[ident]!r} in another file",
                                hint="export all splits with the same categories")
            self.names[ident] = name
            if entry.get("supercategory"):
                self.supers[ident] = str(entry["supercategory"]).strip()

    def order(self, notes: list[str]) -> tuple[list[str], dict[int, str]]:
        """Class names by id, without unused categories that only name others' supercategory."""
        parents = {s for i, s in self.supers.items() if self.names.get(i) != s}
        dropped = [i for i, n in self.names.items() if n in parents and i not in self.used]
        if dropped:
            notes.append("categor" + ("y " if len(dropped) == 1 else "ies ")
                         + ", ".join(repr(self.names[i]) for i in sorted(dropped))
                         + " only name(s) the other categories' supercategory and hold no "
                         "annotations: not classes")
        kept = {i: n for i, n in sorted(self.names.items()) if i not in dropped}
        names = list(kept.values())
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise DataError(f"two COCO categories are both named {dup!r}",
                            hint="give every category its own name")
        return names, kept


def _image_root(json_path: Path) -> Path:
    parent = json_path.parent
    return parent.parent if parent.name.lower() == "annotations" else parent


class _Resolver:
    """File names of a COCO file to image paths (absolute names as they are, else indexed)."""

    def __init__(self, json_path: Path) -> None:
        self.json_path = json_path
        self._index: ImageIndex | None = None

    def find(self, file_name: str) -> Path | None:
        if os.path.isabs(file_name):
            path = abspath(file_name)
            return path if path.is_file() else None
        if self._index is None:
            self._index = ImageIndex(_image_root(self.json_path))
        return self._index.find(file_name, self.json_path.parent)


def _xyxy(bbox: Any) -> Box | None:
    try:
        x, y, w, h = (float(v) for v in bbox)
    except (TypeError, ValueError):
        return None
    return x, y, x + w, y + h


def _instance(ann: dict, size: Size, where: str, problems: P.Problems
              ) -> tuple[Box, InstanceMask] | None:
    """The checked mask of one annotation and its extents, or None (listed) when unusable."""
    seg = ann.get("segmentation")
    if isinstance(seg, list) and seg:
        polygons, issues = check_polygons(seg, size)
        for kind, detail in issues:
            problems.add(where, kind, detail)
        if not polygons:
            problems.add(where, P.MASK_DROPPED, "no usable polygon left")
            return None
        return polygons_box(polygons), InstanceMask(polygons=polygons)
    if isinstance(seg, dict) and "counts" in seg and "size" in seg:
        try:
            stated = tuple(int(v) for v in seg["size"])
        except (TypeError, ValueError):
            problems.add(where, P.MASK_DROPPED, f"RLE size {seg['size']!r} is not [height, "
                                                "width]")
            return None
        if stated != size:
            problems.add(where, P.MASK_SIZE, f"RLE size {stated[1]}x{stated[0]}, image "
                                             f"{size[1]}x{size[0]}")
            return None
        try:
            box = rle_box(seg)
        except Exception as exc:  # pycocotools raises plain Exceptions for bad counts
            problems.add(where, P.MASK_DROPPED, f"RLE does not decode ({exc})")
            return None
        if box is None:
            problems.add(where, P.MASK_DROPPED, "empty RLE mask")
            return None
        return box, InstanceMask(rle=seg)
    problems.add(where, P.MASK_DROPPED, "no segmentation (polygons or RLE)")
    return None


@dataclass
class _Image:
    path: Path
    size: Size
    split: str | None
    group: str | None
    anns: list[dict] = field(default_factory=list)


def _images(data: dict, json_path: Path, split: str | None, seen: set[Path],
            problems: P.Problems) -> dict[Any, _Image]:
    resolver = _Resolver(json_path)
    images: dict[Any, _Image] = {}
    for entry in data.get("images") or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("id"), int | str) \
                or not entry.get("file_name"):
            problems.add(str(json_path), P.BAD_ANNOTATION, f"image entry without id or "
                                                           f"file_name: {entry!r}"[:200])
            continue
        name = str(entry["file_name"])
        path = resolver.find(name)
        if path is None:
            problems.add(str(json_path), P.IMAGE_MISSING, f"image id {entry['id']}: no unique "
                                                          f"image file {name!r}")
            continue
        if path in seen or entry["id"] in images:
            problems.add(str(path), P.BAD_ANNOTATION, f"listed twice (image id {entry['id']} "
                                                      f"in {json_path.name})")
            continue
        size = problems.image_size(str(path))
        if size is None:
            continue
        stated = (entry.get("height"), entry.get("width"))
        if all(isinstance(v, int) and v > 0 for v in stated) and stated != size:
            problems.add(str(path), P.IMAGE_SIZE,
                         f"{json_path.name} says {stated[1]}x{stated[0]}, the image is "
                         f"{size[1]}x{size[0]}; annotations checked against the image")
        own_split = entry.get("split")
        seen.add(path)
        images[entry["id"]] = _Image(
            path=path, size=size, split=own_split if own_split in SPLITS else split,
            group=str(entry["group"]) if entry.get("group") not in (None, "") else None)
    return images


def _target(image: _Image, masks_wanted: bool, classes: dict[int, str], json_path: Path,
            problems: P.Problems) -> BoxTarget | InstanceTarget:
    boxes, labels, crowd, masks = [], [], [], []
    for ann in image.anns:
        where = f"{json_path} annotation {ann.get('id', '?')}"
        try:
            category = int(ann.get("category_id"))
        except (TypeError, ValueError):
            category = None
        if category not in classes:
            problems.add(where, P.UNKNOWN_CLASS, f"category_id {ann.get('category_id')!r} is "
                                                 "not among the categories")
            continue
        name = classes[category]
        mask = None
        if masks_wanted:
            found = _instance(ann, image.size, where, problems)
            if found is None:
                continue
            raw, mask = found
        else:
            raw = _xyxy(ann.get("bbox"))
            if raw is None:  # a box from the mask's extents, checked like an instance's
                found = _instance(ann, image.size, where, problems)
                if found is None:
                    continue
                raw = found[0]
        box = problems.box(raw, image.size, where, name)
        if box is None:
            continue
        boxes.append(box)
        labels.append(name)
        crowd.append(bool(ann.get("iscrowd", 0)))
        masks.append(mask)
    if masks_wanted:
        return InstanceTarget(boxes=tuple(boxes), labels=tuple(labels), masks=tuple(masks),
                              crowd=tuple(crowd), image_size=image.size)
    return BoxTarget(boxes=tuple(boxes), labels=tuple(labels), crowd=tuple(crowd),
                     image_size=image.size)


def _parse(json_path: Path, problems: P.Problems, several: bool) -> dict | None:
    """The file's dict, or None (listed) when it is unusable and other files remain."""
    try:
        data = load_json(json_path)
        if not isinstance(data, dict) or not isinstance(data.get("images"), list):
            raise ValueError("not a COCO file (no 'images' list)")
    except ValueError as exc:
        if not several:
            raise DataError(f"COCO file {json_path}: {exc}",
                            hint="give a COCO JSON with images, annotations and categories") \
                from exc
        problems.add(str(json_path), P.BAD_ANNOTATION, str(exc))
        return None
    return data


def read_coco(source: Path, task: str, problems: P.Problems) -> DataSet:
    """A COCO file or a folder of per-split COCO files as a detection or instance `DataSet`."""
    files = [source] if source.is_file() else find_coco_files(source)
    if not files:
        raise DataError(f"no COCO JSON file in {source}, its annotations/ or split folders")
    splits = {f: (split_from_name(f) if len(files) > 1 or source.is_dir() else None)
              for f in files}
    if len(files) > 1 and None in splits.values():
        unsplit = next(f for f, s in splits.items() if s is None)
        raise DataError(f"{source} holds several COCO files and {unsplit.name} names no split "
                        "(train, val/valid, test) in its folder or file name",
                        hint=f"point at one file: coco:{unsplit}")
    categories = Categories()
    parsed: list[tuple[Path, dict]] = []
    for f in files:
        data = _parse(f, problems, several=len(files) > 1)
        if data is not None:
            categories.add(data.get("categories") or [], f)
            parsed.append((f, data))
    notes: list[str] = []
    seen: set[Path] = set()
    per_file: list[tuple[Path, dict[Any, _Image]]] = []
    for f, data in parsed:
        images = _images(data, f, splits[f], seen, problems)
        for ann in data.get("annotations") or []:
            if not isinstance(ann, dict):
                problems.add(str(f), P.BAD_ANNOTATION, f"annotation is not an object: {ann!r}")
                continue
            key = ann.get("image_id")
            image = images.get(key) if isinstance(key, int | str) else None
            if image is None:
                problems.add(f"{f} annotation {ann.get('id', '?')}", P.UNKNOWN_IMAGE,
                             f"image_id {ann.get('image_id')!r} is not a usable image of "
                             "this file")
                continue
            image.anns.append(ann)
            if isinstance(ann.get("category_id"), int):
                categories.used.add(ann["category_id"])
        per_file.append((f, images))
    classes, by_id = categories.order(notes)
    records = []
    for f, images in per_file:
        for img in images.values():
            mark = problems.mark()
            target = _target(img, has_masks(task), by_id, f, problems)
            if not problems.lost_objects(mark, str(img.path)):
                records.append(Record(path=str(img.path), target=target, group=img.group,
                                      split=img.split))
    where = source if source.is_file() else f"{source} ({len(files)} COCO files)"
    name = source.stem if source.is_file() else source.name
    return assemble(name=name, origin=f"coco:{source}", task=task, classes=classes,
                    records=records, problems=problems, description=f"COCO JSON {where}",
                    notes=notes)
