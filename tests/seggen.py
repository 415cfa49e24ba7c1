"""Small real semantic segmentation sets made on the fly: shapes on textured photos, exact masks.

Classes `background`, `disc`, `square` (index PNG masks, values 0-2) and a `void` border
(value 255: ignored) around every shape, as real annotation tools leave at object edges.
"""

from __future__ import annotations

from pathlib import Path

import detgen
import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("background", "disc", "square")


def make_masks(root: Path, count: int, seed: int = 0) -> Path:
    """ROOT/images/*.png|jpg, ROOT/masks/*.png and ROOT/classes.txt; returns ROOT."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    (root / "classes.txt").write_text("background\ndisc\nsquare\n")
    for i in range(count):
        image, objects = detgen.draw_scene(seed * 10_000 + i)
        mask = Image.new("L", image.size, 0)
        draw = ImageDraw.Draw(mask)
        for label, (x1, y1, x2, y2) in objects:
            value = CLASSES.index(label)
            shape = draw.rectangle if label == "square" else draw.ellipse
            shape((x1, y1, x2 - 1, y2 - 1), fill=255)  # void edge
            shape((x1 + 1, y1 + 1, x2 - 2, y2 - 2), fill=value)
        stem = f"scene-{i:03d}"
        image.save(root / "images" / f"{stem}.{'jpg' if i % 3 else 'png'}", quality=92)
        mask.save(root / "masks" / f"{stem}.png")
    return root


def as_array(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))
