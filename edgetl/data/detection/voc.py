"""Pascal VOC XML: one `<annotation>` file per image, boxes in pixels, `difficult` as crowd.

Layouts:
- the devkit: `Annotations/*.xml`, `JPEGImages/`, and `ImageSets/Main/{train,val,test}.txt`
  (ids, one per line) giving the splits (`trainval.txt` counts as train when neither train.txt
  nor val.txt exists; an id listed twice keeps the later of train, val, test);
- any folder with images and XML files anywhere beneath it (labelImg, CVAT, Roboflow), with
  `train/ val/ (valid/) test/` subfolders as splits when present.
An XML names its image by `<filename>`, found as described in `layout.ImageIndex`, else by the
XML's own stem. Images no XML names are listed and not used (an image without objects needs an
XML without objects); so are images with an object that cannot be used (a box without area, a
class outside classes.txt, an object without name or numbers), which would otherwise teach the
object as background. Class order: `classes.txt` at the root if present, else sorted names.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from edgetl.data.detection import problems as P
from edgetl.data.detection.build import ClassNames, Record, assemble
from edgetl.data.detection.folders import ImageIndex, read_names, split_folders, walk_files
from edgetl.data.detection.geometry import Box, Size
from edgetl.data.samples import DataSet
from edgetl.data.targets import BoxTarget

_DEVKIT_LISTS = ("train", "val", "test")


@dataclass
class VocObject:
    name: str
    box: Box
    difficult: bool


@dataclass
class VocAnnotation:
    """What one XML file says: its image's file name, stated size and objects."""

    filename: str
    size: Size | None
    objects: list[VocObject] = field(default_factory=list)
    bad_objects: list[str] = field(default_factory=list)  # why each unusable object is unusable


def _text(node: ET.Element | None, tag: str) -> str:
    found = node.find(tag) if node is not None else None
    return (found.text or "").strip() if found is not None else ""


def parse_voc_xml(path: Path) -> VocAnnotation:
    """Parse one VOC XML; raises ValueError (with the reason) when it is not usable at all."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ValueError("empty file")
    try:
        root = ET.fromstring(data)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from exc
    if root.tag != "annotation":
        raise ValueError(f"not a Pascal VOC annotation (root element <{root.tag}>)")
    size: Size | None = None
    try:
        width = int(float(_text(root, "size/width")))
        height = int(float(_text(root, "size/height")))
        size = (height, width) if width > 0 and height > 0 else None
    except ValueError:
        size = None
    ann = VocAnnotation(filename=_text(root, "filename"), size=size)
    for k, obj in enumerate(root.findall("object")):
        name = _text(obj, "name")
        bnd = obj.find("bndbox")
        try:
            box = tuple(float(_text(bnd, t)) for t in ("xmin", "ymin", "xmax", "ymax"))
        except ValueError:
            ann.bad_objects.append(f"object {k} ({name or 'no name'}): bndbox missing or not "
                                   "numeric")
            continue
        if not name:
            ann.bad_objects.append(f"object {k}: no <name>")
            continue
        difficult = _text(obj, "difficult") in ("1", "true", "True")
        ann.objects.append(VocObject(name=name, box=box, difficult=difficult))  # type: ignore[arg-type]
    return ann


def voc_target(ann: VocAnnotation, xml: Path, size: Size, classes: ClassNames,
               problems: P.Problems) -> BoxTarget:
    """The checked boxes of one XML against its image's real (H, W) size."""
    for reason in ann.bad_objects:
        problems.add(str(xml), P.BAD_ANNOTATION, reason)
    if ann.size is not None and ann.size != size:
        problems.add(str(xml), P.IMAGE_SIZE,
                     f"XML says {ann.size[1]}x{ann.size[0]}, the image is {size[1]}x{size[0]}; "
                     "boxes checked against the image")
    boxes, labels, crowd = [], [], []
    for obj in ann.objects:
        if not classes.accept(obj.name):
            problems.add(str(xml), P.UNKNOWN_CLASS, classes.unknown(obj.name))
            continue
        box = problems.box(obj.box, size, str(xml), obj.name)
        if box is not None:
            boxes.append(box)
            labels.append(obj.name)
            crowd.append(obj.difficult)
    return BoxTarget(boxes=tuple(boxes), labels=tuple(labels), crowd=tuple(crowd),
                     image_size=size)


