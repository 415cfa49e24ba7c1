"""Boxes and image sizes checked against the image they belong to, the same way for every format.

Readers keep coordinates in the original image's pixels (x right, y down, box edges, not pixel
centres) exactly as the annotation writes them: no format's 1-based convention is applied,
because tools that write Pascal VOC disagree on it and a silent one-pixel shift would be worse
than none. What does not fit the image is clipped to it; what has no area left is dropped.
"""

from __future__ import annotations

import math
import os

from PIL import Image

from edgetl.artifact.orientation import upright_size
from edgetl.data.checks import describe_error, quiet_pil

Size = tuple[int, int]  # (height, width), the order of BoxTarget.image_size
Box = tuple[float, float, float, float]

_SIZES: dict[tuple[str, int, int], Size] = {}


def image_size(path: str) -> Size:
    """(height, width) from the file's header (no pixel decode); raises OSError when unreadable.

    Cached per process by (path, size, mtime): readers, the inspector and the tiler ask often.
    """
    stat = os.stat(path)
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key not in _SIZES:
        try:
            with quiet_pil(), Image.open(path) as img:
                width, height = upright_size(img)  # EXIF-turned, as annotations are drawn
                _SIZES[key] = (int(height), int(width))
        except Exception as exc:  # PIL raises many types for a bad header; all mean unreadable
            raise OSError(describe_error(exc)) from exc
    return _SIZES[key]


def size_error(path: str) -> tuple[Size | None, str | None]:
    """`image_size` that returns (None, reason) instead of raising."""
    try:
        return image_size(path), None
    except FileNotFoundError:
        return None, "file not found"
    except OSError as exc:
        return None, str(exc) if str(exc).startswith("cannot") else f"cannot read ({exc})"


def fmt_box(box: Box) -> str:
    return "[" + ", ".join(f"{v:g}" for v in box) + "]"


def check_box(box: Box, size: Size) -> tuple[Box | None, str | None]:
    """(box to use or None, what was wrong or None) for a box against an (H, W) image.

    Non-finite or inverted boxes and boxes with no area inside the image are dropped; a box
    reaching outside the image is clipped to it. The message says which and why.
    """
    height, width = size
    if len(box) != 4 or not all(math.isfinite(v) for v in box):
        return None, f"{box}: not four finite numbers"
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return None, f"{fmt_box(box)}: zero or negative width/height"
    clipped = (min(max(x1, 0.0), width), min(max(y1, 0.0), height),
               min(max(x2, 0.0), width), min(max(y2, 0.0), height))
    if clipped == tuple(box):
        return clipped, None
    where = f"{fmt_box(box)} outside the {width}x{height} image"
    if clipped[2] <= clipped[0] or clipped[3] <= clipped[1]:
        return None, f"{where}: no area left after clipping"
    return clipped, f"{where}: clipped to {fmt_box(clipped)}"


def box_area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])
