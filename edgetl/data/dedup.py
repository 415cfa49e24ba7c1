"""Exact and near-duplicate images, clustered so a splitter can keep each cluster in one split.

Exact duplicates share the sha256 of their bytes. A near-duplicate pair needs two things:
1. perceptual hashes (imagehash `phash`, 64 bits) at Hamming distance <= `threshold`, and
2. 16x16 grayscale thumbnails (box-filtered, each scaled to zero mean and unit std) whose mean
   absolute difference is <= `MAX_THUMB_MAD`.
Pairs are joined into clusters with union-find, so A~B and B~C puts A, B, C together.

Why both tests, measured with this module on the 2,624 ELPV cells (all distinct cells) and on
600 copies of random cells ("moderate": resized to 150-600 px, bilinear, JPEG quality 60-95;
"harsh": 96-900 px, bilinear or bicubic, JPEG quality 40-95 or PNG; "big": 1200-2400 px JPEG):
- phash distance of copies: moderate max 4; harsh max 6; big max 6.
- phash alone cannot separate different cells: 48 cells have another cell at distance 0, 1,673
  pairs are within 6, and union-find over those pairs builds one cluster of 352 cells
  (neighbouring cells of a module look alike; poly cells cut from one ingot share grain).
- thumbnail MAD of copies: moderate max 0.070 (99% <= 0.052); harsh 99% <= 0.071, max 0.091;
  big max 0.044. Different cells whose phash is within 8: min 0.041, 1st percentile 0.062,
  median 0.25.
- defaults (phash <= 6 and MAD <= 0.07) catch 100% of moderate and big copies and 98.8% of
  harsh ones; on ELPV they keep 58 pairs in 36 clusters (92 cells, the largest 8 cells):
  visually near-identical neighbours, kept together on purpose.
Limits: images under about 64 px give noisy thumbnails (a 44x33 copy of a 64x48 image reached
MAD 0.093), and crops, flips or rotations are not detected.
Pairs are found with chunked numpy popcounts over uint64 hashes (2.6k images: well under a
second); scanning (read, sha256, decode, hash) is threaded and cached per process.
"""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from edgetl.artifact.orientation import orientation, upright_size
from edgetl.data.checks import default_workers, describe_error, quiet_pil

DEFAULT_NEAR_DUP_THRESHOLD = 6
MAX_THUMB_MAD = 0.07
THUMB_SIZE = 16
_DRAFT_SIZE = (512, 512)  # big JPEGs decode at a reduced scale still >= this (keeps hashes stable)


@dataclass(frozen=True)
class ImageInfo:
    """What a scan learns about one file; `error` set (and hashes None) when it does not decode."""

    path: str
    sha256: str | None = None
    width: int = 0
    height: int = 0
    mode: str = ""
    format: str = ""
    phash: int | None = None
    thumb: np.ndarray | None = field(default=None, repr=False, compare=False)
    error: str | None = None
    orientation: int = 1  # EXIF Orientation; width and height are the upright picture's


@dataclass(frozen=True)
class DuplicateCluster:
    """Indices (into the scanned list) of images that must stay together."""

    members: tuple[int, ...]
    exact: bool  # every member has the same bytes
    max_distance: int  # largest phash distance of a linking pair (0 when all exact)


_SCANNED: dict[tuple[str, int, int], ImageInfo] = {}


def _to_gray(img: Image.Image) -> Image.Image:
    """8-bit grayscale; 16-bit and float images are stretched to 0..255 instead of clipped."""
    if img.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(img, dtype=np.float64)
        low, high = float(arr.min()), float(arr.max())
        arr = (arr - low) * (255.0 / (high - low)) if high > low else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), mode="L")
    return img.convert("L")


def _phash_int(gray: Image.Image) -> int:
    import imagehash  # imports scipy on first use: kept out of module import

    bits = imagehash.phash(gray).hash.ravel()
    return int.from_bytes(np.packbits(bits).tobytes(), "big")


def _thumb(gray: Image.Image) -> np.ndarray:
    small = gray.resize((THUMB_SIZE, THUMB_SIZE), Image.Resampling.BOX)
    arr = np.asarray(small, dtype=np.float32).ravel()
    return (arr - arr.mean()) / max(float(arr.std()), 1e-3)


def scan_image(path: str) -> ImageInfo:
    """Read, hash and decode one file; never raises for a bad image (sets `error`)."""
    try:
        stat = os.stat(path)
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        return ImageInfo(path=path, error=f"cannot read ({exc.strerror or exc})")
    key = (path, stat.st_size, stat.st_mtime_ns)
    if key in _SCANNED:
        return _SCANNED[key]
    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as img:
            width, height = upright_size(img)
            mode, fmt, turn = img.mode, img.format or "", orientation(img)
            if fmt == "JPEG":
                img.draft(img.mode, _DRAFT_SIZE)
            img.load()
            gray = _to_gray(img)
        info = ImageInfo(path=path, sha256=digest, width=width, height=height, mode=mode,
                         format=fmt, phash=_phash_int(gray), thumb=_thumb(gray),
                         orientation=turn)
    except Exception as exc:  # any decoder failure is reported, not raised
        info = ImageInfo(path=path, sha256=digest, error=describe_error(exc))
    _SCANNED[key] = info
    return info


