"""COCO JSON polygons (or RLE) rasterised once into index-mask PNGs, so samples are files.

Classes: `background` (every pixel no annotation covers) is class 0, then the categories in
increasing id order; a category named `background` is merged into class 0. Each annotation's
polygons or RLE (pycocotools) paint its class; crowd annotations paint their class too (a
semantic mask has no instances). A pixel covered by annotations of **different** classes gets
the ignore index (torchvision's segmentation reference ignores every overlap; overlaps within
one class are not ambiguous, so they keep the class).

Masks are written to `<cache>/semantic-masks/<json stem>-<key>/<image id>.png`, one atomic write
each, where the key hashes the JSON's bytes, the ignore index and `RASTER_VERSION`: a changed
JSON gets new masks and an existing mask is never rewritten. The cache folder is `cache_dir`,
else `$EDGETL_CACHE_DIR`, else `~/.cache/edgetl`. Image files resolve against the JSON's folder,
then its `images/` subfolder, then a sibling `images/` folder.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from edgetl.artifact.orientation import upright_size
from edgetl.data.semantic.classmap import ClassEntry
from edgetl.data.semantic.mask_pairs import Pair
from edgetl.data.semantic.problems import Problem
from edgetl.data.semantic.record import MaskRecord, index_record
from edgetl.errors import DataError
from edgetl.io import atomic_write_with

RASTER_VERSION = 1
BACKGROUND = "background"


@dataclass
class CocoRaster:
    """Pairs (image, cached mask), the record of the masks, and what could not be used."""

    json_path: str
    cache: str
    record: MaskRecord
    pairs: list[Pair] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def default_cache_root(cache_dir: str | Path | None = None) -> Path:
    root = cache_dir or os.environ.get("EDGETL_CACHE_DIR") or Path.home() / ".cache" / "edgetl"
    return Path(os.path.expanduser(str(root)))


def _load_json(path: Path) -> tuple[bytes, dict[str, Any]]:
    try:
        data = path.read_bytes()
        doc = json.loads(data)
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"cannot read COCO file {path}: {exc}") from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("images"), list) or not isinstance(
            doc.get("categories"), list):
        raise DataError(f"{path} is not a COCO file (no 'images' and 'categories' lists)")
    return data, doc


def _class_values(categories: list[dict[str, Any]], where: str) -> tuple[list[str], dict]:
    """Class names (background first) and category id -> pixel value."""
    names = [BACKGROUND]
    values: dict[Any, int] = {}
    for cat in sorted(categories, key=lambda c: c.get("id", 0)):
        name = str(cat.get("name", "")).strip()
        if not name or "id" not in cat:
            raise DataError(f"{where}: category {cat!r} lacks an id or a name")
        if name.lower() == BACKGROUND:
            values[cat["id"]] = 0
            continue
        if name in names:
            raise DataError(f"{where}: category name {name!r} is listed twice")
        values[cat["id"]] = len(names)
        names.append(name)
    return names, values


def _resolve_image(folder: Path, file_name: str) -> Path | None:
    for base in (folder, folder / "images", folder.parent / "images"):
        candidate = base / file_name
        if candidate.is_file():
            return candidate
    return None


def _segment_mask(seg: Any, height: int, width: int) -> np.ndarray:
    """HxW bool of one annotation's segmentation; ValueError when it is not usable."""
    from pycocotools import mask as mask_utils  # imported on use: the C extension is optional

    if isinstance(seg, list):
        polygons = [p for p in seg if isinstance(p, list)]
        if not polygons or len(polygons) != len(seg):
            raise ValueError("segmentation is not a list of polygons")
        short = [p for p in polygons if len(p) < 6 or len(p) % 2]
        if short:  # pycocotools would read a 4-number list as a box
            raise ValueError(f"polygon with {len(short[0])} numbers (needs 3+ x,y points)")
        rles = mask_utils.frPyObjects(polygons, height, width)
        rle = mask_utils.merge(rles)
    elif isinstance(seg, dict) and "counts" in seg and "size" in seg:
        if list(seg["size"]) != [height, width]:
            raise ValueError(f"RLE size {seg['size']} differs from the image's {height}x{width}")
        rle = mask_utils.frPyObjects(seg, height, width) if isinstance(seg["counts"], list) \
            else seg
    else:
        raise ValueError("no polygons or RLE in 'segmentation'")
    with warnings.catch_warnings():  # pycocotools 2.0.x on numpy 2: a copy= deprecation
        warnings.simplefilter("ignore", DeprecationWarning)
        return mask_utils.decode(rle).astype(bool)


def rasterise(annotations: Sequence[dict[str, Any]], values: dict[Any, int], height: int,
              width: int, ignore_index: int, dtype: np.dtype) -> np.ndarray:
    """One image's semantic mask (see the module docstring for overlaps and crowd)."""
    out = np.zeros((height, width), dtype=dtype)
    for ann in annotations:
        value = values[ann["category_id"]]
        if value == 0:
            continue
        covered = _segment_mask(ann["segmentation"], height, width)
        clash = covered & (out != 0) & (out != value)
        out[covered & (out == 0)] = value
        out[clash] = ignore_index
    return out


