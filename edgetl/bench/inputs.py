"""Real inputs for bench: preprocessed images from the run's own data or from given files.

Never zeros or random tensors: some kernels (int8 especially, and anything with data-dependent
sparsity or denormals) run at a different speed on constant inputs. The images go through the
deployment reference transform with the artifact's own spec, exactly what `predict` feeds, and
a batch is the distinct images tiled to the batch size.
Order of sources: `--images FILE...`; the source run's split manifest (test split, then val,
then train); the run's recorded data origin.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetl.artifact.reference import preprocess_batch
from edgetl.data.samples import DataSet
from edgetl.errors import ArtifactError, DataError
from edgetl.spec import PreprocessSpec

DEFAULT_IMAGE_COUNT = 8  # distinct images per batch before tiling
_SPLIT_ORDER = ("test", "val", "train")


def _pick(data: DataSet, count: int) -> list[str]:
    """Up to `count` images of the first split that has any (test, val, train), round-robin
    over labels so a batch looks like real traffic."""
    for split in _SPLIT_ORDER:
        samples = data.by_split(split)
        if samples:
            break
    else:
        samples = list(data.samples)
    by_label: dict[str, list[str]] = {}
    for sample in sorted(samples, key=lambda s: s.path):
        by_label.setdefault(sample.label, []).append(sample.path)
    picked: list[str] = []
    while len(picked) < count and any(by_label.values()):
        for paths in by_label.values():
            if paths and len(picked) < count:
                picked.append(paths.pop(0))
    return picked


def _open(source: Path | str) -> DataSet:
    """A run folder's stored split, or a data origin."""
    if isinstance(source, Path):
        from edgetl.runfolder import RunFolder

        return RunFolder(source).dataset()
    from edgetl.data.sources import load_data

    return load_data(source, check_images=False)


def find_images(images: Sequence[str | Path] | None, run: Path | None,
                data_origin: str | None, count: int = DEFAULT_IMAGE_COUNT) -> list[str]:
    """Up to `count` image paths: the given files, else the run's split, else its data."""
    if images:
        missing = [str(p) for p in images if not Path(p).is_file()]
        if missing:
            raise DataError(f"--images: no such file(s): {', '.join(missing[:3])}")
        return [str(p) for p in images][:max(count, 1)]
    tried: list[str] = []
    for source in (run, data_origin):
        if not source:
            continue
        try:
            found = _pick(_open(source), count)
        except (DataError, ArtifactError) as exc:
            tried.append(f"{source} ({exc.message})")
            continue
        if found:
            return found
        tried.append(f"{source} (no images)")
    raise DataError(
        "bench needs real images and found none"
        + (f": tried {'; '.join(tried)}" if tried else " (the artifact records no source run)"),
        "pass --images FILE... (a few representative images)",
    )


def tile(batch_of_distinct: np.ndarray, size: int) -> np.ndarray:
    """Repeat distinct samples along axis 0 until there are `size` of them (contiguous)."""
    reps = -(-size // len(batch_of_distinct))
    return np.ascontiguousarray(np.concatenate([batch_of_distinct] * reps, axis=0)[:size])


def tile_paths(paths: Sequence[str], size: int) -> list[str]:
    return [paths[i % len(paths)] for i in range(size)]


def preprocessed_batch(paths: Sequence[str], spec: PreprocessSpec, size: int) -> np.ndarray:
    """The model input for `size` samples, made from the distinct images in `paths`."""
    distinct = preprocess_batch(list(paths[:size]), spec)
    return tile(distinct, size)


ACTIVATION_FACTOR = 4  # a batch's activations and copies take several times its input


def check_batch_memory(spec: PreprocessSpec, batch: int) -> None:
    """Refuse a batch whose input alone, times a small factor for the model's activations,
    exceeds the memory available now: `--batch 100000` used to end in a MemoryError (exit 70)
    after the set-up, or in the kernel's OOM killer."""
    import psutil

    from edgetl.errors import UsageError

    height, width = spec.input_size
    itemsize = 1 if spec.graph_input == "uint8_raw" else 4
    need = batch * 3 * height * width * itemsize
    available = psutil.virtual_memory().available
    if need * ACTIVATION_FACTOR > available:
        raise UsageError(
            f"--batch {batch} needs {need / 2**30:.1f} GiB for its {height}x{width} inputs alone "
            f"and several times that to run; {available / 2**30:.1f} GiB is available",
            "use a smaller --batch")
