"""Annotation files for generated test images, written the way each format's tools write them.

Pascal VOC XML (labelImg style), COCO JSON, YOLO txt, box CSV, VIA JSON and instance-id PNGs.
Images come from `imagegen` (textured, so duplicate detection sees distinct photos).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Sequence
from pathlib import Path

import imagegen
import numpy as np
from PIL import Image


def image(path: Path, rng: np.random.Generator, size: tuple[int, int]) -> Path:
    """A textured image of `size` (W, H) at `path` (format from the suffix)."""
    return imagegen.write_textured(path, rng, size)


def voc_xml(path: Path, filename: str, size: tuple[int, int] | None,
            objects: Sequence[tuple[str, Sequence[float], int]]) -> Path:
    """An XML with <filename>, <size> (W, H) and objects (name, (x1, y1, x2, y2), difficult)."""
    parts = ["<annotation>", "  <folder>images</folder>", f"  <filename>{filename}</filename>"]
    if size is not None:
        parts += ["  <size>", f"    <width>{size[0]}</width>", f"    <height>{size[1]}</height>",
                  "    <depth>3</depth>", "  </size>"]
    for name, box, difficult in objects:
        parts += ["  <object>", f"    <name>{name}</name>", "    <pose>Unspecified</pose>",
                  f"    <difficult>{difficult}</difficult>", "    <bndbox>",
                  *(f"      <{t}>{v:g}</{t}>" for t, v in zip(("xmin", "ymin", "xmax", "ymax"),
                                                           box, strict=True)),
                  "    </bndbox>", "  </object>"]
    parts.append("</annotation>")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(parts) + "\n")
    return path


def coco_json(path: Path, images: Sequence[dict], annotations: Sequence[dict],
              categories: Sequence[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"info": {}, "licenses": [], "images": list(images),
                                "annotations": list(annotations),
                                "categories": list(categories)}))
    return path


def yolo_txt(path: Path, lines: Sequence[str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def csv_rows(path: Path, header: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def via_region(points: Sequence[tuple[float, float]] | None = None, *, shape: dict | None = None,
               attributes: dict | None = None) -> dict:
    """One VIA region: a polygon from points, or any given shape_attributes."""
    if shape is None:
        shape = {"name": "polygon", "all_points_x": [p[0] for p in points or []],
                 "all_points_y": [p[1] for p in points or []]}
    return {"shape_attributes": shape, "region_attributes": attributes or {}}


def via_json(path: Path, entries: dict[str, list[dict]], sizes: dict[str, int] | None = None
             ) -> Path:
    """`via_region_data.json` as in the balloon example: key = filename + size, regions dict."""
    data = {}
    for filename, regions in entries.items():
        size = (sizes or {}).get(filename, 1234)
        data[f"{filename}{size}"] = {"filename": filename, "size": size,
                                     "regions": {str(i): r for i, r in enumerate(regions)},
                                     "file_attributes": {}}
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def id_png(path: Path, ids: np.ndarray) -> Path:
    """An instance-id PNG: 8-bit for ids < 256 (mode L), else 16-bit (mode I;16)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if ids.max() < 256:
        Image.fromarray(ids.astype(np.uint8), mode="L").save(path)
    else:
        Image.fromarray(ids.astype(np.uint16)).save(path)
    return path
