"""`load_semantic`: a mask folder, a COCO JSON or a split file -> a validated `SemanticDataSet`.

SOURCE is a path, optionally with a prefix that forces how it is read:
- `masks:DIR` (or any folder): image and mask folders, see `mask_pairs.py`;
- `coco:FILE.json` (or any `.json` file): COCO polygons/RLE rasterised into cached masks, see
  `coco.py`. Detection reads `coco:` as boxes; the task decides, so under the semantic task
  `coco:` always means "paint the segmentations into a semantic mask";
- `csv:FILE.csv` (or any `.csv` file): a split file `path,mask[,group][,split]` as written by
  `write_split_file` (its sidecar JSON fixes the classes and the pixel map), or a hand-written
  one (classes found beside it, as for a folder).

Classes and encoding, for folders and hand-written CSVs: names come from `classes=` (the
recipe), else `classes.txt`, else `class_dict.csv`; colours from `class_dict.csv`. The encoding
is `encoding=` when given, else: palette when a class map exists and the masks hold colours (RGB
or palette-mode PNGs); binary when no more than two classes are named and every mask holds only
{0, 1} or only {0, 255}; index otherwise (values without names are called `class_<v>`). Void
classes and the ignore index: see `record.py`.

Every pair is checked once (threaded): the image decodes, the mask decodes and maps, and both
have the same size. Problems go to `skipped` with one `DataWarning`; nothing usable left raises
`DataError`.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from edgetl.artifact.orientation import upright_size
from edgetl.data.checks import decode_error, default_workers, describe_error, quiet_pil
from edgetl.data.samples import SPLITS, DataWarning, Sample, stratum_key
from edgetl.data.semantic.classmap import (
    CLASS_DICT_FILE,
    CLASSES_FILE,
    ClassEntry,
    entries_from_names,
    read_class_dict,
    read_classes_txt,
)
from edgetl.data.semantic.coco import load_coco_masks
from edgetl.data.semantic.dataset import Row, SemanticDataSet
from edgetl.data.semantic.decode import RawMask, mask_stats, scan_masks, unpack
from edgetl.data.semantic.mask_pairs import Pair, find_pairs
from edgetl.data.semantic.problems import Problem, summary
from edgetl.data.semantic.record import (
    ENCODINGS,
    MaskRecord,
    binary_record,
    index_record,
    palette_record,
)
from edgetl.data.semantic.splitfile import read_split_file
from edgetl.data.targets import MaskTarget
from edgetl.errors import DataError

PREFIXES = ("masks", "coco", "csv")
_MASK_ERROR_KINDS = {"unreadable": "unreadable_mask", "values_outside": "values_outside",
                     "palette_unknown": "palette_unknown", "not_grey": "not_grey",
                     "mode": "mode"}
_WHAT = ("give a folder with images/ + masks/ (or labels/, annotations/), a COCO .json or a "
         "split .csv (path,mask[,group][,split])")


def parse_source(source: str) -> tuple[str, Path]:
    """(kind, absolute path) of SOURCE: kind is 'masks', 'coco' or 'csv'."""
    text = str(source).strip()
    if not text:
        raise DataError("the semantic data source is empty; " + _WHAT)
    forced = None
    head, sep, rest = text.partition(":")
    if sep and head.lower() in PREFIXES:
        forced, text = head.lower(), rest
    path = Path(os.path.normpath(os.path.abspath(os.path.expanduser(text))))
    if not path.exists():
        raise DataError(f"no such folder or file: {text}; " + _WHAT)
    if forced == "masks" and not path.is_dir():
        raise DataError(f"masks:{text} is not a folder; " + _WHAT)
    if forced in ("coco", "csv") and not path.is_file():
        raise DataError(f"{forced}:{text} is not a file; " + _WHAT)
    if forced:
        return forced, path
    if path.is_dir():
        return "masks", path
    suffix = path.suffix.lower()
    if suffix in (".json", ".csv"):
        return ("coco" if suffix == ".json" else "csv"), path
    raise DataError(f"{text} is neither a folder, a .json nor a .csv; " + _WHAT)


def load_semantic(
    source: str,
    *,
    classes: Sequence[str] | None = None,
    ignore_index: int = 255,
    encoding: str | None = None,
    check_images: bool = True,
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
) -> SemanticDataSet:
    """Open SOURCE (see the module docstring) as semantic samples, checked pair by pair.

    `classes` (index order, void names allowed) overrides class files; `encoding` forces
    index/palette/binary; `check_images` fully decodes every image once (cached per process);
    `cache_dir` is where COCO masks are written; `progress(1)` is called per checked pair.
    """
    if encoding is not None and encoding not in ENCODINGS:
        raise DataError(f"mask encoding {encoding!r} is not one of {', '.join(ENCODINGS)}")
    kind, path = parse_source(source)
    notes: list[str] = []
    problems: list[Problem] = []
    coco: str | None = None
    if kind == "coco":
        raster = load_coco_masks(path, ignore_index=ignore_index, cache_dir=cache_dir)
        if classes is not None and tuple(classes) != raster.record.classes:
            raise DataError(f"classes {list(classes)} differ from the COCO file's "
                            f"{list(raster.record.classes)}",
                            hint="COCO sets take their classes from 'categories'")
        rows = [Row(p.image, p.mask, None, p.split) for p in raster.pairs]
        record, problems, notes = raster.record, list(raster.problems), list(raster.notes)
        name, description, coco = path.stem, f"COCO segmentations {path}", str(path)
    elif kind == "masks":
        listing = find_pairs(path)
        rows = [Row(p.image, p.mask, None, p.split) for p in _sorted_pairs(listing.pairs)]
        problems, notes = list(listing.problems), list(listing.notes)
        record = decide_record(path, [r.mask for r in rows], classes, encoding, ignore_index,
                               notes)
        name, description = path.name, f"image and mask folders {path}"
    else:
        split_file = read_split_file(path, cache_dir=cache_dir)
        rows, problems, notes = split_file.rows, list(split_file.problems), []
        coco = split_file.coco
        record = split_file.record
        if record is None:
            record = decide_record(path.parent, [r.mask for r in rows], classes, encoding,
                                   ignore_index, notes)
        elif classes is not None and tuple(classes) != record.classes:
            raise DataError(f"classes {list(classes)} differ from the split file's "
                            f"{list(record.classes)} ({split_file.sidecar})")
        name, description = split_file.name or path.stem, f"semantic split file {path}"
    samples, more = check_rows(rows, record, check_images=check_images, progress=progress)
    problems += more
    notes.append("masks: " + record.describe())
    return _finish(SemanticDataSet(
        name=name, classes=list(record.classes), samples=samples, origin=str(path),
        description=description, notes=notes, record=record, problems=problems,
        skipped=[(p.path, p.reason()) for p in problems], rasterised_from=coco))


def _sorted_pairs(pairs: list[Pair]) -> list[Pair]:
    order = {name: i for i, name in enumerate(SPLITS)}
    return sorted(pairs, key=lambda p: (order.get(p.split or "", -1), p.image))


def _finish(ds: SemanticDataSet) -> SemanticDataSet:
    """One warning for the skipped files; `DataError` when nothing usable is left."""
    if not ds.samples:
        what = summary(ds.problems) or "no images found"
        first = f"; first: {ds.skipped[0][0]}: {ds.skipped[0][1]}" if ds.skipped else ""
        raise DataError(f"no usable image/mask pair in {ds.origin} ({what}){first}",
                        hint="fix or remove the listed files")
    if len(ds.classes) < 2:
        raise DataError(f"{ds.origin} has {len(ds.classes)} class(es) "
                        f"({', '.join(ds.classes) or 'none'}); segmentation needs at least 2",
                        hint="list the classes in classes.txt, one per line")
    if ds.problems:
        first = ds.problems[0]
        warnings.warn(f"{ds.origin}: skipped {len(ds.problems)} file(s): {summary(ds.problems)}; "
                      f"e.g. {first.path}: {first.detail}", DataWarning, stacklevel=3)
    return ds


def _class_files(folder: Path) -> tuple[list[ClassEntry] | None, list[ClassEntry] | None, str]:
    """(names from classes.txt, entries of class_dict.csv, where they came from)."""
    names = read_classes_txt(folder / CLASSES_FILE) if (folder / CLASSES_FILE).is_file() else None
    colours = (read_class_dict(folder / CLASS_DICT_FILE)
               if (folder / CLASS_DICT_FILE).is_file() else None)
    where = ", ".join(str(folder / f) for f, e in ((CLASSES_FILE, names),
                                                   (CLASS_DICT_FILE, colours)) if e)
    return names, colours, where


def _is_binary(raws: Sequence[RawMask]) -> bool:
    scanned = [set(r.keys) for r in raws if r.error is None and r.kind == "values"]
    return bool(scanned) and all(k <= {0, 1} or k <= {0, 255} for k in scanned)


def _grey(raw: RawMask) -> bool:
    return all(len(set(unpack(k))) == 1 for k in raw.keys)


def decide_record(folder: Path, masks: Sequence[str], classes: Sequence[str] | None,
                  encoding: str | None, ignore_index: int, notes: list[str]) -> MaskRecord:
    """The record of masks found beside `folder`'s class files (module docstring: the rules)."""
    txt, colours, where = _class_files(folder)
    names = entries_from_names(list(classes), "classes") if classes is not None else txt
    if classes is not None and where:
        notes.append(f"class names from the recipe's classes (not {where})")
    elif where:
        notes.append(f"classes from {where}")
    raws = scan_masks(masks, "auto")
    colour_masks = [r for r in raws if r.error is None and (r.kind == "colours" or r.mode == "P")]
    if encoding is None:
        if colours is not None and colour_masks:
            encoding = "palette"
        elif raws and all(r.kind == "colours" and not _grey(r) for r in raws if r.error is None) \
                and any(r.error is None for r in raws):
            raise DataError(f"the masks in {folder} are colour (RGB) images and there is no "
                            f"{CLASS_DICT_FILE}", hint="add a class map with rows name,r,g,b")
        elif _is_binary(scan_masks(masks, "values")) and (
                names is None or sum(not e.void for e in names) == 2):
            encoding = "binary"
        else:
            encoding = "index"
    if encoding == "palette":
        if colours is None:
            raise DataError(f"palette masks need a class map {folder / CLASS_DICT_FILE}",
                            hint="rows name,r,g,b in class order")
        record = palette_record(colours, ignore_index)
        if classes is not None and tuple(e.name for e in names or [] if not e.void) != \
                record.classes:
            raise DataError(f"classes {list(classes)} differ from the class map's "
                            f"{list(record.classes)}", hint="keep the class map's order")
        return record
    if encoding == "binary":
        listed = [e.name for e in names if not e.void] if names else None
        return binary_record(listed or ("background", "foreground"), ignore_index)
    if names is None and colours is not None:
        names = [ClassEntry(e.value, e.name, e.void) for e in colours]
    if names is None:
        found = sorted({k for r in scan_masks(masks, "values") if r.error is None
                        for k in r.keys} - {ignore_index})
        top = found[-1] if found else -1
        names = [ClassEntry(v, f"class_{v}") for v in range(top + 1)]
        notes.append(f"no {CLASSES_FILE}: classes named by pixel value class_0..class_{top}")
    return index_record(names, ignore_index)


