"""Mask files -> class indices: `read_mask` (training, evaluation, predict) and the scans behind it.

numpy and PIL only, so deployment code can use it without torch. One rule for every caller:
- index and binary masks are read as single-channel values (8-bit `L`, palette-mode `P` indices
  as VOC stores them, bilevel `1`, 16-bit `I;16`/`I`); an RGB(A) mask whose pixels are all grey
  is accepted as values too (a common way of saving index masks by mistake);
- palette masks are read as RGB colours (`P` images through their palette);
- each value or colour goes through the record's map (`record.MaskRecord`); ones the map does
  not list make the whole file an error that names them (never clipped).

`scan_mask` computes the per-value (or per-colour) pixel histogram of a file once per process
(keyed by path, size and mtime); `mask_stats` maps it through a record, so loading, inspection
and splitting all count the same pixels that `read_mask` returns.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image

from edgetl.data.checks import default_workers, describe_error, quiet_pil
from edgetl.data.semantic.record import MaskRecord
from edgetl.data.targets import MaskTarget
from edgetl.errors import DataError

ScanKind = Literal["values", "colours"]
SINGLE_CHANNEL_MODES = frozenset({"L", "P", "1", "I", "I;16", "I;16L", "I;16B", "I;16N"})
_SHOWN = 8  # values or colours named in one problem line
_TABLE_MAX = 1 << 16  # values above this (32-bit masks) are mapped through np.unique, not a table


class MaskError(DataError):
    """A mask file that cannot be turned into class indices; `kind` says why.

    kinds: `unreadable`, `values_outside` (values not in the class list), `palette_unknown`
    (colours not in the class map), `not_grey` (colour pixels in an index mask), `mode`.
    `found` holds the offending values (ints) or colours ((r, g, b) tuples).
    """

    def __init__(self, message: str, *, kind: str, path: str,
                 found: Sequence[int | tuple[int, int, int]] = ()) -> None:
        super().__init__(message)
        self.kind = kind
        self.path = path
        self.found = list(found)


@dataclass(frozen=True)
class RawMask:
    """One mask file's size and pixel histogram: `keys` are values, or packed 0xRRGGBB colours."""

    path: str
    kind: ScanKind
    width: int = 0
    height: int = 0
    mode: str = ""
    keys: tuple[int, ...] = ()
    counts: tuple[int, ...] = ()
    error: MaskError | None = None


@dataclass(frozen=True)
class MaskStats:
    """A mask's pixels per output class index, ignored pixels, and unlisted values/colours."""

    width: int
    height: int
    counts: dict[int, int]
    ignored: int
    error: MaskError | None = None

    def present(self, classes: Sequence[str]) -> tuple[str, ...]:
        return tuple(sorted(classes[i] for i, n in self.counts.items() if n > 0))


def unpack(colour: int) -> tuple[int, int, int]:
    return (colour >> 16) & 255, (colour >> 8) & 255, colour & 255


def _pack(rgb: np.ndarray) -> np.ndarray:
    rgb = rgb.astype(np.uint32)
    return (rgb[..., 0] << 16) | (rgb[..., 1] << 8) | rgb[..., 2]


def _listed(found: Sequence[object]) -> str:
    shown = ", ".join(str(f) for f in found[:_SHOWN])
    return shown + (f" and {len(found) - _SHOWN} more" if len(found) > _SHOWN else "")


def mask_pixels(img: Image.Image, kind: ScanKind, path: str) -> np.ndarray:
    """HxW values (kind 'values') or HxW packed colours (kind 'colours') of a loaded image."""
    mode = img.mode
    if kind == "colours":
        if mode.startswith("I") or mode == "F":
            raise MaskError(f"{path}: a {mode} (16/32-bit) mask cannot hold palette colours",
                            kind="mode", path=path)
        return _pack(np.asarray(img.convert("RGB")))
    if mode == "1":
        return np.asarray(img, dtype=np.uint8)  # bilevel: 0/1
    if mode in SINGLE_CHANNEL_MODES:
        arr = np.asarray(img)
        if arr.dtype.kind not in "ui":
            arr = arr.astype(np.int64)
        if arr.dtype.kind == "i" and arr.size and int(arr.min()) < 0:
            raise MaskError(f"{path}: negative pixel values", kind="values_outside", path=path,
                            found=sorted({int(v) for v in np.unique(arr[arr < 0])}))
        return arr
    if mode in ("RGB", "RGBA", "LA"):
        arr = np.asarray(img)
        channels = arr[..., :1] if mode == "LA" else arr[..., :3]
        first = channels[..., 0]
        if mode != "LA" and not (np.array_equal(first, channels[..., 1])
                                 and np.array_equal(first, channels[..., 2])):
            raise MaskError(f"{path}: colour ({mode}) pixels in an index mask",
                            kind="not_grey", path=path)
        return first
    raise MaskError(f"{path}: mask mode {mode} is not supported (8/16-bit grey, P, or RGB)",
                    kind="mode", path=path)


def _open(path: str) -> Image.Image:
    try:
        img = Image.open(path)
        img.load()
    except Exception as exc:  # any decoder failure: the file is unreadable
        raise MaskError(f"{path}: {describe_error(exc)}", kind="unreadable", path=path) from exc
    return img


_SCANNED: dict[tuple[str, int, int, str], RawMask] = {}


