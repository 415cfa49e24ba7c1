"""What is in a detection or instance set: objects per class and image, box sizes, problems.

Box sizes use COCO's area buckets (small < 32², medium < 96², else large) twice: in original
pixels, and at the model's input size under the letterbox geometry the dense tasks use (scale
min(S/h, S/w)), because that is the size the detector sees. One scan per image (decode, hash;
`dedup.py`) feeds the duplicate and unreadable-file sections, as for classification. The report
is a plain dict ready for JSON; `edgetl.cli.data_cmd` renders it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from edgetl.artifact.orientation import rotation_summary
from edgetl.data.dedup import (
    DEFAULT_NEAR_DUP_THRESHOLD,
    DuplicateCluster,
    clusters_for_paths,
    exact_duplicate_groups,
)
from edgetl.data.detection import problems as P
from edgetl.data.detection.geometry import size_error
from edgetl.data.detection.masks import mask_area, read_id_png
from edgetl.data.detection.small import letterbox_scale, small_objects, small_objects_advice
from edgetl.data.detection.which import has_masks
from edgetl.data.inspect import _size_summary
from edgetl.data.samples import SPLITS, DataSet, Sample
from edgetl.data.split import cluster_entry, crosses
from edgetl.data.targets import InstanceTarget

SMALL_AREA = 32 ** 2
MEDIUM_AREA = 96 ** 2
TINY_SIDE = 8  # px at the input size: below this few detectors find anything
PER_IMAGE_BINS = ((0, 0), (1, 1), (2, 5), (6, 10), (11, 20), (21, 50), (51, 100))


def size_bucket(area: float) -> str:
    """COCO's bucket of an area in square pixels."""
    return "small" if area < SMALL_AREA else "medium" if area < MEDIUM_AREA else "large"


def _stats(values: Sequence[float]) -> dict | None:
    if not len(values):
        return None
    arr = np.asarray(values, dtype=float)
    return {"min": float(arr.min()), "median": float(np.median(arr)),
            "mean": float(arr.mean()), "max": float(arr.max())}


def _histogram(counts: Iterable[int]) -> dict[str, int]:
    labels = [str(a) if a == b else f"{a}-{b}" for a, b in PER_IMAGE_BINS]
    hist = dict.fromkeys([*labels, f">{PER_IMAGE_BINS[-1][1]}"], 0)
    for n in counts:
        k = next((i for i, (a, b) in enumerate(PER_IMAGE_BINS) if a <= n <= b), None)
        hist[labels[k] if k is not None else f">{PER_IMAGE_BINS[-1][1]}"] += 1
    return hist


def _buckets(areas: Iterable[float]) -> dict[str, int]:
    counts = dict.fromkeys(("small", "medium", "large"), 0)
    for area in areas:
        counts[size_bucket(area)] += 1
    return counts


def _entries(skipped: list[tuple[str, str]], kinds: Iterable[str]) -> list[dict]:
    kinds = tuple(kinds)
    return [{"path": p, "reason": r} for p, r in skipped if P.kind_of(r) in kinds]


def _box_sizes(samples: list[Sample], input_size: int | None) -> dict:
    widths, heights, areas, scaled, tiny = [], [], [], [], 0
    for s in samples:
        size = s.target.image_size or size_error(s.path)[0]
        scale = letterbox_scale(size, input_size) if input_size and size else None
        for x1, y1, x2, y2 in s.target.boxes:
            w, h = x2 - x1, y2 - y1
            widths.append(w)
            heights.append(h)
            areas.append(w * h)
            if scale is not None:
                scaled.append(w * h * scale * scale)
                tiny += min(w, h) * scale < TINY_SIDE
    return {"original": _buckets(areas), "input": _buckets(scaled) if input_size else None,
            "input_size": input_size, "width": _stats(widths), "height": _stats(heights),
            "area": _stats(areas), f"under_{TINY_SIDE}px_at_input": tiny if input_size else None}


def _instance_areas(samples: list[Sample], input_size: int | None) -> dict:
    """Mask pixel areas (each id PNG decoded once per image) and the masks' forms."""
    areas, scaled = [], []
    forms: Counter[str] = Counter()
    for s in samples:
        target = s.target
        if not isinstance(target, InstanceTarget):
            continue
        size = target.image_size or size_error(s.path)[0]
        scale = letterbox_scale(size, input_size) if input_size and size else None
        id_counts: dict[str, np.ndarray] = {}
        for mask in target.masks:
            if mask.id_png is not None:
                forms["id_png"] += 1
                if mask.id_png not in id_counts:
                    id_counts[mask.id_png] = np.bincount(read_id_png(mask.id_png).ravel())
                counts = id_counts[mask.id_png]
                area = int(counts[mask.id_value]) if mask.id_value < len(counts) else 0
            else:
                forms["polygons" if mask.polygons is not None else "rle"] += 1
                area = mask_area(mask, size)
            areas.append(area)
            if scale is not None:
                scaled.append(area * scale * scale)
    return {"original": _buckets(areas), "input": _buckets(scaled) if input_size else None,
            "area": _stats(areas), "forms": dict(forms)}


