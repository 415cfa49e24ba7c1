"""Instance masks: polygons checked and clipped to the image, RLE and id-PNG helpers.

Polygons are flat [x1, y1, x2, y2, ...] lists in pixels (COCO style). A polygon reaching outside
the image is clipped to it (Sutherland-Hodgman against the image rectangle, exact for any
polygon, convex or not, up to zero-width slivers along the border), not squashed by clamping its
vertices, which would change its area. RLE work (area, box, decode, encode) is pycocotools'.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence

import numpy as np
from PIL import Image

from edgetl.data.detection import problems as P
from edgetl.data.detection.geometry import Box, Size
from edgetl.data.targets import InstanceMask

Point = tuple[float, float]
Polygon = tuple[float, ...]


def polygon_area(flat: Sequence[float]) -> float:
    """Area enclosed by a flat polygon (shoelace; orientation ignored)."""
    xs, ys = flat[0::2], flat[1::2]
    n = len(xs)
    twice = sum(xs[i] * ys[(i + 1) % n] - xs[(i + 1) % n] * ys[i] for i in range(n))
    return abs(twice) / 2.0


def _clip_edge(points: list[Point], inside: Callable[[Point], bool],
               cross: Callable[[Point, Point], Point]) -> list[Point]:
    out: list[Point] = []
    for i, current in enumerate(points):
        previous = points[i - 1]
        if inside(current):
            if not inside(previous):
                out.append(cross(previous, current))
            out.append(current)
        elif inside(previous):
            out.append(cross(previous, current))
    return out


def _at_x(x: float) -> Callable[[Point, Point], Point]:
    def cross(a: Point, b: Point) -> Point:
        t = (x - a[0]) / (b[0] - a[0])
        return x, a[1] + t * (b[1] - a[1])
    return cross


def _at_y(y: float) -> Callable[[Point, Point], Point]:
    def cross(a: Point, b: Point) -> Point:
        t = (y - a[1]) / (b[1] - a[1])
        return a[0] + t * (b[0] - a[0]), y
    return cross


def clip_polygon(flat: Sequence[float], width: float, height: float) -> Polygon:
    """The part of a polygon inside [0, width] x [0, height] (empty tuple when none)."""
    points: list[Point] = list(zip(flat[0::2], flat[1::2], strict=True))
    for inside, cross in ((lambda p: p[0] >= 0.0, _at_x(0.0)),
                          (lambda p: p[0] <= width, _at_x(float(width))),
                          (lambda p: p[1] >= 0.0, _at_y(0.0)),
                          (lambda p: p[1] <= height, _at_y(float(height)))):
        if not points:
            break
        points = _clip_edge(points, inside, cross)
    return tuple(v for p in points for v in p)


def check_polygons(polygons: Sequence[Sequence[float]], size: Size
                   ) -> tuple[tuple[Polygon, ...], list[tuple[str, str]]]:
    """The usable parts of an instance's polygons and (kind, detail) for each one changed."""
    height, width = size
    kept: list[Polygon] = []
    issues: list[tuple[str, str]] = []
    for k, raw in enumerate(polygons):
        try:
            flat = tuple(float(v) for v in raw)
        except (TypeError, ValueError):
            issues.append((P.POLYGON_DROPPED, f"polygon {k}: not a list of numbers"))
            continue
        if len(flat) < 6 or len(flat) % 2:
            issues.append((P.POLYGON_DROPPED, f"polygon {k}: fewer than 3 points "
                                              f"({len(flat)} coordinates)"))
            continue
        if not all(math.isfinite(v) for v in flat):
            issues.append((P.POLYGON_DROPPED, f"polygon {k}: not finite"))
            continue
        inside = all(0.0 <= x <= width for x in flat[0::2]) and \
            all(0.0 <= y <= height for y in flat[1::2])
        clipped = flat if inside else clip_polygon(flat, width, height)
        if len(clipped) < 6 or polygon_area(clipped) <= 0.0:
            where = "no area" if inside else f"no area inside the {width}x{height} image"
            issues.append((P.POLYGON_DROPPED, f"polygon {k}: {where}"))
            continue
        if not inside:
            issues.append((P.POLYGON_CLIPPED, f"polygon {k} reaches outside the {width}x{height} "
                                              "image: clipped to it"))
        kept.append(clipped)
    return tuple(kept), issues


def polygons_box(polygons: Sequence[Sequence[float]]) -> Box:
    """Extents of all vertices."""
    xs = [x for p in polygons for x in p[0::2]]
    ys = [y for p in polygons for y in p[1::2]]
    return min(xs), min(ys), max(xs), max(ys)


def _mask_utils():  # pycocotools imports numpy's C API on first use only
    from pycocotools import mask as mask_utils

    return mask_utils


def compressed_rle(rle: dict, size: Size | None = None) -> dict:
    """A pycocotools-ready RLE (compressed counts) from a compressed or uncompressed one."""
    height, width = size or tuple(rle["size"])
    if isinstance(rle.get("counts"), list):
        return _mask_utils().frPyObjects(rle, height, width)
    counts = rle["counts"]
    return {"size": [height, width], "counts": counts.encode() if isinstance(counts, str)
            else counts}


