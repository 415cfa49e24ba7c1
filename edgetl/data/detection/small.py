"""Objects too small at the input size, and what to do about it (issue 27).

An object whose shorter box side is under `SMALL_SIDE` px once the image is letterboxed to the
model's input counts as small. When more than `SMALL_SHARE` of the objects are small, `data
inspect` and `finetune` say so, with an input size at which the smallest third of the objects
reach `SMALL_SIDE` px. One count for both, from the boxes (an instance's box bounds its mask).
Which tasks have objects is asked of the task record (the tasks this package reads for).
`resolve_tile_rule` turns the recipe's `tile:` into the run's tile rule (`edgetl.tiling`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from edgetl.data.detection.geometry import size_error
from edgetl.tiling import TileRule, choose_rule

SMALL_SIDE = 16  # px at the input size
SMALL_SHARE = 1 / 3
MAX_SUGGESTED = 1536  # a larger input is rarely practical: tiles then


def letterbox_scale(size: tuple[int, int], input_size: int) -> float:
    """Scale of an (H, W) image letterboxed into an input_size square."""
    return min(input_size / size[0], input_size / size[1])


def small_objects(samples: Iterable[Any], input_size: int, tile: int | None = None
                  ) -> dict[str, Any]:
    """Objects counted at `input_size`: how many, how many small, and a suggested input size
    (None when no objects). `tile`: images are cut into tiles of this many source pixels,
    each letterboxed to the input (the scale a tile of the image gets)."""
    sides: list[float] = []
    for s in samples:
        size = s.target.image_size or size_error(s.path)[0]
        if not size:
            continue
        if tile is not None:
            size = (min(size[0], tile), min(size[1], tile))
        scale = letterbox_scale(size, input_size)
        sides += [min(x2 - x1, y2 - y1) * scale for x1, y1, x2, y2 in s.target.boxes]
    small = sum(side < SMALL_SIDE for side in sides)
    suggested = None
    if sides:
        third = sorted(sides)[len(sides) // 3]  # the smallest third's largest side
        if third > 0:
            suggested = min(MAX_SUGGESTED,
                            32 * math.ceil(input_size * SMALL_SIDE / third / 32))
    return {"objects": len(sides), "small": small, "small_side_px": SMALL_SIDE,
            "input_size": input_size, "suggested_input_size": suggested, "tile": tile}


def small_objects_advice(counts: dict[str, Any]) -> str | None:
    """The warning when more than a third of the objects are small, else None."""
    n, small = counts["objects"], counts["small"]
    if not n or small <= SMALL_SHARE * n:
        return None
    size, suggested = counts["input_size"], counts["suggested_input_size"]
    larger = (f"`model.input_size: {suggested}`" if suggested and suggested > size
              else "a larger `model.input_size`")
    tile = counts.get("tile")
    where = f" on {tile} px tiles" if tile else ""
    tiles = "smaller tiles (`tile.size`)" if tile else "tiles (`tile: {size: auto}`)"
    return (f"objects are small at {size} px{where}: {small} of {n} ({100 * small / n:.0f}%) "
            f"are under {SMALL_SIDE} px; use {larger} or {tiles}")


def object_sides(samples: Iterable[Any]) -> list[float]:
    """Every box's shorter side, in its image's own pixels (what a tile size is chosen from)."""
    return [min(x2 - x1, y2 - y1) for s in samples for x1, y1, x2, y2 in s.target.boxes]


def resolve_tile_rule(size: int | str, overlap: float, whole_image: bool,
                      samples: Iterable[Any], input_size: int) -> TileRule:
    """The recipe's `tile:` as a rule: its size, or with `auto` the size `choose_rule` picks
    from the (training) samples' boxes at `input_size`."""
    if size == "auto":
        return choose_rule(object_sides(samples), input_size, overlap, whole_image)
    return TileRule(int(size), overlap, whole_image)
