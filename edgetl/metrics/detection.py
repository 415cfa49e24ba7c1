"""Detection metrics with pycocotools: COCO mAP, per-class AP, and bootstrap intervals.

`DetectionEvaluator` collects ground truth (each sample's `BoxTarget`, in original pixels;
crowd boxes are COCO crowd regions) and detections (original pixels) image by image, then
`compute()` runs pycocotools' `COCOeval` (evaluate, accumulate, summarize) for the report.

Intervals: the per-image matching that `COCOeval.evaluate` produces is computed once; a
bootstrap resample of images is then a re-indexing of those per-image records (images drawn
twice appear twice), accumulated with pycocotools' arithmetic for the one curve mAP reads
(`_resample_stats`: its `accumulate`, vectorised; equal to `accumulate` + `summarize` on every
resample, tested). So every AP in the report, point estimate or resample, is pycocotools'.
`paired_map_delta` resamples the same images for two sets of detections (verify: artifact
against the torch model).
"""

from __future__ import annotations

import contextlib
import copy
import io
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetl.artifact.postprocess import Detections
from edgetl.data.samples import Sample
from edgetl.metrics.bootstrap import paired_delta, percentile_interval, resample_orders
from edgetl.metrics.boxes import box_iou
from edgetl.metrics.coco_match import IOU_THRESHOLDS, RECALL_POINTS
from edgetl.spec import TaskRecord
from edgetl.tasks.detection import TASK as _DETECTION

DETECTION_TASK: str = _DETECTION.name  # what this module's reports score

STAT_NAMES = ("map", "map50", "map75", "map_small", "map_medium", "map_large",
              "ar1", "ar10", "ar100", "ar_small", "ar_medium", "ar_large")
DEFAULT_BOOTSTRAP = 1000


@dataclass
class DetectionReport:
    """What `compute` found; `to_dict()` is the JSON `evaluate --json` writes."""

    stats: dict[str, float]
    per_class: list[dict[str, Any]]
    n_images: int
    n_boxes: int
    intervals: dict[str, list[float]] = field(default_factory=dict)
    pr_curves: dict[str, Any] = field(default_factory=dict)
    confusion: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": DETECTION_TASK, **self.stats}
        for name, interval in self.intervals.items():
            out[f"{name}_ci95"] = interval
        out.update(per_class=self.per_class, n_images=self.n_images, n_boxes=self.n_boxes,
                   confusion=self.confusion, pr_curve=self.pr_curves)
        return out


def _quiet() -> contextlib.AbstractContextManager:
    return contextlib.redirect_stdout(io.StringIO())


