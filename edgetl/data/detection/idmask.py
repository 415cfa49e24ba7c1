"""Instance masks as images: `images/` beside `masks/`, matched by relative path and stem.

Two forms per image:
- `masks/<stem>.png` (or .tif): 8- or 16-bit, 0 = background, each other value one instance
  (the form of the nuclei development set). Instances cannot overlap in this form. A map that
  uses its format's largest id (255 in 8 bits) is full, and ids past it have wrapped around
  onto others: its image is left out, with a line saying to save 16-bit PNGs.
- `masks/<stem>/*.png`: one binary mask per instance (the Data Science Bowl 2018 layout), whose
  instances must not overlap either: where two do, the later file (in name order) keeps the
  pixels, the overlap is listed, and an instance left empty is dropped. These masks are stored
  as RLE, since they no longer equal their files.
Classes: `masks/<stem>.json` ({"<id or mask file stem>": "class"}) for one image, or
`masks/instances.json` ({"<stem>": {...}}) for all; without either, every instance is the only
class of `classes.txt`, else `object`. A classes.txt fixes the order; otherwise names are sorted.
Boxes are the instances' pixel extents. `train/ val/ test/` folders with images/ and masks/
give splits. An image with an instance that cannot be used (no class, a mask of another size, a
mask file that does not decode, one left empty by overlaps) is left out and listed.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from edgetl.data.checks import describe_error
from edgetl.data.detection import problems as P
from edgetl.data.detection.build import ClassNames, Record, assemble
from edgetl.data.detection.folders import read_names, split_folders, walk_files
from edgetl.data.detection.geometry import Box, Size
from edgetl.data.detection.masks import id_image_rles, read_id_png
from edgetl.data.samples import DataSet
from edgetl.data.targets import InstanceMask, InstanceTarget
from edgetl.errors import DataError

DEFAULT_CLASS = "object"
MASK_SUFFIXES = (".png", ".tif", ".tiff")
FOLDER_MAPPING = "instances.json"


def mask_layout(root: Path) -> list[tuple[Path, Path, str | None]]:
    """(images folder, masks folder, split) pairs; empty when this is not the layout."""
    if (root / "images").is_dir() and (root / "masks").is_dir():
        return [(root / "images", root / "masks", None)]
    return [(f / "images", f / "masks", split) for f, split in split_folders(root)
            if (f / "images").is_dir() and (f / "masks").is_dir()]


def _extents(ids: np.ndarray) -> dict[int, Box]:
    """Pixel extents (x1, y1, x2, y2) of every non-zero value of an id image."""
    from scipy import ndimage

    boxes: dict[int, Box] = {}
    for value, found in enumerate(ndimage.find_objects(ids), start=1):
        if found is not None:
            rows, cols = found
            boxes[value] = (float(cols.start), float(rows.start), float(cols.stop),
                            float(rows.stop))
    return boxes


def _id_png(path: Path, size: Size, problems: P.Problems
            ) -> list[tuple[str, Box, InstanceMask]] | None:
    try:
        ids = read_id_png(str(path))
    except ValueError as exc:
        problems.add(str(path), P.BAD_ANNOTATION, str(exc))
        return None
    except Exception as exc:  # PIL's decoders raise many types; all mean unreadable
        problems.add(str(path), describe_error(exc))
        return None
    if ids.shape != size:
        problems.add(str(path), P.MASK_SIZE, f"mask {ids.shape[1]}x{ids.shape[0]}, image "
                                             f"{size[1]}x{size[0]}: image not used")
        return None
    if ids.min() < 0:
        problems.add(str(path), P.BAD_ANNOTATION, "negative instance ids")
        return None
    top = _largest_id(path)
    if top is not None and int(ids.max()) >= top:
        problems.add(str(path), P.ID_MAP_FULL,
                     f"it uses id {top}, the largest a {top.bit_length()}-bit PNG holds: ids "
                     f"past {top} wrap around to 0, 1, ... and merge instances; save the ids "
                     "as a 16-bit PNG")
        return None
    return [(str(v), box, InstanceMask(id_png=str(path), id_value=v))
            for v, box in _extents(ids).items()]


def _largest_id(path: Path) -> int | None:
    """The largest id the PNG's pixel format holds (255 for 8-bit, 65535 for 16-bit)."""
    with Image.open(path) as img:
        mode = img.mode
    return 255 if mode in ("L", "P") else 65535 if mode.startswith("I;16") else None


