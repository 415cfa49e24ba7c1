"""Classification trees made for the imbalance tests.

`make_defect_tree`: an inspection-like two-class tree in `train/ val/ test/` folders used as
given (so every split has the class ratio the test asks for). `ok/` surfaces are grey textures;
a share of them carry a faint benign mark, and every `defect/` surface a scratch, both a line of
random place, angle and width. The two contrast ranges overlap, so some images cannot be told
apart: where the decision boundary sits between them is what class weights change.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
from imagegen import textured_array
from PIL import Image, ImageDraw


def surface(seed: int, contrast: tuple[float, float] | None, size: int = 96) -> Image.Image:
    """One grey surface (saved as RGB); with `contrast`, a line brighter than the surface's
    mean by a level drawn from that range."""
    rng = np.random.default_rng(seed)
    arr = (textured_array(rng, size, size, 1).astype(np.float32) * 0.5 + 64).astype(np.uint8)
    img = Image.fromarray(arr, "L")
    if contrast is not None:
        rnd = random.Random(seed)
        draw = ImageDraw.Draw(img)
        length = rnd.uniform(0.35, 0.8) * size
        angle = rnd.uniform(0, math.pi)
        cx, cy = rnd.uniform(0.3, 0.7) * size, rnd.uniform(0.3, 0.7) * size
        dx, dy = math.cos(angle) * length / 2, math.sin(angle) * length / 2
        shade = int(min(255, arr.mean() + rnd.uniform(*contrast)))
        draw.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=shade, width=rnd.randint(2, 4))
    return img.convert("RGB")


def make_defect_tree(root: Path, counts: dict[str, tuple[int, int]], seed: int = 0, *,
                     scratch: tuple[float, float] = (10, 60),
                     benign: tuple[float, float] = (4, 24), benign_share: float = 0.3) -> Path:
    """`root/<split>/{ok,defect}/*.png`; `counts`: split -> (ok images, defect images)."""
    index = seed * 1_000_000
    for split, (ok, defect) in counts.items():
        for label, n in (("ok", ok), ("defect", defect)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                index += 1
                marked = label == "defect" or random.Random(-index).random() < benign_share
                line = (scratch if label == "defect" else benign) if marked else None
                surface(index, line).save(folder / f"{label}_{i:03d}.png")
    return root
