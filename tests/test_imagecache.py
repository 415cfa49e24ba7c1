"""Decode-once cache: exact evaluation inputs, reused when nothing changed, rebuilt otherwise."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from edgetl.data.transforms import center_crop_transform, geometry_transform, load_image
from edgetl.spec import PreprocessSpec
from edgetl.train.imagecache import build_cache, cache_key


def _images(folder: Path, n: int = 4) -> list[str]:
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        arr = rng.integers(0, 255, size=(90 + 7 * i, 120, 3), dtype=np.uint8)
        path = folder / f"im{i}.png"
        Image.fromarray(arr).save(path)
        paths.append(str(path))
    return paths


@pytest.fixture
def spec() -> PreprocessSpec:
    return PreprocessSpec.from_crop_pct(64, 0.875, "bicubic", (0.5,) * 3, (0.5,) * 3)


def test_cropped_cache_equals_evaluation_geometry(tmp_path: Path, spec: PreprocessSpec) -> None:
    paths = _images(tmp_path)
    cached, how = build_cache(paths, spec)
    assert how == "built"
    crop, geometry = center_crop_transform(spec), geometry_transform(spec)
    for path, image in zip(paths, cached, strict=True):
        assert image.dtype == torch.uint8 and min(image.shape[1:]) == spec.resize_size[0]
        assert torch.equal(crop(image), geometry(load_image(path, spec)))


def test_reused_when_unchanged_rebuilt_when_a_file_or_spec_changes(tmp_path: Path,
                                                                   spec: PreprocessSpec) -> None:
    (tmp_path / "img").mkdir()
    paths = _images(tmp_path / "img")
    store = tmp_path / "cache"
    first, how = build_cache(paths, spec, store)
    assert how == "built" and len(list(store.glob("*.pt"))) == 1
    again, how = build_cache(paths, spec, store)
    assert how == "reused"
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))

    # Rewrite one image with new content (and a new mtime): the key changes, the cache rebuilds.
    key_before = cache_key(paths, spec)
    Image.fromarray(np.zeros((50, 50, 3), dtype=np.uint8)).save(paths[2])
    stat = os.stat(paths[2])
    os.utime(paths[2], ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert cache_key(paths, spec) != key_before
    rebuilt, how = build_cache(paths, spec, store)
    assert how == "built"
    assert int(rebuilt[2].max()) == 0 and torch.equal(rebuilt[0], first[0])

    # A different resize rule is a different cache; normalisation changes are not.
    assert cache_key(paths, spec.with_overrides(interpolation="bilinear")) != cache_key(paths, spec)
    assert cache_key(paths, spec.with_overrides(mean=(0.4, 0.4, 0.4))) == cache_key(paths, spec)
