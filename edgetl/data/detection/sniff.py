"""Which detection or instance format a path holds, from its layout and a glance at its files.

Used when DATA has no format prefix, and by the classification loader to say "this looks like
a Pascal VOC detection set: pass --task detection" instead of a puzzling class-folder error.
Looks only at a bounded number of files near the top of a folder, so it is cheap to call.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

from edgetl.data.detection.boxcsv import has_box_columns
from edgetl.data.detection.coco import find_coco_files, looks_like_coco
from edgetl.data.detection.folders import split_folders, walk_files
from edgetl.data.detection.idmask import mask_layout
from edgetl.data.detection.via import find_via_files, looks_like_via
from edgetl.data.detection.voc import is_devkit
from edgetl.data.detection.which import task_for
from edgetl.data.detection.yolo import yolo_layout

FORMAT_NAMES = {"voc": "Pascal VOC XML", "coco": "COCO JSON", "yolo": "YOLO txt",
                "csv": "box CSV", "via": "VIA JSON polygons", "masks": "instance-mask PNG"}
_SEGMENTATION = re.compile(rb'"segmentation"\s*:\s*(\[\s*\[|\{)')
_SNIFF_BYTES = 1 << 26
_SAMPLE = 20


@dataclass(frozen=True)
class Sniffed:
    """A format guess: `fmt` (a load prefix), the task its annotations serve, and the path."""

    fmt: str
    task: str
    path: Path

    def describe(self) -> str:
        name = FORMAT_NAMES[self.fmt]
        return f"{'an' if name[0].lower() in 'aeiou' else 'a'} {name} {self.task} set"


def _coco_task(files: list[Path]) -> str:
    for path in files:
        with open(path, "rb") as handle:
            if _SEGMENTATION.search(handle.read(_SNIFF_BYTES)):
                return task_for(masks=True)
    return task_for(masks=False)


def _yolo_task(root: Path) -> str:
    for _, labels, _ in yolo_layout(root):
        for path in islice(walk_files(labels, (".txt",)), _SAMPLE):
            for line in path.read_text(errors="replace").splitlines():
                if len(line.split()) > 5:
                    return task_for(masks=True)
    return task_for(masks=False)


def _has_txt(labels: Path) -> bool:
    """True when a labels folder holds label files (camvid's labels/ holds PNG masks)."""
    for _, _, files in os.walk(labels):
        if any(f.endswith(".txt") and f != "classes.txt" for f in files):
            return True
    return False


def _has_voc_xml(root: Path) -> bool:
    folders = [root, *(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))]
    for folder in folders:
        for xml in islice(sorted(folder.glob("*.xml")), _SAMPLE):
            try:
                with open(xml, "rb") as handle:
                    if b"<annotation" in handle.read(4096):
                        return True
            except OSError:
                continue
    return False


def _sniff_file(path: Path) -> Sniffed | None:
    suffix = path.suffix.lower()
    if suffix == ".json":
        if looks_like_coco(path):
            return Sniffed("coco", _coco_task([path]), path)
        if looks_like_via(path):
            return Sniffed("via", task_for(masks=True), path)
    if suffix == ".csv" and has_box_columns(path):
        return Sniffed("csv", task_for(masks=False), path)
    return None


def sniff(path: Path) -> Sniffed | None:
    """The format at `path`, or None when it is none of the detection/instance formats."""
    if path.is_file():
        return _sniff_file(path)
    if not path.is_dir():
        return None
    if is_devkit(path):
        return Sniffed("voc", task_for(masks=False), path)
    coco = find_coco_files(path)
    if coco:
        return Sniffed("coco", _coco_task(coco), path)
    if find_via_files(path):
        return Sniffed("via", task_for(masks=True), path)
    if any(_has_txt(labels) for _, labels, _ in yolo_layout(path)):
        return Sniffed("yolo", _yolo_task(path), path)
    if mask_layout(path):
        return Sniffed("masks", task_for(masks=True), path)
    if _has_voc_xml(path) or any(_has_voc_xml(f) for f, _ in split_folders(path)):
        return Sniffed("voc", task_for(masks=False), path)
    csvs = [p for p in sorted(path.glob("*.csv")) if has_box_columns(p)]
    if len(csvs) == 1:
        return Sniffed("csv", task_for(masks=False), csvs[0])
    return None


def sniff_task(path: str | Path) -> Sniffed | None:
    """`sniff` for a DATA string (no prefix, no built-in names); never raises for odd paths."""
    try:
        return sniff(Path(str(path)).expanduser())
    except OSError:
        return None
