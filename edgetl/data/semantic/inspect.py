"""`inspect_semantic`: what a segmentation set holds before anyone trains on it.

Pixel share and image count per class, overall and per split; every file the reader could not
use, by kind (missing masks, masks without images, masks of another size, values outside the
class list, colours outside the class map, unreadable files); image sizes; exact and
near-duplicate images (`dedup.py`), those crossing the given splits; and groups crossing the
given splits (`grouping.py`). A class's share is of the *labelled* pixels (ignored pixels
excluded), the denominator training and mIoU see; the ignored share is reported beside it.

Masks are counted from the same per-process scans the reader made, so inspection after loading
reads each mask once in all; images are decoded once by the duplicate scan.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence

import numpy as np

from edgetl.data.dedup import (
    DEFAULT_NEAR_DUP_THRESHOLD,
    MAX_THUMB_MAD,
    DuplicateCluster,
    clusters_for_paths,
    exact_duplicate_groups,
)
from edgetl.data.grouping import group_report
from edgetl.data.samples import SPLITS
from edgetl.data.semantic.dataset import SEMANTIC_TASK
from edgetl.data.semantic.decode import MaskStats, mask_stats, scan_masks
from edgetl.data.semantic.load import SemanticDataSet
from edgetl.data.semantic.problems import KINDS, Problem
from edgetl.data.split import cluster_entry, crosses
from edgetl.errors import DataError

LISTS = {"missing_masks": ("missing_mask",), "orphan_masks": ("orphan_mask",),
         "size_mismatch": ("size_mismatch",), "values_outside": ("values_outside",),
         "palette_unknown": ("palette_unknown",),
         "unreadable": ("unreadable_image", "unreadable_mask")}
RARE_SHARE = 0.01  # classes below 1% of labelled pixels are worth a note (class weights, crops)


def pixel_table(stats: Sequence[MaskStats], classes: Sequence[str]) -> dict:
    """Images, labelled and ignored pixels, and per class pixels, share and images."""
    pixels = np.zeros(len(classes), dtype=np.int64)
    images = np.zeros(len(classes), dtype=np.int64)
    ignored = 0
    for st in stats:
        for index, n in st.counts.items():
            pixels[index] += n
            images[index] += n > 0
        ignored += st.ignored
    labelled = int(pixels.sum())
    return {
        "images": len(stats),
        "labelled_pixels": labelled,
        "ignored_pixels": ignored,
        "ignored_share": ignored / (labelled + ignored) if labelled + ignored else 0.0,
        "classes": {name: {"pixels": int(pixels[i]),
                           "share": float(pixels[i]) / labelled if labelled else 0.0,
                           "images": int(images[i])} for i, name in enumerate(classes)},
    }


def _problem_lists(problems: Sequence[Problem]) -> dict[str, list[dict]]:
    lists: dict[str, list[dict]] = {key: [] for key in LISTS}
    lists["other_problems"] = []
    owner = {kind: key for key, kinds in LISTS.items() for kind in kinds}
    for p in problems:
        lists[owner.get(p.kind, "other_problems")].append(p.to_dict())
    return lists


def _notes(report: dict, splits: dict[str, dict]) -> list[str]:
    notes = []
    problems = sum(len(report[k]) for k in (*LISTS, "other_problems"))
    if problems:
        kinds = Counter(p["kind"] for k in (*LISTS, "other_problems") for p in report[k])
        notes.append(f"{problems} file(s) not usable: "
                     + ", ".join(f"{n} {KINDS[kind]}" for kind, n in kinds.items()))
    overall = report["pixels"]["all"]["classes"]
    empty = [c for c, row in overall.items() if row["pixels"] == 0]
    if empty:
        notes.append(f"class(es) with no pixels at all: {', '.join(empty)}")
    rare = [f"{c} {100 * row['share']:.2f}%" for c, row in overall.items()
            if 0 < row["share"] < RARE_SHARE]
    if rare:
        notes.append(f"rare classes (< {100 * RARE_SHARE:g}% of labelled pixels): "
                     f"{', '.join(rare)}: consider class weights")
    for name in ("val", "test"):
        if name in splits:
            missing = [c for c, row in splits[name]["classes"].items()
                       if row["pixels"] == 0 and c not in empty]
            if missing:
                notes.append(f"the {name} split has no pixels of {', '.join(missing)}: its "
                             "IoU is undefined there")
    if report["cross_split_duplicates"]:
        notes.append(f"{len(report['cross_split_duplicates'])} duplicate cluster(s) cross the "
                     "given splits")
    across = report["groups"]["across_splits"]
    if across:
        notes.append(f"{len(across)} group(s) cross the given splits: "
                     + ", ".join(f"{g['group']} ({'+'.join(g['splits'])})" for g in across))
    return notes


def inspect_semantic(
    ds: SemanticDataSet,
    *,
    near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """The inspection report of a semantic data set (JSON-ready; see the module docstring)."""
    record = getattr(ds, "record", None)
    if record is None:
        raise DataError(f"{ds.origin}: no mask record; open the data with load_semantic")
    samples = ds.samples
    infos, clusters = clusters_for_paths([s.path for s in samples], near_dup_threshold,
                                         progress=progress)
    kind = "colours" if record.encoding == "palette" else "values"
    raws = scan_masks([s.target.mask_path for s in samples if s.target is not None], kind)
    stats = [mask_stats(raw, record) for raw in raws]
    problems = list(ds.problems)
    ok: list[int] = []
    for i, (sample, info, st) in enumerate(zip(samples, infos, stats, strict=True)):
        if info.error is not None:  # files that changed, or loaded without check_images
            problems.append(Problem("unreadable_image", sample.path, info.error))
        elif st.error is not None:
            problems.append(Problem("unreadable_mask", sample.path, st.error.message,
                                    mask=raws[i].path))
        else:
            ok.append(i)
    splits = {name: pixel_table([stats[i] for i in ok if samples[i].split == name],
                                ds.classes)
              for name in SPLITS if any(samples[i].split == name for i in ok)}
    entries = [cluster_entry(c, samples) for c in clusters]
    sizes = Counter((infos[i].width, infos[i].height) for i in ok)
    report = {
        "task": SEMANTIC_TASK,
        "name": ds.name,
        "origin": ds.origin,
        "description": ds.description,
        "record": record.to_dict(),
        "classes": list(ds.classes),
        "ignore_index": record.ignore_index,
        "n_images": len(ok),
        "n_files": len(samples) + len(ds.skipped),
        "pixels": {"all": pixel_table([stats[i] for i in ok], ds.classes), **splits},
        **_problem_lists(problems),
        "sizes": {"distinct": len(sizes),
                  "most_common": [{"width": w, "height": h, "count": n}
                                  for (w, h), n in sizes.most_common(10)]},
        "near_dup_threshold": near_dup_threshold,
        "near_dup_max_thumb_mad": MAX_THUMB_MAD,
        "exact_duplicates": [cluster_entry(DuplicateCluster(tuple(g), True, 0), samples)
                             for g in exact_duplicate_groups(infos)],
        "near_duplicates": [e for e in entries if not e["exact"]],
        "cross_split_duplicates": ([e for e in entries if crosses(e["splits"])]
                                   if ds.has_splits else None),
        "groups": group_report(ds),
        "notes": list(ds.notes),
    }
    report["warnings"] = _notes(report, splits)
    return report


def inspect_semantic_data(ds: SemanticDataSet, input_size: int | None = None, *,
                          near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
                          progress: Callable[[int], None] | None = None) -> dict:
    """`inspect_semantic` as the task's `data_inspector` (`input_size`: not used, a pixel map
    has no box sizes to bucket)."""
    return inspect_semantic(ds, near_dup_threshold=near_dup_threshold, progress=progress)
