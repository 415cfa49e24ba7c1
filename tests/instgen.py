"""Small real instance-segmentation sets made on the fly: blobs on dark photos, id-mask PNGs.

Like fluorescence nuclei: 3-9 bright filled ellipses per image on a dark textured background,
some touching, varied image sizes (so letterbox geometry matters); `masks/<stem>.png` numbers
the ellipses 1..K, the layout of the nuclei development set (one class).
"""

from __future__ import annotations

import random
from pathlib import Path

import annotgen
import imagegen
import numpy as np
from PIL import Image, ImageDraw


def draw_scene(seed: int) -> tuple[Image.Image, np.ndarray]:
    """One image and its instance ids (0 background, 1..K)."""
    rnd = random.Random(seed)
    width, height = rnd.choice([(96, 96), (128, 96), (96, 120), (112, 112)])
    photo = imagegen.textured_array(np.random.default_rng(seed), width, height) // 4
    image = Image.fromarray(photo.astype(np.uint8))
    draw = ImageDraw.Draw(image)
    ids = Image.new("I", (width, height), 0)
    draw_ids = ImageDraw.Draw(ids)
    count = 0
    for _ in range(rnd.randint(3, 9)):
        w, h = rnd.randint(10, 24), rnd.randint(10, 24)
        x, y = rnd.randint(0, width - w), rnd.randint(0, height - h)
        if np.asarray(ids)[y:y + h, x:x + w].any():
            continue  # no overlap: an id PNG cannot hold it
        count += 1
        shade = rnd.randint(170, 255)
        draw.ellipse((x, y, x + w - 1, y + h - 1), fill=(shade, shade, rnd.randint(150, 255)))
        draw_ids.ellipse((x, y, x + w - 1, y + h - 1), fill=count)
    return image, np.asarray(ids).astype(np.int64)


def make_id_masks(root: Path, count: int, seed: int = 0) -> Path:
    """ROOT/images/*.png and ROOT/masks/*.png for `count` scenes; returns ROOT."""
    (root / "images").mkdir(parents=True, exist_ok=True)
    (root / "masks").mkdir(parents=True, exist_ok=True)
    for i in range(count):
        image, ids = draw_scene(seed * 10_000 + i)
        image.save(root / "images" / f"cells-{i:03d}.png")
        annotgen.id_png(root / "masks" / f"cells-{i:03d}.png", ids)
    (root / "classes.txt").write_text("nucleus\n")
    return root
