"""Leakage-safe train/val/test splits and the report that proves them.

A *unit* is a set of samples that must land in one split: samples sharing a `group`, and
clusters of exact or near-duplicate images (`dedup.py`), merged with union-find. Units are then
assigned greedily, biggest first, each to the split whose per-class shortfall it reduces most,
which stratifies by class while never cutting a unit. Each sample counts once for every class it
holds (`Sample.classes`: one class for classification, the class set of a dense-task image, or
the '(none)' stratum for an image without any), so one rule serves every task, and a
classification split is what the single-label version of this code produced. (sklearn's
StratifiedGroupKFold only makes 1/k folds and GroupShuffleSplit ignores classes, hence this
small greedy assignment.) The order among equal-sized units comes from sha256(seed, unit's first
relative path), so a split does not depend on row order, numpy's generator or where the data set
lives on disk.

Given splits are respected: 'val' and 'test' samples a source provides are never moved (ELPV's
protocol test set, a folder's test/ or val/, a manifest's split column); a split the source does
not give is carved from the rest. `val` and `test` are fractions of the whole data set. A train
or unassigned sample in the same unit as a given val/test sample would leak, so it is held out
(split None) and listed in the notes and in `leakage_report`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence

import numpy as np

from edgetl.data.dedup import (
    DEFAULT_NEAR_DUP_THRESHOLD,
    DuplicateCluster,
    ImageInfo,
    UnionFind,
    clusters_for_paths,
)
from edgetl.data.grouping import groups_across_splits
from edgetl.data.image_list import write_image_list
from edgetl.data.samples import NO_CLASS, SPLITS, DataSet, Sample
from edgetl.errors import DataError, UsageError

# write_image_list re-exported: callers save the split they used
__all__ = ["cluster_entry", "conflict_warning", "crosses", "label_conflicts", "leakage_report",
           "make_splits", "split_units",
           "strata_matrix", "write_image_list"]

Progress = Callable[[int], None]


def _check_fractions(val: float, test: float) -> None:
    for name, value in (("val", val), ("test", test)):
        if not 0.0 <= value < 1.0:
            raise UsageError(f"--{name} {value} must be a fraction in [0, 1)")
    if val + test >= 1.0:
        raise UsageError(f"--val {val} plus --test {test} leaves no training data",
                         hint="keep their sum below 1")


def split_units(samples: Sequence[Sample], clusters: Sequence[DuplicateCluster]) -> list[list[int]]:
    """Sample indices grouped into units (same group or same duplicate cluster), all samples."""
    finder = UnionFind(len(samples))
    first_of_group: dict[str, int] = {}
    for i, sample in enumerate(samples):
        if sample.group is not None:
            finder.union(first_of_group.setdefault(sample.group, i), i)
    for cluster in clusters:
        for other in cluster.members[1:]:
            finder.union(cluster.members[0], other)
    units: dict[int, list[int]] = {}
    for i in range(len(samples)):
        units.setdefault(finder.find(i), []).append(i)
    return list(units.values())


def _unit_order(units: list[list[int]], samples: Sequence[Sample], seed: int) -> list[list[int]]:
    """Biggest units first; ties in a seeded order keyed on paths relative to the data root."""
    paths = [s.path for s in samples]
    root = os.path.commonpath(paths) if len(paths) > 1 else os.path.dirname(paths[0])

    def key(unit: list[int]) -> tuple[int, str]:
        first = min(os.path.relpath(paths[i], root) for i in unit)
        return -len(unit), hashlib.sha256(f"{seed}/{first}".encode()).hexdigest()

    return sorted(units, key=key)


def strata_matrix(ds: DataSet) -> tuple[np.ndarray, list[str]]:
    """Multi-hot (samples x strata) of the classes each sample holds, and the strata names.

    The strata are `ds.classes` plus, when some sample holds no class, '(none)' last, so
    images without annotations are spread over the splits like any class.
    """
    index = ds.class_index()
    names = list(ds.classes)
    if any(not s.classes for s in ds.samples):
        names.append(NO_CLASS)
    matrix = np.zeros((len(ds.samples), len(names)), dtype=np.int64)
    for row, sample in enumerate(ds.samples):
        for name in sample.classes or (NO_CLASS,):
            column = index.get(name, len(ds.classes) if name == NO_CLASS else None)
            if column is None:
                raise DataError(f"{sample.path} holds class {name!r}, which is not among the "
                                f"data set's classes ({', '.join(ds.classes)})")
            matrix[row, column] = 1
    return matrix, names


def _assign(
    units: list[list[int]],
    strata: np.ndarray,
    targets: dict[str, np.ndarray],
    weights: np.ndarray,
) -> dict[int, str]:
    """Greedy: each unit goes to the split where it lowers the weighted squared shortfall most."""
    names = list(targets)
    current = {name: np.zeros(strata.shape[1]) for name in names}
    placed: dict[int, str] = {}
    for unit in units:
        vector = strata[unit].sum(axis=0).astype(float)
        costs = [
            float(np.sum(weights * vector * (2.0 * (current[n] - targets[n]) + vector)))
            for n in names
        ]
        best = names[int(np.argmin(costs))]
        current[best] += vector
        for i in unit:
            placed[i] = best
    return placed


def _hold_out(units: list[list[int]], samples: Sequence[Sample],
              fixed: set[str]) -> tuple[list[int], list[list[int]]]:
    """Units touching a given val/test sample stay put; their other members are held out."""
    held_out: list[int] = []
    pool_units: list[list[int]] = []
    for unit in units:
        if any(samples[i].split in fixed for i in unit):
            held_out += [i for i in unit if samples[i].split not in fixed]
        else:
            pool_units.append(unit)
    return held_out, pool_units


def _targets(pool_counts: np.ndarray, totals: np.ndarray, fractions: dict[str, float],
             fixed: set[str]) -> dict[str, np.ndarray]:
    """Per split, images wanted per class: carved splits take a fraction of the whole set."""
    targets: dict[str, np.ndarray] = {"train": pool_counts.copy()}
    for name, fraction in fractions.items():
        if name in fixed or fraction <= 0:
            continue
        targets[name] = np.minimum(fraction * totals, targets["train"])
        targets["train"] = targets["train"] - targets[name]
    return targets


def _missing_class_notes(placed: dict[int, str], strata: np.ndarray,
                         targets: dict[str, np.ndarray], classes: list[str]) -> list[str]:
    notes = []
    for name in (n for n in targets if n != "train"):
        members = [i for i, split in placed.items() if split == name]
        got = strata[members].sum(axis=0)
        empty = [c for c, want, n in zip(classes, targets[name], got, strict=True)
                 if want > 0 and n == 0 and c != NO_CLASS]  # images without objects: no class
        if empty:
            notes.append(f"{name} split has no images of class(es) {', '.join(empty)}: "
                         "too few images (or too large groups) to stratify")
    return notes


def make_splits(
    ds: DataSet,
    val: float = 0.15,
    test: float = 0.15,
    seed: int = 0,
    near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    *,
    progress: Progress | None = None,
) -> DataSet:
    """A copy of `ds` with every sample's split filled in (None: held out to prevent leakage).

    `near_dup_threshold` is the phash Hamming distance for near-duplicates (negative: exact
    duplicates only). `progress(n)` is called while images are hashed.
    """
    _check_fractions(val, test)
    samples = ds.samples
    if not samples:
        return ds.replace()
    _, clusters = clusters_for_paths([s.path for s in samples], near_dup_threshold,
                                     progress=progress)
    units = split_units(samples, clusters)
    fixed = {name for name in ("val", "test") if any(s.split == name for s in samples)}
    notes = list(ds.notes)
    for name in sorted(fixed):
        asked = val if name == "val" else test
        notes.append(f"{name} split given by the source ({sum(s.split == name for s in samples)} "
                     f"images); --{name} {asked} not applied")
    strata, strata_names = strata_matrix(ds)
    totals = strata.sum(axis=0).astype(float)

    held_out, pool_units = _hold_out(units, samples, fixed)
    pool = [i for unit in pool_units for i in unit]
    targets = _targets(strata[pool].sum(axis=0).astype(float), totals,
                       {"val": val, "test": test}, fixed)
    placed = _assign(_unit_order(pool_units, samples, seed), strata, targets,
                     1.0 / np.maximum(totals, 1.0))

    result: list[Sample] = []
    for i, sample in enumerate(samples):
        split = sample.split if sample.split in fixed else placed.get(i)
        result.append(sample.with_split(split))
    carved = [n for n in targets if n != "train"]
    notes.append(
        f"split seed {seed}: {', '.join(carved) or 'nothing'} carved "
        f"{'from the rest' if fixed else 'from all images'} (val {val}, test {test} of the "
        f"whole set), stratified by class, groups and duplicate clusters kept whole "
        f"(near-duplicate phash threshold {near_dup_threshold})"
    )
    notes += _missing_class_notes(placed, strata, targets, strata_names)
    if held_out:
        notes.append(f"{len(held_out)} image(s) held out of every split: same group or "
                     "near-duplicate of an image in a given val/test split")
    return ds.replace(samples=result, notes=notes)


def cluster_entry(cluster: DuplicateCluster, samples: Sequence[Sample]) -> dict:
    """A JSON-ready description of one duplicate cluster (paths, labels, splits, distance)."""
    members = [samples[i] for i in cluster.members]
    return {
        "paths": [s.path for s in members],
        "labels": [s.label for s in members],
        "splits": [s.split for s in members],
        "exact": cluster.exact,
        "max_distance": cluster.max_distance,
    }


def label_conflicts(entries: Sequence[dict]) -> list[dict]:
    """The duplicate clusters (`cluster_entry`s) whose members carry different labels: the same
    picture (a symlink, a copy) taught as two classes."""
    return [e for e in entries if len(set(e["labels"])) > 1]


def conflict_warning(conflicts: Sequence[dict]) -> str:
    """One sentence for identical files under different labels, naming the first."""
    first = conflicts[0]
    shown = ", ".join(f"{p} as {label!r}" for p, label in
                      zip(first["paths"], first["labels"], strict=True))
    more = f" (and {len(conflicts) - 1} more)" if len(conflicts) > 1 else ""
    return (f"{len(conflicts)} image(s) carry two labels: identical files {shown}{more}; the "
            "model would be taught one picture as two classes: keep one copy under its "
            "right label")


def crosses(splits: Sequence[str | None]) -> bool:
    """True when assigned splits (None ignored) differ."""
    return len({s for s in splits if s is not None}) > 1


def leakage_report(
    ds: DataSet,
    *,
    near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    progress: Progress | None = None,
    scanned: tuple[list[ImageInfo], list[DuplicateCluster]] | None = None,
) -> dict:
    """Per-split class counts and every group or duplicate cluster that crosses splits.

    `leak_free` is True when nothing crosses. Hashes are cached per process, so calling this
    right after `make_splits` costs little. `scanned` reuses a `clusters_for_paths` result.
    """
    samples = ds.samples
    _, clusters = scanned or clusters_for_paths([s.path for s in samples], near_dup_threshold,
                                                progress=progress)
    groups_across = groups_across_splits(samples)
    entries = [cluster_entry(c, samples) for c in clusters]
    across = [e for e in entries if crosses(e["splits"])]
    sizes = {name: len(ds.by_split(name)) for name in SPLITS}
    held_out = [s.path for s in samples if s.split is None] if ds.has_splits else []
    return {
        "origin": ds.origin,
        "n_images": len(samples),
        "split_sizes": sizes,
        "splits": {name: ds.counts(name) for name in SPLITS if sizes[name]},
        "held_out": held_out,
        "n_groups": len({s.group for s in samples if s.group is not None}),
        "groups_across_splits": groups_across,
        "near_dup_threshold": near_dup_threshold,
        "duplicate_clusters": entries,
        "clusters_across_splits": across,
        "label_conflicts": label_conflicts(entries),
        "leak_free": not groups_across and not across,
    }
