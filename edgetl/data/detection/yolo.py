"""YOLO txt labels: `images/` + `labels/`, one txt per image, normalised coordinates.

Each line is `class cx cy w h` (a box) or `class x1 y1 x2 y2 ...` (a polygon of 3 or more
points, Ultralytics' segmentation labels); coordinates are fractions of the image's width and
height, turned into pixels here. Detection takes boxes, and a polygon's extents; instance
segmentation takes polygons only. An image without a label file is an image without objects
(the format's convention; counted in the notes), and so is an empty label file; an image with a
line that cannot be used is left out and listed. Class names: `data.yaml` (`names:` as a list
or an {index: name} mapping) or `classes.txt` at the root, in index order.

Layouts: `images/` + `labels/` at the root; `train/ val/ (valid/) test/` each with `images/` and
`labels/`; or `images/train` + `labels/train` (and val, test).
"""

from __future__ import annotations

import os
from pathlib import Path

from edgetl.data.detection import problems as P
from edgetl.data.detection.build import Record, assemble
from edgetl.data.detection.folders import read_names, split_folders, walk_files
from edgetl.data.detection.geometry import Size
from edgetl.data.detection.masks import check_polygons, polygons_box
from edgetl.data.detection.which import has_masks
from edgetl.data.samples import DataSet
from edgetl.data.targets import BoxTarget, InstanceMask, InstanceTarget
from edgetl.errors import DataError

Layout = list[tuple[Path, Path, str | None]]  # (images folder, labels folder, split)


def yolo_layout(root: Path) -> Layout:
    """Where the images and labels of each split are; empty when this is not a YOLO layout."""
    images, labels = root / "images", root / "labels"
    if images.is_dir() and labels.is_dir():
        inner = split_folders(images)
        if inner:
            return [(folder, labels / folder.name, split) for folder, split in inner]
        return [(images, labels, None)]
    return [(folder / "images", folder / "labels", split) for folder, split in split_folders(root)
            if (folder / "images").is_dir() and (folder / "labels").is_dir()]


def class_names(root: Path) -> list[str]:
    """Names in index order from data.yaml or classes.txt; DataError when neither has them."""
    for name in ("data.yaml", "data.yml", "dataset.yaml"):
        path = root / name
        if path.is_file():
            import yaml

            try:
                names = (yaml.safe_load(path.read_text()) or {}).get("names")
            except (yaml.YAMLError, AttributeError) as exc:
                raise DataError(f"cannot read class names from {path}: {exc}") from exc
            if isinstance(names, dict):
                try:
                    keys = sorted(int(k) for k in names)
                except (TypeError, ValueError) as exc:
                    raise DataError(f"{path}: names keys must be class indices 0, 1, ...") \
                        from exc
                if keys != list(range(len(keys))):
                    raise DataError(f"{path}: names indices {keys} are not 0..{len(keys) - 1}")
                return [str(names[k] if k in names else names[str(k)]).strip() for k in keys]
            if isinstance(names, list) and names:
                return [str(n).strip() for n in names]
            raise DataError(f"{path} has no `names:` list or mapping")
    path = root / "classes.txt"
    if path.is_file():
        return read_names(path)
    raise DataError(f"YOLO labels in {root} need class names",
                    hint="add data.yaml with `names: [...]` or classes.txt, one name per line")


def _label_path(image: Path, images: Path, labels: Path) -> Path:
    return (labels / image.relative_to(images)).with_suffix(".txt")


def _parse(path: Path, size: Size, masks_wanted: bool, names: list[str], problems: P.Problems
           ) -> BoxTarget | InstanceTarget:
    height, width = size
    boxes, labels, masks = [], [], []
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        where = f"{path} line {number}"
        polygon = len(fields) >= 7 and len(fields) % 2 == 1
        if len(fields) != 5 and not polygon:
            problems.add(where, P.BAD_ANNOTATION,
                         f"{len(fields)} fields: expected 5 (class cx cy w h) or an odd count "
                         "of 7 or more (class and 3+ points)")
            continue
        if masks_wanted and not polygon:
            problems.add(where, P.BAD_ANNOTATION, "a box (5 fields), not a polygon: instance "
                         "segmentation needs polygon labels")
            continue
        try:
            values = [float(v) for v in fields[1:]]
            index = float(fields[0])
        except ValueError:
            problems.add(where, P.BAD_ANNOTATION, f"not numbers: {line.strip()[:80]!r}")
            continue
        if not index.is_integer() or not 0 <= index < len(names):
            problems.add(where, P.UNKNOWN_CLASS, f"class index {fields[0]} is not 0.."
                         f"{len(names) - 1} ({len(names)} names)")
            continue
        name = names[int(index)]
        mask = None
        if polygon:
            pixels = [v * (width if i % 2 == 0 else height) for i, v in enumerate(values)]
            kept, issues = check_polygons([pixels], size)
            for kind, detail in issues:
                problems.add(where, kind, detail)
            if not kept:
                continue
            raw = polygons_box(kept)
            mask = InstanceMask(polygons=kept)
        else:
            cx, cy, w, h = values
            raw = ((cx - w / 2) * width, (cy - h / 2) * height,
                   (cx + w / 2) * width, (cy + h / 2) * height)
        box = problems.box(raw, size, where, name)
        if box is None:
            continue
        boxes.append(box)
        labels.append(name)
        masks.append(mask)
    if masks_wanted:
        return InstanceTarget(boxes=tuple(boxes), labels=tuple(labels), masks=tuple(masks),
                              image_size=size)
    return BoxTarget(boxes=tuple(boxes), labels=tuple(labels), image_size=size)


def read_yolo(root: Path, task: str, problems: P.Problems) -> DataSet:
    """A YOLO folder as a detection or instance `DataSet` (origin `yolo:<root>`)."""
    layout = yolo_layout(root)
    if not layout:
        raise DataError(f"{root} is not a YOLO layout", hint="images/ and labels/ folders, "
                        "at the root, per split folder, or as images/train + labels/train")
    names = class_names(root)
    records: list[Record] = []
    unlabelled = 0
    for images, labels, split in layout:
        used: set[Path] = set()
        for image in walk_files(images):
            label = _label_path(image, images, labels)
            used.add(label)
            size = problems.image_size(str(image))
            if size is None:
                continue
            if label.is_file():
                mark = problems.mark()
                target = _parse(label, size, has_masks(task), names, problems)
                if problems.lost_objects(mark, str(image)):
                    continue
            else:
                unlabelled += 1
                target = (InstanceTarget if has_masks(task) else BoxTarget)(image_size=size)
            records.append(Record(path=str(image), target=target, split=split))
        for orphan in walk_files(labels, (".txt",)) if labels.is_dir() else []:
            if orphan not in used and orphan.name != "classes.txt":
                problems.add(str(orphan), P.BAD_ANNOTATION, "no image for this label file")
    notes = [f"{unlabelled} image(s) without a label file: images without objects "
             "(YOLO convention)"] if unlabelled else []
    splits = ", ".join(os.path.relpath(i, root) for i, _, _ in layout)
    return assemble(name=root.name, origin=f"yolo:{root}", task=task, classes=names,
                    records=records, problems=problems,
                    description=f"YOLO txt labels {root} ({splits})", notes=notes)