def scan_images(
    paths: Sequence[str],
    *,
    progress: Callable[[int], None] | None = None,
    workers: int | None = None,
) -> list[ImageInfo]:
    """`scan_image` for each path (threaded), in input order; `progress(1)` after each."""
    results: list[ImageInfo] = []
    with quiet_pil(), ThreadPoolExecutor(max_workers=workers or default_workers()) as pool:
        for info in pool.map(scan_image, paths):
            results.append(info)
            if progress is not None:
                progress(1)
    return results


def popcount64(values: np.ndarray) -> np.ndarray:
    """Set bits per uint64 element (numpy >= 2 has it built in; a byte table otherwise)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(values)
    table = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)
    as_bytes = values.reshape(*values.shape, 1).view(np.uint8)
    return table[as_bytes].sum(axis=-1, dtype=np.uint8)


class UnionFind:
    """Disjoint sets over 0..n-1 with path halving and union by size."""

    def __init__(self, n: int) -> None:
        self.parent = list(range(n))
        self.size = [1] * n

    def find(self, i: int) -> int:
        parent = self.parent
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    def union(self, a: int, b: int) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra == rb:
            return
        if self.size[ra] < self.size[rb]:
            ra, rb = rb, ra
        self.parent[rb] = ra
        self.size[ra] += self.size[rb]

    def components(self) -> list[list[int]]:
        """Every set with two or more members, members sorted, sets ordered by first member."""
        sets: dict[int, list[int]] = {}
        for i in range(len(self.parent)):
            sets.setdefault(self.find(i), []).append(i)
        return sorted((m for m in sets.values() if len(m) > 1), key=lambda m: m[0])


def exact_duplicate_groups(infos: Sequence[ImageInfo]) -> list[list[int]]:
    """Indices of files with identical bytes, groups of two or more."""
    by_digest: dict[str, list[int]] = {}
    for i, info in enumerate(infos):
        if info.sha256 is not None:
            by_digest.setdefault(info.sha256, []).append(i)
    return sorted((g for g in by_digest.values() if len(g) > 1), key=lambda g: g[0])


def near_duplicate_pairs(
    infos: Sequence[ImageInfo],
    threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    max_mad: float = MAX_THUMB_MAD,
) -> list[tuple[int, int, int]]:
    """(i, j, phash distance) with i < j for every near-duplicate pair; none if threshold < 0."""
    index = np.array([i for i, info in enumerate(infos) if info.phash is not None], dtype=np.int64)
    if threshold < 0 or len(index) < 2:
        return []
    hashes = np.array([infos[i].phash for i in index], dtype=np.uint64)
    thumbs = np.stack([infos[i].thumb for i in index]).astype(np.float32)
    n = len(index)
    rows = max(1, (1 << 22) // n)  # bounded memory: rows * n uint64 per chunk
    pairs: list[tuple[int, int, int]] = []
    for start in range(0, n, rows):
        block = hashes[start:start + rows]
        dist = popcount64(block[:, None] ^ hashes[None, :])
        a, b = np.nonzero(dist <= threshold)
        a_global = a + start
        keep = b > a_global
        a_global, b, d = a_global[keep], b[keep], dist[a[keep], b[keep]]
        for lo in range(0, len(a_global), 1 << 16):  # confirm candidates in bounded batches
            sa, sb = a_global[lo:lo + (1 << 16)], b[lo:lo + (1 << 16)]
            mad = np.abs(thumbs[sa] - thumbs[sb]).mean(axis=1)
            ok = mad <= max_mad
            pairs.extend(zip(index[sa[ok]].tolist(), index[sb[ok]].tolist(),
                             d[lo:lo + (1 << 16)][ok].astype(int).tolist(), strict=True))
    return sorted(pairs)


def duplicate_clusters(
    infos: Sequence[ImageInfo],
    threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    max_mad: float = MAX_THUMB_MAD,
) -> list[DuplicateCluster]:
    """Union of exact-duplicate groups and near-duplicate pairs, as clusters of 2+ images."""
    finder = UnionFind(len(infos))
    for group in exact_duplicate_groups(infos):
        for other in group[1:]:
            finder.union(group[0], other)
    pair_distance: dict[int, int] = {}
    for i, j, d in near_duplicate_pairs(infos, threshold, max_mad):
        finder.union(i, j)
        pair_distance[i] = max(pair_distance.get(i, 0), d)
    clusters: list[DuplicateCluster] = []
    for members in finder.components():
        digests = {infos[m].sha256 for m in members}
        exact = len(digests) == 1 and None not in digests
        distance = 0 if exact else max((pair_distance.get(m, 0) for m in members), default=0)
        clusters.append(DuplicateCluster(tuple(members), exact, distance))
    return clusters


def clusters_for_paths(
    paths: Iterable[str],
    threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    *,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[ImageInfo], list[DuplicateCluster]]:
    """Scan `paths` and cluster them: the one call the splitter and the inspector need."""
    infos = scan_images(list(paths), progress=progress)
    return infos, duplicate_clusters(infos, threshold)
