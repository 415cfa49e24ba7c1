"""VIA (VGG Image Annotator) JSON: polygon regions per image, as in the "balloon" example.

The file (`via_region_data.json` or any VIA export or project file) maps keys to `{"filename",
"regions": [{"shape_attributes": {...}, "region_attributes": {...}}]}`; a project file nests
that under `_via_img_metadata`. Shapes: `polygon` (`all_points_x`, `all_points_y`) and `rect`
(x, y, width, height, taken as its four corners); other shapes are listed and not used (and
their image left out, as with any region that cannot be used). A region's class is its
`region_attributes` value under class/label/name/type/category (or the single string value, or
the checked key of a checkbox attribute); without one it is the only name of `classes.txt`, else
`object`. Images are found beside the JSON; split folders (`train/ val/ test/`, each with its
JSON) give the splits.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.data.detection import problems as P
from edgetl.data.detection.build import ClassNames, Record, assemble
from edgetl.data.detection.coco import load_json
from edgetl.data.detection.folders import ImageIndex, read_names, split_folders, walk_files
from edgetl.data.detection.geometry import check_box
from edgetl.data.detection.masks import check_polygons, polygons_box
from edgetl.data.samples import DataSet
from edgetl.data.targets import BoxTarget, InstanceMask, InstanceTarget
from edgetl.errors import DataError

_CLASS_KEYS = ("class", "label", "name", "type", "category")
DEFAULT_CLASS = "object"


def looks_like_via(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 20)
    except OSError:
        return False
    return b'"regions"' in head and (b'"shape_attributes"' in head or b'"filename"' in head)


def find_via_files(root: Path) -> list[tuple[Path, str | None]]:
    """VIA files at the root (no split) or one per split folder."""
    parts = split_folders(root)
    folders = parts if parts else [(root, None)]
    return [(p, split) for folder, split in folders for p in sorted(folder.glob("*.json"))
            if not p.name.startswith(".") and looks_like_via(p)]


def _entries(data: Any) -> list[dict]:
    if isinstance(data, dict) and isinstance(data.get("_via_img_metadata"), dict):
        data = data["_via_img_metadata"]
    if not isinstance(data, dict):
        raise ValueError("not a VIA file (expected an object of images)")
    return [e for e in data.values() if isinstance(e, dict) and "filename" in e]


def region_class(attributes: Any) -> str | None:
    """The class a region's attributes name, if any."""
    if not isinstance(attributes, dict):
        return None
    for key in _CLASS_KEYS:
        value = attributes.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
        if isinstance(value, dict):
            checked = [k for k, v in value.items() if v]
            if len(checked) == 1:
                return str(checked[0]).strip()
    strings = [v.strip() for v in attributes.values() if isinstance(v, str) and v.strip()]
    return strings[0] if len(strings) == 1 else None


def _shape_polygon(shape: Any) -> list[float] | str:
    """The flat polygon of a region's shape, or why there is none."""
    if not isinstance(shape, dict):
        return "no shape_attributes"
    kind = shape.get("name")
    try:
        if kind == "polygon":
            xs, ys = shape["all_points_x"], shape["all_points_y"]
            if len(xs) != len(ys):
                return "all_points_x and all_points_y differ in length"
            return [float(v) for pair in zip(xs, ys, strict=True) for v in pair]
        if kind == "rect":
            x, y = float(shape["x"]), float(shape["y"])
            w, h = float(shape["width"]), float(shape["height"])
            return [x, y, x + w, y, x + w, y + h, x, y + h]
    except (KeyError, TypeError, ValueError) as exc:
        return f"{kind} without usable coordinates ({exc})"
    return f"shape {kind!r} is not supported (polygon, rect)"


def _read_file(json_path: Path, split: str | None, task: str, classes: ClassNames,
               default: str, problems: P.Problems) -> list[Record]:
    try:
        entries = _entries(load_json(json_path))
    except ValueError as exc:
        problems.add(str(json_path), P.BAD_ANNOTATION, str(exc))
        return []
    index = ImageIndex(json_path.parent)
    records: list[Record] = []
    used: set[Path] = set()
    for entry in entries:
        image = index.find(str(entry["filename"]), json_path.parent)
        if image is None or image in used:
            kind = P.IMAGE_MISSING if image is None else P.BAD_ANNOTATION
            problems.add(str(json_path), kind, f"{entry['filename']!r}: " + (
                "no such image beside the JSON" if image is None else "listed twice"))
            continue
        used.add(image)
        size = problems.image_size(str(image))
        if size is None:
            continue
        regions = entry.get("regions") or []
        regions = list(regions.values()) if isinstance(regions, dict) else regions
        boxes, labels, masks = [], [], []
        mark = problems.mark()
        for k, region in enumerate(regions):
            where = f"{json_path} {entry['filename']} region {k}"
            region = region if isinstance(region, dict) else {}
            polygon = _shape_polygon(region.get("shape_attributes"))
            if isinstance(polygon, str):
                problems.add(where, P.BAD_ANNOTATION, polygon)
                continue
            name = region_class(region.get("region_attributes")) or default
            if not classes.accept(name):
                problems.add(where, P.UNKNOWN_CLASS, classes.unknown(name))
                continue
            kept, issues = check_polygons([polygon], size)
            for kind, detail in issues:
                problems.add(where, kind, detail)
            if not kept:
                continue
            box, issue = check_box(polygons_box(kept), size)
            if box is None:
                problems.add(where, P.BOX_DROPPED, f"{name} {issue}")
                continue
            boxes.append(box)
            labels.append(name)
            masks.append(InstanceMask(polygons=kept))
        if problems.lost_objects(mark, str(image)):
            continue
        target: BoxTarget | InstanceTarget = InstanceTarget(
            boxes=tuple(boxes), labels=tuple(labels), masks=tuple(masks), image_size=size)
        records.append(Record(path=str(image), target=target, split=split))
    for image in walk_files(json_path.parent):
        if image not in used and image.parent == json_path.parent:
            problems.add(str(image), P.NO_ANNOTATION, f"not in {json_path.name}")
    return records


def read_via(source: Path, task: str, problems: P.Problems) -> DataSet:
    """A VIA file, or a folder with one (or one per split folder), as an instance `DataSet`."""
    files = [(source, None)] if source.is_file() else find_via_files(source)
    if not files:
        raise DataError(f"no VIA JSON in {source} or its split folders")
    root = source.parent if source.is_file() else source
    names_file = root / "classes.txt"
    fixed = read_names(names_file) if names_file.is_file() else None
    classes = ClassNames(fixed, str(names_file))
    default = fixed[0] if fixed and len(fixed) == 1 else DEFAULT_CLASS
    records = [r for f, split in files
               for r in _read_file(f, split, task, classes, default, problems)]
    return assemble(name=source.stem if source.is_file() else source.name,
                    origin=f"via:{source}", task=task, classes=classes.order(),
                    records=records, problems=problems,
                    description=f"VIA polygons {source} ({len(files)} file(s))")