def _read_pairs(xmls: list[Path], index: ImageIndex, split_of: dict[str, str | None],
                classes: ClassNames, problems: P.Problems) -> list[Record]:
    """Records of XML/image pairs; images that no XML names are listed as problems."""
    records: list[Record] = []
    used: set[Path] = set()
    for xml in xmls:
        try:
            ann = parse_voc_xml(xml)
        except ValueError as exc:
            image = index.find("", xml.parent, stem=xml.stem)
            if image is not None:  # its image is this problem, not a second one
                used.add(image)
            problems.add(str(xml), P.BAD_ANNOTATION, f"{exc}" + (
                f"; {P.LEFT_OUT}: {image.name}" if image is not None else ""))
            continue
        image = index.find(ann.filename, xml.parent, stem=xml.stem)
        if image is None:
            problems.add(str(xml), P.IMAGE_MISSING,
                         f"no unique image file for <filename> {ann.filename!r} or stem "
                         f"{xml.stem!r}")
            continue
        if image in used:
            problems.add(str(xml), P.BAD_ANNOTATION,
                         f"another XML already annotates {image.name}")
            continue
        used.add(image)
        size = problems.image_size(str(image))
        if size is None:
            continue
        mark = problems.mark()
        target = voc_target(ann, xml, size, classes, problems)
        if problems.lost_objects(mark, str(image)):
            continue
        records.append(Record(path=str(image), target=target,
                              split=split_of.get(xml.stem, split_of.get("*"))))
    for image in index.paths:
        if image not in used:
            problems.add(str(image), P.NO_ANNOTATION, "no XML names this image")
    return records


def _devkit_splits(root: Path, notes: list[str]) -> dict[str, str | None]:
    folder = root / "ImageSets" / "Main"
    lists = {name: folder / f"{name}.txt" for name in _DEVKIT_LISTS}
    if not lists["train"].is_file() and not lists["val"].is_file():
        lists["train"] = folder / "trainval.txt"
    split_of: dict[str, str | None] = {}
    twice = 0
    for split, path in lists.items():
        if path.is_file():
            for line in path.read_text().splitlines():
                ident = line.split()[0] if line.split() else ""
                if ident:
                    twice += ident in split_of
                    split_of[ident] = split
    if twice:
        notes.append(f"{twice} id(s) appear in more than one of ImageSets/Main "
                     "train/val/test lists: the later list wins")
    if split_of:
        notes.append("splits from ImageSets/Main (" + ", ".join(
            f"{n} {sum(v == n for v in split_of.values())}" for n in _DEVKIT_LISTS) + ")")
    return split_of


def is_devkit(root: Path) -> bool:
    return (root / "Annotations").is_dir() and (root / "JPEGImages").is_dir()


def class_names(root: Path) -> ClassNames:
    names = root / "classes.txt"
    return ClassNames(read_names(names), str(names)) if names.is_file() else ClassNames()


def read_voc(root: Path, task: str, problems: P.Problems) -> DataSet:
    """A Pascal VOC folder (devkit or loose) as a detection `DataSet` (boxes only)."""
    classes = class_names(root)
    notes: list[str] = []
    records: list[Record] = []
    if is_devkit(root):
        split_of = _devkit_splits(root, notes)
        index = ImageIndex(root / "JPEGImages")
        records = _read_pairs(walk_files(root / "Annotations", (".xml",)), index, split_of,
                              classes, problems)
        what = "Pascal VOC devkit"
    else:
        parts = split_folders(root) or [(root, None)]
        for folder, split in parts:
            index = ImageIndex(folder)
            records += _read_pairs(walk_files(folder, (".xml",)), index, {"*": split},
                                   classes, problems)
        what = "Pascal VOC XML folder" + (" with split folders" if parts[0][1] else "")
    return assemble(name=root.name, origin=f"voc:{root}", task=task, classes=classes.order(),
                    records=records, problems=problems, description=f"{what} {root}",
                    notes=notes)
