"""Classification trees made for the selection, spike-guard and imbalance tests.

`make_defect_tree`: an inspection-like two-class tree, `ok/` textured surfaces and a few
`defect/` ones carrying a scratch (a line of random place, angle, width and contrast: the faint
ones are hard), in `train/ val/ test/` folders used as given, so the class ratio of every
split is what the test asks for.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
from imagegen import textured_array
from PIL import Image, ImageDraw


def surface(seed: int, defect: bool, size: int = 96,
            contrast: tuple[float, float] = (35, 110)) -> Image.Image:
    """One grey surface (saved as RGB); with `defect`, a scratch across part of it, brighter
    than the surface's mean by a level drawn from `contrast` (low levels are hard to see)."""
    rng = np.random.default_rng(seed)
    arr = (textured_array(rng, size, size, 1).astype(np.float32) * 0.5 + 64).astype(np.uint8)
    img = Image.fromarray(arr, "L")
    if defect:
        rnd = random.Random(seed)
        draw = ImageDraw.Draw(img)
        length = rnd.uniform(0.35, 0.8) * size
        angle = rnd.uniform(0, math.pi)
        cx, cy = rnd.uniform(0.3, 0.7) * size, rnd.uniform(0.3, 0.7) * size
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        shade = int(min(255, arr.mean() + rnd.uniform(*contrast)))
        draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=shade, width=rnd.randint(2, 4))
    return img.convert("RGB")


def make_defect_tree(root: Path, counts: dict[str, tuple[int, int]], seed: int = 0,
                     contrast: tuple[float, float] = (35, 110)) -> Path:
    """`root/<split>/{ok,defect}/*.png`; `counts`: split -> (ok images, defect images)."""
    index = seed * 1_000_000
    for split, (ok, defect) in counts.items():
        for label, n in (("ok", ok), ("defect", defect)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                index += 1
                surface(index, label == "defect", contrast=contrast).save(
                    folder / f"{label}_{i:03d}.png")
    return root