def rle_box(rle: dict) -> Box | None:
    """Pixel extents (x1, y1, x2, y2) of an RLE mask; None when it is empty."""
    utils = _mask_utils()
    compressed = compressed_rle(rle)
    if int(utils.area(compressed)) == 0:
        return None
    x, y, w, h = (float(v) for v in utils.toBbox(compressed))
    return x, y, x + w, y + h


def encode(mask: np.ndarray) -> dict:
    """JSON-ready compressed RLE of a boolean (H, W) mask."""
    rle = _mask_utils().encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}


def id_image_rles(ids: np.ndarray) -> dict[int, dict]:
    """JSON-ready compressed RLE of every non-zero value of an id image, in one pass.

    The column-major runs of the whole image are found once, so the cost does not grow with
    the number of instances, as encoding each instance's full-size mask separately does.
    """
    height, width = ids.shape
    flat = np.ascontiguousarray(ids.T).ravel()
    starts = np.concatenate(([0], np.flatnonzero(flat[1:] != flat[:-1]) + 1))
    lengths = np.diff(np.concatenate((starts, [flat.size])))
    values = flat[starts]
    keep = values != 0
    runs: dict[int, list[tuple[int, int]]] = {}
    for value, start, length in zip(values[keep].tolist(), starts[keep].tolist(),
                                    lengths[keep].tolist(), strict=True):
        runs.setdefault(value, []).append((start, length))
    utils = _mask_utils()
    out: dict[int, dict] = {}
    for value, pieces in runs.items():
        counts, end = [], 0
        for start, length in pieces:
            counts += [start - end, length]
            end = start + length
        if end < flat.size:
            counts.append(flat.size - end)
        rle = utils.frPyObjects({"size": [height, width], "counts": counts}, height, width)
        out[value] = {"size": [height, width], "counts": rle["counts"].decode("ascii")}
    return out


def polygons_rle(polygons: Sequence[Sequence[float]], size: Size) -> dict:
    utils = _mask_utils()
    return utils.merge(utils.frPyObjects([list(p) for p in polygons], size[0], size[1]))


def read_id_png(path: str) -> np.ndarray:
    """The instance ids of a mask PNG (8 or 16 bit, or palette indices) as a 2-D array.

    Raises ValueError for colour masks: an RGB value is not an instance number.
    """
    with Image.open(path) as img:
        if img.mode not in ("L", "P", "I", "I;16", "I;16B", "I;16L", "1"):
            raise ValueError(f"mode {img.mode}: an instance mask must be one 8- or 16-bit "
                             "channel")
        return np.asarray(img).astype(np.int64)


def _decode(rle: dict) -> np.ndarray:
    # pycocotools 2.0.x calls np.array(copy=False) inside decode: numpy 2 warns about it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return _mask_utils().decode(rle).astype(bool)


def mask_array(mask: InstanceMask, size: Size) -> np.ndarray:
    """The boolean (H, W) pixels of one instance mask."""
    if mask.polygons is not None:
        return _decode(polygons_rle(mask.polygons, size))
    if mask.rle is not None:
        return _decode(compressed_rle(mask.rle, size))
    return read_id_png(str(mask.id_png)) == mask.id_value


def mask_area(mask: InstanceMask, size: Size) -> int:
    """Pixels of one instance (rasterised like COCO does for polygons)."""
    utils = _mask_utils()
    if mask.polygons is not None:
        return int(utils.area(polygons_rle(mask.polygons, size)))
    if mask.rle is not None:
        return int(utils.area(compressed_rle(mask.rle, size)))
    return int((read_id_png(str(mask.id_png)) == mask.id_value).sum())


def instance_rles(masks: Sequence[InstanceMask], size: Size) -> list[dict]:
    """JSON-ready RLE of each of an image's instance masks, in order. Instances of one id
    PNG are encoded from a single read of it (hundreds of nuclei cost one pass)."""
    files = {m.id_png for m in masks if m.id_png is not None}
    by_file = {path: id_image_rles(read_id_png(str(path))) for path in files}
    empty = encode(np.zeros(size, dtype=bool))
    return [by_file[m.id_png].get(int(m.id_value), empty) if m.id_png is not None
            else encode(mask_array(m, size)) for m in masks]


def instance_id_map(masks: Sequence[InstanceMask], size: Size) -> np.ndarray:
    """[H, W] int32: 0 background, k + 1 on instance k of `masks`. Training needs one map
    per image; where instances overlap (polygons may), the later one keeps the pixel."""
    ids = np.zeros(size, dtype=np.int32)
    files = {m.id_png for m in masks if m.id_png is not None}
    if len(files) == 1 and all(m.id_png is not None for m in masks):
        raw = read_id_png(str(next(iter(files))))
        table = np.zeros(int(raw.max()) + 1, dtype=np.int32)
        for k, m in enumerate(masks):
            if 0 < int(m.id_value) < len(table):
                table[int(m.id_value)] = k + 1
        return table[raw]
    for k, m in enumerate(masks):
        ids[mask_array(m, size)] = k + 1
    return ids