def _image_check(path: str, decode: bool) -> tuple[tuple[int, int] | None, str | None]:
    """(width, height) or None, and the reason the image is unusable (None when fine)."""
    try:
        with Image.open(path) as img:
            size = upright_size(img)
    except FileNotFoundError:
        return None, "file not found"
    except Exception as exc:  # any failure to open the header: unreadable
        return None, describe_error(exc)
    return size, decode_error(path) if decode else None


def check_rows(rows: Sequence[Row], record: MaskRecord, *, check_images: bool = True,
               progress: Callable[[int], None] | None = None
               ) -> tuple[list[Sample], list[Problem]]:
    """Samples for the rows whose image and mask are usable; a problem for each other row."""
    kind = "colours" if record.encoding == "palette" else "values"
    with quiet_pil(), ThreadPoolExecutor(max_workers=default_workers()) as pool:
        images = list(pool.map(lambda r: _image_check(r.image, check_images), rows))
    raws = scan_masks([r.mask for r in rows], kind, progress=progress)
    samples: list[Sample] = []
    problems: list[Problem] = []
    for row, (size, image_error), raw in zip(rows, images, raws, strict=True):
        stats = mask_stats(raw, record)
        if image_error is not None:
            problems.append(Problem("unreadable_image", row.image, image_error, mask=row.mask))
        elif stats.error is not None:
            err = stats.error
            problems.append(Problem(_MASK_ERROR_KINDS[err.kind], row.image,
                                    f"mask {row.mask}: {err.message.split(': ', 1)[-1]}",
                                    mask=row.mask, found=tuple(err.found)))
        elif size != (stats.width, stats.height):
            assert size is not None
            problems.append(Problem("size_mismatch", row.image,
                                    f"mask {row.mask} is {stats.width}x{stats.height}, the "
                                    f"image {size[0]}x{size[1]}", mask=row.mask))
        else:
            present = stats.present(record.classes)
            target = MaskTarget(mask_path=row.mask, encoding=record.encoding, present=present)
            samples.append(Sample(path=row.image, label=stratum_key(present), group=row.group,
                                  split=row.split, target=target))
    return samples, problems


def read_semantic(source: str, task: str, *, check_images: bool = True,
                  group_column: str = "group") -> SemanticDataSet:
    """`load_semantic` as the task's `data_reader` (`load_data`); `group_column` is not used
    (a split CSV's group column is `group`)."""
    return load_semantic(source, check_images=check_images)