def _per_class(ds: DataSet, samples: list[Sample]) -> dict[str, dict[str, int]]:
    table = {c: {"images": 0, "objects": 0, "crowd": 0} for c in ds.classes}
    for s in samples:
        for label, crowd in zip(s.target.labels, s.target.crowd, strict=True):
            row = table.setdefault(label, {"images": 0, "objects": 0, "crowd": 0})
            row["crowd" if crowd else "objects"] += 1
        for label in s.target.classes():  # non-crowd, as splits count images per class
            table[label]["images"] += 1
    return table


def _splits(ds: DataSet, samples: list[Sample]) -> dict | None:
    if not ds.has_splits:
        return None
    out = {}
    for name in SPLITS:
        members = [s for s in samples if s.split == name]
        if members:
            objects = Counter(label for s in members
                              for label, crowd in zip(s.target.labels, s.target.crowd,
                                                      strict=True) if not crowd)
            out[name] = {"images": len(members),
                         "objects": {c: objects.get(c, 0) for c in ds.classes}}
    return out


def inspect_detection(
    ds: DataSet,
    input_size: int | None = None,
    *,
    near_dup_threshold: int = DEFAULT_NEAR_DUP_THRESHOLD,
    progress: Callable[[int], None] | None = None,
) -> dict:
    """The inspection report of a detection or instance `DataSet` (JSON-ready)."""
    infos, clusters = clusters_for_paths([s.path for s in ds.samples], near_dup_threshold,
                                         progress=progress)
    ok = [i for i, info in enumerate(infos) if info.error is None]
    samples = [ds.samples[i] for i in ok]
    unreadable = [{"path": infos[i].path, "reason": infos[i].error}
                  for i in range(len(infos)) if infos[i].error is not None]
    unreadable += _entries(ds.skipped, P.UNREADABLE_PREFIXES)
    per_image = [len(s.target.boxes) for s in samples]
    empty = [s.path for s, n in zip(samples, per_image, strict=True) if n == 0]
    classes = _per_class(ds, samples)
    entries = [cluster_entry(c, ds.samples) for c in clusters]
    exact = [cluster_entry(DuplicateCluster(tuple(g), True, 0), ds.samples)
             for g in exact_duplicate_groups(infos)]
    across = [e for e in entries if crosses(e["splits"])] if ds.has_splits else None
    invalid = _entries(ds.skipped, P.BOX_KINDS)
    rotated, rotated_note = rotation_summary([infos[i] for i in ok])
    listed = {(e["path"], e["reason"]) for e in invalid + unreadable}
    others = [{"path": p, "reason": r} for p, r in ds.skipped if (p, r) not in listed]
    report = {
        "name": ds.name, "origin": ds.origin, "description": ds.description, "task": ds.task,
        "objects": "instances" if has_masks(ds.task) else "boxes",
        "n_images": len(samples), "n_objects": sum(per_image),
        "classes": classes,
        "splits": _splits(ds, samples),
        "objects_per_image": {**(_stats(per_image) or {}), "histogram": _histogram(per_image)},
        "images_without_objects": {"count": len(empty), "paths": empty},
        "box_sizes": _box_sizes(samples, input_size),
        # objects under 16 px at the input size: the share finetune warns about too
        "small_objects": small_objects(samples, input_size) if input_size else None,
        "sizes": _size_summary([(infos[i].width, infos[i].height) for i in ok]),
        "modes": dict(Counter(infos[i].mode for i in ok).most_common()),
        "exif_rotated_images": rotated,
        "invalid_boxes": invalid,
        "unreadable": unreadable,
        "problems": others,
        "problem_counts": dict(Counter(P.kind_of(r) for _, r in ds.skipped).most_common()),
        "near_dup_threshold": near_dup_threshold,
        "exact_duplicates": exact,
        "near_duplicates": [e for e in entries if not e["exact"]],
        "cross_split_duplicates": across,
        "notes": list(ds.notes),
    }
    if has_masks(ds.task):
        report["instance_areas"] = _instance_areas(samples, input_size)
        report["degenerate_polygons"] = _entries(ds.skipped, P.POLYGON_KINDS)
        report["mask_size_mismatches"] = _entries(ds.skipped, (P.MASK_SIZE,))
        report["mask_overlaps"] = _entries(ds.skipped, (P.MASK_OVERLAP,))
    report["warnings"] = _warnings(report) + ([rotated_note] if rotated_note else [])
    return report


def _warnings(report: dict) -> list[str]:
    notes = []
    what = report["objects"]
    if report["unreadable"]:
        notes.append(f"{len(report['unreadable'])} unreadable image file(s)")
    if report["invalid_boxes"]:
        notes.append(f"{len(report['invalid_boxes'])} box(es) outside their image or without "
                     "area: clipped or dropped (listed)")
    empty = [c for c, row in report["classes"].items() if row["objects"] == 0]
    if empty:
        notes.append(f"class(es) without {what}: {', '.join(empty)}")
    tiny = report["box_sizes"].get(f"under_{TINY_SIDE}px_at_input")
    if tiny:
        notes.append(f"{tiny} box(es) narrower than {TINY_SIDE} px at input size "
                     f"{report['box_sizes']['input_size']}: consider a larger input or tiles")
    small = small_objects_advice(report["small_objects"]) if report["small_objects"] else None
    if small:
        notes.append(small)
    if report["cross_split_duplicates"]:
        notes.append(f"{len(report['cross_split_duplicates'])} duplicate cluster(s) cross the "
                     "given splits: `edgetl data split` holds the train side out")
    return notes
