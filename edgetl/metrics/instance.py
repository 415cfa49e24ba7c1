"""Instance segmentation metrics: pycocotools `segm` and `bbox` on the same images.

`InstanceEvaluator` is detection's evaluator (boxes, crowd regions, per-image records, the
bootstrap over images) with a second set of annotations: each ground-truth instance's mask and
each detection's pasted mask as COCO RLE at the file's size. `compute()` runs COCOeval twice
(masks, then boxes), with up to `max_dets` detections per image scored (COCO's 100 would cut
images with hundreds of nuclei short), and resamples the same images for both intervals.
Per image it also reports F1 at mask IoU 0.5 of the detections a user would keep (score >=
`MIN_SCORE`), which is what picks the worst images for the overlay figure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgetl.artifact.postprocess import Instances
from edgetl.data.samples import Sample
from edgetl.metrics.bootstrap import percentile_interval, resample_orders
from edgetl.metrics.detection import (
    DetectionEvaluator,
    _per_class,
    bootstrap_stats,
    summarize,
)
from edgetl.spec import TaskRecord
from edgetl.tasks.instance import TASK as _INSTANCE

INSTANCE_TASK: str = _INSTANCE.name  # what this module's reports score

MIN_SCORE = 0.3  # per-image F1 counts detections at or above this score (predict's default)


@dataclass
class InstanceReport:
    """What `compute` found; `to_dict()` is the JSON `evaluate --json` writes."""

    mask_stats: dict[str, float]
    box_stats: dict[str, float]
    per_class: list[dict[str, Any]]
    n_images: int
    n_instances: int
    max_detections: int
    per_image_f1: list[float]
    intervals: dict[str, list[float]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"task": INSTANCE_TASK}
        for prefix, stats in (("mask", self.mask_stats), ("box", self.box_stats)):
            out.update({f"{prefix}_{name}": value for name, value in stats.items()})
        for name, interval in self.intervals.items():
            out[f"{name}_ci95"] = interval
        out.update(per_class=self.per_class, n_images=self.n_images,
                   n_instances=self.n_instances, max_detections_scored=self.max_detections,
                   per_image_f1=self.per_image_f1, per_image_f1_min_score=MIN_SCORE)
        return out


class InstanceEvaluator(DetectionEvaluator):
    """Accumulate images (truth masks as RLE, detections with masks), then score both ways."""

    def __init__(self, record: TaskRecord, max_dets: int = 100) -> None:
        super().__init__(record)
        self.max_dets = max_dets
        self.gt_segm: list[dict[str, Any]] = []
        self.dt_segm: list[dict[str, Any]] = []

    def update(self, samples: list[Sample], found: list[Instances],  # type: ignore[override]
               truth: list[list[dict]]) -> None:
        """Add images: `truth` holds each sample's instance masks (COCO RLE at the file's
        size, in the order of its target) and `found` its detections with masks."""
        from pycocotools import mask as mask_utils

        first_gt, first_image = len(self.gt), len(self.images)
        super().update(samples, found, [f.size for f in found])
        rles = [rle for per_image in truth for rle in per_image]
        if len(rles) != len(self.gt) - first_gt:
            raise ValueError("one truth mask per ground-truth instance is needed")
        for entry, rle in zip(self.gt[first_gt:], rles, strict=True):
            self.gt_segm.append({**entry, "segmentation": rle,
                                 "area": float(mask_utils.area(_coco_rle(rle)))})
        for offset, instances in enumerate(found):
            image_id = first_image + offset + 1
            for rle, score, label in zip(instances.rles(), instances.scores, instances.labels,
                                         strict=True):
                self.dt_segm.append({"image_id": image_id, "category_id": int(label) + 1,
                                     "segmentation": rle, "score": float(score)})

    def compute(self, bootstrap: int = 0, seed: int = 0) -> InstanceReport:  # type: ignore[override]
        """The report; with `bootstrap` > 0, 95% intervals of mask and box mAP and AP50."""
        masks = self._coco_eval(self.gt_segm, self.dt_segm, "segm", self.max_dets)
        boxes = self._coco_eval(self.gt, self.dt, "bbox", self.max_dets)
        mask_stats, box_stats = summarize(masks), summarize(boxes)
        per_class = []
        for m, b in zip(_per_class(masks, self.record, self.gt),
                        _per_class(boxes, self.record, self.gt), strict=True):
            per_class.append({"name": m["name"], "mask_ap": m["ap"], "mask_ap50": m["ap50"],
                              "box_ap": b["ap"], "box_ap50": b["ap50"],
                              "n_instances": m["n_boxes"]})
        report = InstanceReport(mask_stats, box_stats, per_class, len(self.images),
                                self.n_boxes, max(100, self.max_dets), per_image_f1(masks))
        if bootstrap > 0 and self.images:
            orders = resample_orders(len(self.images), bootstrap, seed)
            for prefix, evaluation in (("mask", masks), ("box", boxes)):
                samples = bootstrap_stats(evaluation, bootstrap, orders=orders)
                for name in ("map", "map50"):
                    report.intervals[f"{prefix}_{name}"] = percentile_interval(samples[name])
        return report


def _coco_rle(rle: dict) -> dict:
    counts = rle["counts"]
    return {"size": rle["size"], "counts": counts.encode() if isinstance(counts, str) else counts}


def per_image_f1(evaluation: Any, min_score: float = MIN_SCORE) -> list[float]:
    """F1 at IoU 0.5 per image from COCOeval's own matching (all areas, every class), over
    detections scoring at least `min_score`; 1.0 for an image with nothing to find or found."""
    params = evaluation._paramsEval
    n_images, n_areas = len(params.imgIds), len(params.areaRng)
    n_classes = len(params.catIds) if params.useCats else 1
    counts = np.zeros((n_images, 3))  # true positives, false positives, missed
    for k in range(n_classes):
        for i in range(n_images):
            record = evaluation.evalImgs[k * n_areas * n_images + i]  # area range 0: all
            if record is None:
                continue
            kept = (np.asarray(record["dtScores"]) >= min_score) & ~record["dtIgnore"][0]
            matched = record["dtMatches"][0] > 0
            truth = int((~np.asarray(record["gtIgnore"], dtype=bool)).sum())
            tp = int((kept & matched).sum())
            counts[i] += (tp, int((kept & ~matched).sum()), truth - tp)
    return [1.0 if tp + fp + fn == 0 else float(2 * tp / (2 * tp + fp + fn))
            for tp, fp, fn in counts]


def truth_masks(samples: list[Sample], sizes: list[tuple[int, int]]) -> list[list[dict]]:
    """Each sample's instance masks as RLE at its file's (H, W)."""
    from edgetl.data.detection.masks import instance_rles

    return [instance_rles(s.target.masks, size) for s, size in zip(samples, sizes, strict=True)]
