"""Small real detection data sets made on the fly: shapes on textured photos, with exact boxes.

Two classes that a pretrained backbone separates easily (`square`: a filled axis-aligned
square, `disc`: a filled circle), 1-3 objects per image, varied image sizes and aspect ratios
(so letterbox geometry matters), saved as JPEG/PNG with Pascal VOC XML beside them.
"""

from __future__ import annotations

import random
from pathlib import Path

import imagegen
import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("disc", "square")


def draw_scene(seed: int) -> tuple[Image.Image, list[tuple[str, tuple[int, int, int, int]]]]:
    """One image and its objects (class, x1, y1, x2, y2 in pixels)."""
    rnd = random.Random(seed)
    width, height = rnd.choice([(160, 120), (200, 150), (120, 160), (180, 180), (240, 140)])
    image = imagegen.textured_image(np.random.default_rng(seed), (width, height))
    draw = ImageDraw.Draw(image)
    objects: list[tuple[str, tuple[int, int, int, int]]] = []
    for _ in range(rnd.randint(1, 3)):
        side = rnd.randint(min(width, height) // 5, min(width, height) // 2)
        for _try in range(20):
            x1, y1 = rnd.randint(0, width - side), rnd.randint(0, height - side)
            box = (x1, y1, x1 + side, y1 + side)
            if all(_iou(box, other) == 0 for _, other in objects):
                break
        else:
            continue
        label = rnd.choice(CLASSES)
        colour = (rnd.randint(180, 255), rnd.randint(0, 60), rnd.randint(0, 60))
        if label == "square":
            draw.rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=colour)
        else:
            draw.ellipse((box[0], box[1], box[2] - 1, box[3] - 1), fill=colour)
        objects.append((label, box))
    return image, objects


def _iou(a: tuple[int, ...], b: tuple[int, ...]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def voc_xml(filename: str, size: tuple[int, int],
            objects: list[tuple[str, tuple[int, int, int, int]]]) -> str:
    width, height = size
    parts = [f"<annotation><filename>{filename}</filename>",
             f"<size><width>{width}</width><height>{height}</height><depth>3</depth></size>"]
    for label, (x1, y1, x2, y2) in objects:
        parts.append(f"<object><name>{label}</name><difficult>0</difficult><bndbox>"
                     f"<xmin>{x1}</xmin><ymin>{y1}</ymin><xmax>{x2}</xmax><ymax>{y2}</ymax>"
                     "</bndbox></object>")
    return "".join(parts) + "</annotation>"


def make_voc(root: Path, count: int, seed: int = 0) -> Path:
    """ROOT/images/*.jpg|png and ROOT/annotations/*.xml for `count` scenes; returns ROOT."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, objects = draw_scene(seed * 10_000 + i)
        name = f"scene-{i:03d}.{'png' if i % 4 == 0 else 'jpg'}"
        image.save(root / "images" / name, quality=92)
        (root / "annotations" / f"scene-{i:03d}.xml").write_text(
            voc_xml(name, image.size, objects))
    return root
