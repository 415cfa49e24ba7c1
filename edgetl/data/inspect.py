"""What is in a data set before anyone trains on it: counts, sizes, bad files, duplicates.

One scan per image (read, sha256, full decode, perceptual hash; see `dedup.py`) feeds the whole
report, so `edgetl data inspect` decodes each file once. The report is a plain dict, ready for
JSON; `edgetl.cli.data_cmd` renders it as tables.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from edgetl.artifact.orientation import rotation_summary
from edgetl.artifact.reference import HIGH_BIT_DEPTH_MODES
from edgetl.data.dedup import (
    DEFAULT_NEAR_DUP_THRESHOLD,
    MAX_THUMB_MAD,
    DuplicateCluster,
    clusters_for_paths,
    exact_duplicate_groups,
)
from edgetl.data.grouping import group_report
from edgetl.data.samples import SPLITS, DataSet
from edgetl.data.split import cluster_entry, crosses, label_conflicts

IMBALANCE_WARN_RATIO = 3.0
_UNREADABLE_PREFIXES = ("cannot decode", "cannot read")


def _size_summary(sizes: list[tuple[int, int]], top: int = 10) -> dict:
    if not sizes:
        return {"distinct": 0, "width": None, "height": None, "most_common": []}
    arr = np.array(sizes)

    def stats(column: np.ndarray) -> dict:
        return {"min": int(column.min()), "median": float(np.median(column)),
                "max": int(column.max())}

    common = Counter(sizes).most_common(top)
    return {
        "distinct": len(set(sizes)),
        "width": stats(arr[:, 0]),
        "height": stats(arr[:, 1]),
        "most_common": [{"width": w, "height": h, "count": n} for (w, h), n in common],
    }


def imbalance_ratio(counts: dict[str, int]) -> float | None:
    """Largest over smallest class count; None when a class is empty or there are none."""
    values = list(counts.values())
    if not values or min(values) == 0:
        return None
    return max(values) / min(values)


def inspect_class_data(ds: DataSet, input_size: int | None = None, *,
                       near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
                       progress: Callable[[int], None] | None = None) -> dict:
    """`inspect_data` as the task's `data_inspector` (`input_size`: not used; `data inspect`
    refuses it for a task that is not dense)."""
    return inspect_data(ds, near_dup_threshold=near_dup_threshold, progress=progress)


def inspect_data(
    ds: DataSet,
    *,
    near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """The inspection report of `ds` (decodes every sample once; hashes are cached)."""
    samples = ds.samples
    infos, clusters = clusters_for_paths([s.path for s in samples], near_dup_threshold,
                                         progress=progress)
    ok = [i for i, info in enumerate(infos) if info.error is None]
    unreadable = [{"path": infos[i].path, "reason": infos[i].error}
                  for i in range(len(infos)) if infos[i].error is not None]
    unreadable += [{"path": p, "reason": r} for p, r in ds.skipped
                   if r.startswith(_UNREADABLE_PREFIXES)]
    other_skipped = [{"path": p, "reason": r} for p, r in ds.skipped
                     if not r.startswith(_UNREADABLE_PREFIXES)]
    readable = ds.replace(samples=[samples[i] for i in ok])
    classes = readable.counts()
    splits = ({name: readable.counts(name) for name in SPLITS if readable.by_split(name)}
              if ds.has_splits else None)
    entries = [cluster_entry(c, samples) for c in clusters]
    exact = [cluster_entry(DuplicateCluster(tuple(g), True, 0), samples)
             for g in exact_duplicate_groups(infos)]
    near = [e for e in entries if not e["exact"]]
    across = [e for e in entries if crosses(e["splits"])] if ds.has_splits else None
    conflicts = label_conflicts(entries)
    ratio = imbalance_ratio(classes)

    notes: list[str] = []
    if unreadable:
        notes.append(f"{len(unreadable)} unreadable image file(s)")
    if ratio is None:
        notes.append("a class has no readable images")
    elif ratio > IMBALANCE_WARN_RATIO:
        notes.append(f"class imbalance {ratio:.1f}:1 (largest/smallest) exceeds "
                     f"{IMBALANCE_WARN_RATIO:g}:1: consider class weights or more data")
    deep = Counter(infos[i].mode for i in ok if infos[i].mode in HIGH_BIT_DEPTH_MODES)
    if deep:
        modes = ", ".join(f"{n} {m}" for m, n in deep.most_common())
        notes.append(f"{sum(deep.values())} high-bit-depth image(s) ({modes}): training and "
                     "predict refuse them unless the recipe sets preprocess.high_bit_depth: "
                     "scale (0-65535 read as 0-255; PIL alone would clip them at 255)")
    rotated, rotated_note = rotation_summary([infos[i] for i in ok])
    if rotated_note:
        notes.append(rotated_note)
    if across:
        notes.append(f"{len(across)} duplicate cluster(s) cross the given splits: "
                     "`edgetl data split` holds the train side out")
    if conflicts:
        notes.append(f"{len(conflicts)} duplicate cluster(s) carry different labels")
    groups = group_report(ds)
    if groups["across_splits"]:
        notes.append(f"{len(groups['across_splits'])} group(s) cross the given splits: "
                     "`edgetl data split` holds the train side out")
    return {
        "name": ds.name,
        "origin": ds.origin,
        "description": ds.description,
        "n_images": len(ok),
        "n_files": len(samples) + len(ds.skipped),
        "classes": classes,
        "splits": splits,
        "sizes": _size_summary([(infos[i].width, infos[i].height) for i in ok]),
        "modes": dict(Counter(infos[i].mode for i in ok).most_common()),
        "high_bit_depth_images": sum(deep.values()),
        "exif_rotated_images": rotated,
        "formats": dict(Counter(infos[i].format for i in ok).most_common()),
        "unreadable": unreadable,
        "skipped": other_skipped,
        "near_dup_threshold": near_dup_threshold,
        "near_dup_max_thumb_mad": MAX_THUMB_MAD,
        "exact_duplicates": exact,
        "near_duplicates": near,
        "cross_split_duplicates": across,
        "label_conflicts": conflicts,
        "groups": groups,
        "imbalance_ratio": ratio,
        "imbalance_warning": ratio is None or ratio > IMBALANCE_WARN_RATIO,
        "warnings": notes,
    }
