"""Decode-once image cache: every image decoded and resized a single time, reused by all epochs.

Users' data sets (hundreds to a few thousand images per class) fit in memory after one decode, so
the per-epoch cost becomes crop + flip + normalise on small uint8 tensors. The stored size is the
spec's resize step (at least the training crop), done with the same torchvision op as the
evaluation transform, so centre-cropping a cached image gives exactly the evaluation input.

The cache is also kept on disk (`<cache_dir>/<key>.pt`, uint8 tensors via torch.save with
weights_only loading), keyed by the file paths, sizes, modification times and the spec's geometry:
a changed file or spec gives a new key and a rebuild; nothing changed means a reuse.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch

from edgetl.data.transforms import load_image, resize_transform
from edgetl.io import atomic_write_with
from edgetl.spec import PreprocessSpec


def cache_key(paths: list[str], spec: PreprocessSpec) -> str:
    """Changes when any file's path/size/mtime or the spec's decode+resize rules change."""
    digest = hashlib.sha256()
    geometry = {k: v for k, v in spec.to_dict().items()
                if k in ("color_mode", "resize_mode", "resize_size", "interpolation", "antialias",
                         "decoder", "high_bit_depth")}
    geometry["orientation"] = "exif"  # caches from before images were turned upright differ
    digest.update(json.dumps(geometry, sort_keys=True).encode())
    for path in paths:
        stat = os.stat(path)
        digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:24]


def _decode_resized(path: str, spec: PreprocessSpec, resize: Callable) -> torch.Tensor:
    return resize(load_image(path, spec)).contiguous()


def build_cache(
    paths: list[str],
    spec: PreprocessSpec,
    cache_dir: str | Path | None = None,
    progress: Callable[[int], None] | None = None,
    workers: int = 2,
) -> tuple[list[torch.Tensor], str]:
    """Decoded, resized uint8 CHW tensors for `paths`, plus 'built' or 'reused'."""
    key = cache_key(paths, spec)
    file = Path(cache_dir) / f"images-{key}.pt" if cache_dir else None
    if file is not None and file.is_file():
        stored = torch.load(file, weights_only=True)
        if len(stored) == len(paths):
            if progress:
                progress(len(paths))
            return list(stored), "reused"
    resize = resize_transform(spec)
    out: list[torch.Tensor] = [torch.empty(0)] * len(paths)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for index, tensor in enumerate(pool.map(lambda p: _decode_resized(p, spec, resize), paths)):
            out[index] = tensor
            if progress:
                progress(1)
    if file is not None:
        atomic_write_with(file, lambda tmp: torch.save(out, tmp))
    return out, "built"