def _binary_folder(folder: Path, size: Size, problems: P.Problems
                   ) -> list[tuple[str, Box, InstanceMask]] | None:
    files = walk_files(folder)
    canvas = np.zeros(size, dtype=np.int32)
    names: list[str] = []
    for path in files:
        try:
            with Image.open(path) as img:
                pixels = np.asarray(img.convert("L") if img.mode not in ("L", "1") else img) > 0
        except Exception as exc:  # any decoder failure: this instance is unusable
            problems.add(str(path), P.MASK_DROPPED, describe_error(exc))
            continue
        if pixels.shape != size:
            problems.add(str(path), P.MASK_SIZE, f"mask {pixels.shape[1]}x{pixels.shape[0]}, "
                                                 f"image {size[1]}x{size[0]}: instance dropped")
            continue
        taken = canvas[pixels]
        if taken.any():
            others = sorted({names[i - 1] for i in np.unique(taken[taken > 0])})
            problems.add(str(path), P.MASK_OVERLAP,
                         f"shares {int((taken > 0).sum())} pixel(s) with {', '.join(others)}: "
                         "the later file keeps them")
        names.append(path.stem)
        canvas[pixels] = len(names)
    found = []
    boxes, rles = _extents(canvas), id_image_rles(canvas)
    for k, name in enumerate(names, start=1):
        if k not in boxes:
            problems.add(str(folder / name), P.MASK_DROPPED, "no pixels left after overlaps")
            continue
        found.append((name, boxes[k], InstanceMask(rle=rles[k])))
    return found


def _mappings(masks: Path) -> dict[str, dict[str, str]]:
    path = masks / FOLDER_MAPPING
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        return {str(k): {str(i): str(c) for i, c in v.items()} for k, v in data.items()}
    except (ValueError, AttributeError) as exc:
        raise DataError(f"{path} must map image stems to {{instance id: class}}: {exc}") \
            from exc


def _image_mapping(path: Path, problems: P.Problems) -> dict[str, str] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8-sig"))
        return {str(i): str(c) for i, c in data.items()}
    except (ValueError, AttributeError) as exc:
        problems.add(str(path), P.BAD_ANNOTATION, f"not an {{instance id: class}} object: {exc}")
        return None


def read_id_masks(root: Path, task: str, problems: P.Problems) -> DataSet:
    """images/ + masks/ as an instance `DataSet` (origin `masks:<root>`)."""
    layout = mask_layout(root)
    if not layout:
        raise DataError(f"{root} has no images/ and masks/ folders (at the root or per split)")
    names_file = root / "classes.txt"
    fixed = read_names(names_file) if names_file.is_file() else None
    classes = ClassNames(fixed, str(names_file))
    default = fixed[0] if fixed and len(fixed) == 1 else (None if fixed else DEFAULT_CLASS)
    records: list[Record] = []
    for images, masks, split in layout:
        shared = _mappings(masks)
        for image in walk_files(images):
            rel = image.relative_to(images).with_suffix("")
            size = problems.image_size(str(image))
            if size is None:
                continue
            mark = problems.mark()
            candidates = [masks / f"{rel}{s}" for s in MASK_SUFFIXES]
            mask_file = next((c for c in candidates if c.is_file()), None)
            if mask_file is not None:
                found = _id_png(mask_file, size, problems)
            elif (masks / rel).is_dir():
                found = _binary_folder(masks / rel, size, problems)
            else:
                problems.add(str(image), P.NO_ANNOTATION, f"no mask {rel}.png in {masks}")
                continue
            if found is None:
                problems.lost_objects(mark, str(image))
                continue
            own = masks / f"{rel}.json"
            mapping = _image_mapping(own, problems) if own.is_file() else shared.get(str(rel))
            boxes, labels, inst = [], [], []
            for key, box, mask in found:
                name = mapping.get(key) if mapping is not None else default
                if name is None:
                    problems.add(str(image), P.UNKNOWN_CLASS,
                                 f"instance {key} has no class (no mapping entry, and "
                                 f"classes.txt names {len(fixed or [])} classes)")
                    continue
                if not classes.accept(name):
                    problems.add(str(image), P.UNKNOWN_CLASS, classes.unknown(name))
                    continue
                boxes.append(box)
                labels.append(name)
                inst.append(mask)
            if problems.lost_objects(mark, str(image)):
                continue
            target = InstanceTarget(boxes=tuple(boxes), labels=tuple(labels),
                                    masks=tuple(inst), image_size=size)
            records.append(Record(path=str(image), target=target, split=split))
    return assemble(name=root.name, origin=f"masks:{root}", task=task, classes=classes.order(),
                    records=records, problems=problems,
                    description=f"instance masks {root} (images/ + masks/)")