def scan_mask(path: str, kind: ScanKind | Literal["auto"] = "auto") -> RawMask:
    """The file's histogram (values for single-channel masks under 'auto', else colours).

    Never raises: a file that cannot be read carries its `MaskError`. Cached per process.
    """
    try:
        stat = os.stat(path)
    except OSError as exc:
        return RawMask(path, "values", error=MaskError(
            f"{path}: cannot read ({exc.strerror or exc})", kind="unreadable", path=path))
    key = (path, stat.st_size, stat.st_mtime_ns, kind)
    if key in _SCANNED:
        return _SCANNED[key]
    resolved: ScanKind = "values" if kind == "auto" else kind
    try:
        with _open(path) as img:
            if kind == "auto" and img.mode not in SINGLE_CHANNEL_MODES:
                resolved = "colours"
            width, height, mode = img.width, img.height, img.mode
            pixels = mask_pixels(img, resolved, path).ravel()
        if resolved == "values" and (not pixels.size or int(pixels.max()) <= _TABLE_MAX):
            hist = np.bincount(pixels)
            keys = np.nonzero(hist)[0]
            counts = hist[keys]
        else:  # colours, and 32-bit values too large for a histogram table
            keys, counts = np.unique(pixels, return_counts=True)
        raw = RawMask(path, resolved, width, height, mode, tuple(int(k) for k in keys),
                      tuple(int(c) for c in counts))
    except MaskError as exc:
        raw = RawMask(path, resolved, error=exc)
    _SCANNED[key] = raw
    _SCANNED[(*key[:3], raw.kind)] = raw  # an 'auto' scan also serves the resolved kind
    return raw


def scan_masks(paths: Sequence[str], kind: ScanKind | Literal["auto"] = "auto", *,
               progress: Callable[[int], None] | None = None) -> list[RawMask]:
    """`scan_mask` for each path (threaded: PIL and numpy release the GIL), in input order."""
    out: list[RawMask] = []
    with quiet_pil(), ThreadPoolExecutor(max_workers=default_workers()) as pool:
        for raw in pool.map(lambda p: scan_mask(p, kind), paths):
            out.append(raw)
            if progress is not None:
                progress(1)
    return out


def mask_stats(raw: RawMask, record: MaskRecord) -> MaskStats:
    """Map a scanned histogram through `record`: pixels per class, ignored, or the error."""
    if raw.error is not None:
        return MaskStats(raw.width, raw.height, {}, 0, raw.error)
    if record.encoding == "palette":
        if raw.kind != "colours":
            raise ValueError("palette records need a colour scan")
        mapping: dict[int, int] = {(r << 16) | (g << 8) | b: out
                                   for (r, g, b), out in record.colour_map().items()}
    else:
        if raw.kind != "values":
            raise ValueError("index and binary records need a value scan")
        mapping = record.value_map()
    counts: dict[int, int] = {}
    ignored = 0
    unknown: list[int] = []
    for key, n in zip(raw.keys, raw.counts, strict=True):
        out = mapping.get(key)
        if out is None:
            unknown.append(key)
        elif out == record.ignore_index:
            ignored += n
        else:
            counts[out] = counts.get(out, 0) + n
    error = _unknown_error(raw.path, record, unknown) if unknown else None
    return MaskStats(raw.width, raw.height, dict(sorted(counts.items())), ignored, error)


def _unknown_error(path: str, record: MaskRecord, unknown: Sequence[int]) -> MaskError:
    if record.encoding == "palette":
        colours = [unpack(c) for c in unknown]
        return MaskError(f"{path}: colours not in the class map: {_listed(colours)}",
                         kind="palette_unknown", path=path, found=colours)
    listed = sorted(record.value_map())
    return MaskError(f"{path}: values outside the class list: {_listed(list(unknown))} "
                     f"(listed: {_listed(listed)})", kind="values_outside", path=path,
                     found=list(unknown))


def read_mask(target: MaskTarget, record: MaskRecord) -> np.ndarray:
    """HxW class indices of `target`'s mask (uint8 or int64 per `record.output_dtype()`).

    Ignored pixels hold `record.ignore_index`. Raises `MaskError` listing the values or colours
    the record does not list; nothing is clipped or guessed.
    """
    if target.encoding != record.encoding:
        raise DataError(f"{target.mask_path}: a {target.encoding} mask cannot be read with a "
                        f"{record.encoding} record")
    path = target.mask_path
    kind: ScanKind = "colours" if record.encoding == "palette" else "values"
    with quiet_pil(), _open(path) as img:
        pixels = mask_pixels(img, kind, path)
    dtype = np.dtype(record.output_dtype())
    top = int(pixels.max()) if pixels.size else 0
    if kind == "colours" or top > _TABLE_MAX:
        keys, inverse = np.unique(pixels.ravel(), return_inverse=True)
        if kind == "colours":
            cmap = record.colour_map()
            table = np.array([cmap.get(unpack(int(k)), -1) for k in keys], dtype=np.int64)
        else:
            vmap = record.value_map()
            table = np.array([vmap.get(int(k), -1) for k in keys], dtype=np.int64)
        mapped = table[inverse].reshape(pixels.shape)
    else:
        table = np.full(top + 1, -1, dtype=np.int64)
        for raw_value, out in record.values:
            if raw_value <= top:
                table[raw_value] = out
        mapped = table[pixels]
    if pixels.size and int(mapped.min()) < 0:
        found = sorted({int(v) for v in np.unique(pixels[mapped < 0])})
        raise _unknown_error(path, record, found)
    return mapped.astype(dtype, copy=False)