class DetectionEvaluator:
    """Accumulate images, then score them with pycocotools."""

    def __init__(self, record: TaskRecord) -> None:
        self.record = record
        self.images: list[dict[str, Any]] = []
        self.gt: list[dict[str, Any]] = []
        self.dt: list[dict[str, Any]] = []

    def update(self, samples: list[Sample], detections: list[Detections],
               sizes: list[tuple[int, int]] | None = None) -> None:
        """Add images: their ground truth (from `sample.target`) and detections."""
        for i, (sample, found) in enumerate(zip(samples, detections, strict=True)):
            image_id = len(self.images) + 1
            target = sample.target
            height, width = (sizes[i] if sizes else None) or target.image_size or (0, 0)
            self.images.append({"id": image_id, "height": int(height), "width": int(width),
                                "file_name": sample.path})
            for box, label, crowd in zip(target.boxes, target.labels, target.crowd,
                                         strict=True):
                x1, y1, x2, y2 = box
                self.gt.append({"id": len(self.gt) + 1, "image_id": image_id,
                                "category_id": self.record.index(label) + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1],
                                "area": float((x2 - x1) * (y2 - y1)), "iscrowd": int(crowd)})
            for box, score, label in zip(found.boxes, found.scores, found.labels, strict=True):
                x1, y1, x2, y2 = (float(v) for v in box)
                self.dt.append({"image_id": image_id, "category_id": int(label) + 1,
                                "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})

    @property
    def n_boxes(self) -> int:
        return sum(1 for g in self.gt if not g["iscrowd"])

    def coco_eval(self) -> Any:
        """pycocotools' COCOeval after `evaluate()` (per-image matching done)."""
        return self._coco_eval(self.gt, self.dt, "bbox")

    def _coco_eval(self, annotations: list[dict[str, Any]], results: list[dict[str, Any]],
                   iou_type: str, max_dets: int | None = None) -> Any:
        """COCOeval of `results` against `annotations` on this evaluator's images; with
        `max_dets`, the detections per image scored are [1, 10, max_dets] (COCO's 100 is too
        few for images with hundreds of instances)."""
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        gt = COCO()
        gt.dataset = {"images": self.images, "annotations": annotations,
                      "categories": [{"id": i + 1, "name": n}
                                     for i, n in enumerate(self.record.names)]}
        with _quiet():
            gt.createIndex()
            dt = gt.loadRes(results) if results else _empty_results(gt)
            evaluation = COCOeval(gt, dt, iouType=iou_type)
            if max_dets is not None:
                evaluation.params.maxDets = [1, 10, max(100, int(max_dets))]
            evaluation.evaluate()
        return evaluation

    def compute(self, bootstrap: int = 0, seed: int = 0) -> DetectionReport:
        """The report; with `bootstrap` > 0, 95% intervals of map and map50 over images."""
        evaluation = self.coco_eval()
        stats = summarize(evaluation)
        per_class = _per_class(evaluation, self.record, self.gt)
        report = DetectionReport(stats=stats, per_class=per_class, n_images=len(self.images),
                                 n_boxes=self.n_boxes, pr_curves=_pr_curves(evaluation,
                                                                            self.record))
        if bootstrap > 0 and self.images:
            samples = bootstrap_stats(evaluation, bootstrap, seed)
            report.intervals = {name: percentile_interval(samples[name])
                                for name in ("map", "map50")}
        report.confusion = detection_confusion(self.images, self.gt, self.dt, self.record)
        return report


def _empty_results(gt: Any) -> Any:
    from pycocotools.coco import COCO

    empty = COCO()
    empty.dataset = {"images": gt.dataset["images"], "annotations": [],
                     "categories": gt.dataset["categories"]}
    empty.createIndex()
    return empty


def summarize(evaluation: Any) -> dict[str, float]:
    """pycocotools' 12 summary numbers (after accumulate), by name; -1 (absent) becomes 0."""
    with _quiet():
        evaluation.accumulate()
        evaluation.summarize()
    stats = {name: max(0.0, float(v)) for name, v in zip(STAT_NAMES, evaluation.stats,
                                                         strict=True)}
    if evaluation.params.maxDets[-1] != 100:
        stats.update(_precision_stats(evaluation))
    return stats


def _precision_stats(evaluation: Any) -> dict[str, float]:
    """The AP numbers at the largest detection count. pycocotools' `summarize` reads mAP and
    the area APs at 100 detections, a count that is not in the list once `maxDets` changes
    (they come out -1); AP50 and AP75 at `maxDets[-1]` are what it computes already."""
    precision = evaluation.eval["precision"][..., -1]  # [T, R, K, A] at maxDets[-1]
    thresholds = evaluation.params.iouThrs

    def mean(values: np.ndarray) -> float:
        kept = values[values > -1]
        return float(kept.mean()) if kept.size else 0.0

    return {"map": mean(precision[:, :, :, 0]),
            "map50": mean(precision[np.isclose(thresholds, 0.5), :, :, 0]),
            "map75": mean(precision[np.isclose(thresholds, 0.75), :, :, 0]),
            "map_small": mean(precision[:, :, :, 1]),
            "map_medium": mean(precision[:, :, :, 2]),
            "map_large": mean(precision[:, :, :, 3])}


def _per_class(evaluation: Any, record: TaskRecord, gt: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
    """AP@[.5:.95] and AP50 per class from the accumulated precision (all areas, 100 dets)."""
    precision = evaluation.eval["precision"]  # [T, R, K, A, M]
    rows = []
    for k, name in enumerate(record.names):
        every = precision[:, :, k, 0, -1]
        at50 = precision[0, :, k, 0, -1]
        count = sum(1 for g in gt if g["category_id"] == k + 1 and not g["iscrowd"])
        rows.append({"name": name,
                     "ap": float(every[every > -1].mean()) if (every > -1).any() else 0.0,
                     "ap50": float(at50[at50 > -1].mean()) if (at50 > -1).any() else 0.0,
                     "n_boxes": count})
    return rows


def _pr_curves(evaluation: Any, record: TaskRecord) -> dict[str, Any]:
    """Precision at COCO's 101 recall points, IoU 0.5, per class (for the PR-curve PNG)."""
    precision = evaluation.eval["precision"]
    recall = evaluation.params.recThrs
    return {"recall": [float(r) for r in recall],
            "iou": 0.5,
            "precision": {name: [float(max(p, 0.0)) for p in precision[0, :, k, 0, -1]]
                          for k, name in enumerate(record.names)}}


def _resampled(evaluation: Any, order: np.ndarray) -> Any:
    """A shallow copy of `evaluation` whose images are `order` (indices, repeats allowed)."""
    params = evaluation._paramsEval
    n_images = len(params.imgIds)
    n_areas = len(params.areaRng)
    n_classes = len(params.catIds) if params.useCats else 1
    clone = copy.copy(evaluation)
    clone.params = copy.copy(evaluation.params)
    clone._paramsEval = copy.copy(params)
    clone.params.imgIds = list(range(len(order)))
    clone._paramsEval.imgIds = list(range(len(order)))
    records = evaluation.evalImgs
    clone.evalImgs = [records[k * n_areas * n_images + a * n_images + int(i)]
                      for k in range(n_classes) for a in range(n_areas) for i in order]
    return clone


def _per_image_records(evaluation: Any) -> list[list[tuple | None]]:
    """Per class, per image: what accumulate reads of COCOeval's record for all areas at the
    largest detection count (scores, matches [T, D], ignored [T, D], counted truths)."""
    params = evaluation._paramsEval
    n_images, n_areas = len(params.imgIds), len(params.areaRng)
    n_classes = len(params.catIds) if params.useCats else 1
    most = params.maxDets[-1]
    out = []
    for k in range(n_classes):
        rows: list[tuple | None] = []
        for i in range(n_images):
            record = evaluation.evalImgs[k * n_areas * n_images + i]
            rows.append(None if record is None else (
                np.asarray(record["dtScores"][:most]), record["dtMatches"][:, :most],
                record["dtIgnore"][:, :most],
                int(np.count_nonzero(np.asarray(record["gtIgnore"]) == 0))))
        out.append(rows)
    return out


def _resample_stats(records: list[list[tuple | None]], order: np.ndarray,
                    iou_thresholds: np.ndarray, recall_points: np.ndarray) -> dict[str, float]:
    """map and map50 of one resample of images: pycocotools' `accumulate` for all areas at
    the largest detection count, vectorised (its per-detection Python loop is the
    precision envelope, a reversed running maximum here), then read as `summarize` reads it.
    The same arithmetic in the same order, so the same numbers (tested)."""
    curves = []
    for rows in records:
        picked = [rows[int(i)] for i in order if rows[int(i)] is not None]
        if not picked:
            continue
        truths = sum(r[3] for r in picked)
        if truths == 0:
            continue
        scores = np.concatenate([r[0] for r in picked])
        ranked = np.argsort(-scores, kind="mergesort")
        matched = np.concatenate([r[1] for r in picked], axis=1)[:, ranked]
        ignored = np.concatenate([r[2] for r in picked], axis=1)[:, ranked]
        tp = np.cumsum(np.logical_and(matched, ~ignored), axis=1).astype(float)
        fp = np.cumsum(np.logical_and(~matched.astype(bool), ~ignored), axis=1).astype(float)
        precision = np.zeros((len(iou_thresholds), len(recall_points)))
        for t in range(len(iou_thresholds)):
            found = tp[t].size
            if not found:
                continue
            recall = tp[t] / truths
            precise = tp[t] / (fp[t] + tp[t] + np.spacing(1))
            envelope = np.maximum.accumulate(precise[::-1])[::-1]
            where = np.searchsorted(recall, recall_points, side="left")
            ok = where < found
            precision[t, ok] = envelope[where[ok]]
        curves.append(precision)
    if not curves:
        return {"map": 0.0, "map50": 0.0}
    stacked = np.stack(curves, axis=-1)  # [T, R, classes]
    return {"map": float(stacked.mean()),
            "map50": float(stacked[np.isclose(iou_thresholds, 0.5)].mean())}


def bootstrap_stats(evaluation: Any, rounds: int, seed: int = 0,
                    orders: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """map and map50 over `rounds` resamples of the images (pycocotools' accumulate
    arithmetic, `_resample_stats`)."""
    n_images = len(evaluation._paramsEval.imgIds)
    if orders is None:
        orders = resample_orders(n_images, rounds, seed)
    records = _per_image_records(evaluation)
    thresholds = np.asarray(evaluation.params.iouThrs)
    points = np.asarray(evaluation.params.recThrs)
    values: dict[str, list[float]] = {"map": [], "map50": []}
    for order in orders:
        stats = _resample_stats(records, order, thresholds, points)
        values["map"].append(stats["map"])
        values["map50"].append(stats["map50"])
    return {name: np.asarray(v) for name, v in values.items()}


def paired_map_delta(first: Any, second: Any, rounds: int = DEFAULT_BOOTSTRAP, seed: int = 0
                     ) -> dict[str, Any]:
    """second - first for map and map50, with a paired bootstrap interval (same images drawn
    for both). Both evaluations must cover the same images in the same order."""
    return paired_delta(first, second, len(first._paramsEval.imgIds), ("map", "map50"),
                        summarize, lambda e, orders: bootstrap_stats(e, rounds, orders=orders),
                        rounds, seed)


def paired_records_delta(first: list[list[tuple | None]], second: list[list[tuple | None]],
                         n_images: int, rounds: int = DEFAULT_BOOTSTRAP, seed: int = 0
                         ) -> dict[str, Any]:
    """`paired_map_delta` from per-image records (`_per_image_records`' shape, e.g. the
    device's numpy matching, `edgetl.metrics.coco_match`) instead of COCOeval objects: the
    same draws, the same accumulate arithmetic; point estimates on every image once."""
    def stats(records: list[list[tuple | None]], order: np.ndarray) -> dict[str, float]:
        return _resample_stats(records, order, IOU_THRESHOLDS, RECALL_POINTS)

    def resampled(records: list[list[tuple | None]], orders: np.ndarray
                  ) -> dict[str, np.ndarray]:
        rows = [stats(records, order) for order in orders]
        return {name: np.asarray([r[name] for r in rows]) for name in ("map", "map50")}

    return paired_delta(first, second, n_images, ("map", "map50"),
                        lambda r: stats(r, np.arange(n_images)), resampled, rounds, seed)


def detection_confusion(images: list[dict[str, Any]], gt: list[dict[str, Any]],
                        dt: list[dict[str, Any]], record: TaskRecord, iou: float = 0.5,
                        min_score: float = 0.3) -> dict[str, Any]:
    """A confusion matrix of detections (score >= `min_score`) against ground truth, matched
    greedily by score at IoU >= `iou` regardless of class; the last row and column are
    background (a missed box; a detection that matched no box). Crowd boxes are left out."""
    n = record.num_classes
    matrix = np.zeros((n + 1, n + 1), dtype=np.int64)
    for image in images:
        truth = [g for g in gt if g["image_id"] == image["id"] and not g["iscrowd"]]
        found = sorted((d for d in dt if d["image_id"] == image["id"]
                        and d["score"] >= min_score), key=lambda d: -d["score"])
        boxes = np.array([[g["bbox"][0], g["bbox"][1], g["bbox"][0] + g["bbox"][2],
                           g["bbox"][1] + g["bbox"][3]] for g in truth]).reshape(-1, 4)
        free = np.ones(len(truth), dtype=bool)
        for d in found:
            x, y, w, h = d["bbox"]
            overlaps = box_iou(np.array([[x, y, x + w, y + h]]), boxes)[0]
            overlaps[~free] = -1
            best = int(np.argmax(overlaps)) if len(overlaps) else -1
            if best >= 0 and overlaps[best] >= iou:
                free[best] = False
                matrix[truth[best]["category_id"] - 1, d["category_id"] - 1] += 1
            else:
                matrix[n, d["category_id"] - 1] += 1
        for g, missed in zip(truth, free, strict=True):
            if missed:
                matrix[g["category_id"] - 1, n] += 1
    return {"matrix": matrix.tolist(), "labels": [*record.names, "background"], "iou": iou,
            "min_score": min_score,
            "rows": "ground truth (last: background = a detection that matched no box)",
            "columns": "detected class (last: background = a box nothing detected)"}