def _check_annotation(ann: dict[str, Any], values: dict[Any, int]) -> str | None:
    if ann.get("category_id") not in values:
        return f"annotation {ann.get('id')}: unknown category id {ann.get('category_id')!r}"
    if "segmentation" not in ann:
        return f"annotation {ann.get('id')}: no segmentation"
    return None


def _image_size(path: Path) -> tuple[int, int] | str:
    try:
        with Image.open(path) as img:
            return upright_size(img)
    except Exception as exc:  # any decoder failure
        return f"cannot open ({type(exc).__name__}: {exc})"


def load_coco_masks(json_path: str | Path, *, ignore_index: int = 255,
                    cache_dir: str | Path | None = None) -> CocoRaster:
    """Rasterise (or reuse) every image's mask; pairs, record and problems of the file."""
    json_path = Path(os.path.abspath(os.path.expanduser(str(json_path))))
    data, doc = _load_json(json_path)
    names, values = _class_values(doc["categories"], str(json_path))
    if not 0 <= ignore_index <= 65535 or ignore_index < len(names):
        raise DataError(f"ignore index {ignore_index} cannot be stored in masks of "
                        f"{len(names)} classes", hint=f"use a value from {len(names)} to 65535")
    record = index_record([ClassEntry(i, n) for i, n in enumerate(names)], ignore_index)
    dtype = np.dtype(np.uint8 if ignore_index <= 255 else np.uint16)
    key = hashlib.sha256(data + f"/v{RASTER_VERSION}/{ignore_index}".encode()).hexdigest()[:16]
    cache = default_cache_root(cache_dir) / "semantic-masks" / f"{json_path.stem}-{key}"
    raster = CocoRaster(str(json_path), str(cache), record)
    by_image: dict[Any, list[dict[str, Any]]] = {}
    images = {img.get("id"): img for img in doc["images"]}
    for ann in doc.get("annotations") or []:
        if ann.get("image_id") not in images:
            raster.problems.append(Problem(
                "annotation", f"{json_path}#annotation-{ann.get('id')}",
                f"annotation {ann.get('id')} refers to unknown image id {ann.get('image_id')!r}"))
            continue
        by_image.setdefault(ann["image_id"], []).append(ann)
    made = 0
    for image_id, entry in images.items():
        made += _one_image(raster, json_path, image_id, entry, by_image.get(image_id, []),
                           values, dtype)
    raster.notes.append(f"COCO polygons of {json_path.name} rasterised into {cache} "
                        f"({made} new, {len(raster.pairs) - made} reused); classes: "
                        f"{BACKGROUND} (uncovered pixels) + {len(names) - 1} categories; "
                        f"overlaps of different classes -> {ignore_index}")
    return raster


def _one_image(raster: CocoRaster, json_path: Path, image_id: Any, entry: dict[str, Any],
               anns: list[dict[str, Any]], values: dict[Any, int], dtype: np.dtype) -> int:
    """Add one image's pair (writing its mask when not cached) or its problem; 1 if written."""
    file_name = str(entry.get("file_name", ""))
    image = _resolve_image(json_path.parent, file_name) if file_name else None
    label = str(image or json_path.parent / file_name)
    if image is None:
        raster.problems.append(Problem("unreadable_image", label,
                                       f"image file {file_name!r} not found"))
        return 0
    size = _image_size(image)
    if isinstance(size, str):
        raster.problems.append(Problem("unreadable_image", label, size))
        return 0
    stated = (entry.get("width"), entry.get("height"))
    if stated != size:
        raster.problems.append(Problem("size_mismatch", label, f"COCO states "
                                       f"{stated[0]}x{stated[1]}, the image is "
                                       f"{size[0]}x{size[1]}"))
        return 0
    bad = [reason for ann in anns if (reason := _check_annotation(ann, values))]
    if bad:
        raster.problems.append(Problem("annotation", label, "; ".join(bad)))
        return 0
    mask_path = Path(raster.cache) / f"{image_id}.png"
    if mask_path.is_file():
        raster.pairs.append(Pair(label, str(mask_path), None))
        return 0
    try:
        mask = rasterise(anns, values, size[1], size[0], raster.record.ignore_index, dtype)
    except (ValueError, TypeError, KeyError) as exc:  # malformed segmentation data
        raster.problems.append(Problem("annotation", label, f"{type(exc).__name__}: {exc}"))
        return 0
    atomic_write_with(mask_path, lambda tmp: Image.fromarray(mask).save(tmp, format="PNG"))
    raster.pairs.append(Pair(label, str(mask_path), None))
    return 1
