"""COCO's per-image matching in numpy: what pycocotools' `COCOeval.evaluate` records for all
areas at the largest detection count, without pycocotools.

The device runner scores a bundle's sample with it (numpy is all a device is asked to have);
`edgetl.metrics.detection.paired_records_delta` turns the records into mAP, AP50 and their
paired bootstrap interval with the arithmetic verify's pycocotools evaluation uses, so both
machines report the same numbers (tested against pycocotools). The steps follow
`COCOeval.computeIoU` (box IoU in COCO's x, y, w, h arithmetic; a crowd truth's IoU is the
intersection over the detection's area) and `COCOeval.evaluateImg` (truths sorted with the
ignored last, detections by score, greedy matching at each IoU threshold).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

# pycocotools' `Params.setDetParams`
IOU_THRESHOLDS = np.linspace(0.5, 0.95, int(np.round((0.95 - 0.5) / 0.05)) + 1, endpoint=True)
RECALL_POINTS = np.linspace(0.0, 1.0, int(np.round((1.0 - 0.0) / 0.01)) + 1, endpoint=True)

@dataclass(frozen=True)
class Truth:
    """One image's ground truth: boxes (x1, y1, x2, y2, the file's pixels), class indices,
    crowd flags, and (instance models) a boolean mask per row."""

    boxes: np.ndarray
    labels: np.ndarray
    crowd: np.ndarray
    masks: np.ndarray | None = None


def box_overlaps(detections: np.ndarray, truths: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' `bbIou` on x1, y1, x2, y2 rows, converted to x, y, w, h as COCO stores
    them (so the floating-point steps are the same)."""
    d = np.column_stack([detections[:, :2], detections[:, 2:] - detections[:, :2]])
    g = np.column_stack([truths[:, :2], truths[:, 2:] - truths[:, :2]])
    w = (np.minimum((d[:, 2] + d[:, 0])[:, None], (g[:, 2] + g[:, 0])[None])
         - np.maximum(d[:, 0][:, None], g[:, 0][None]))
    h = (np.minimum((d[:, 3] + d[:, 1])[:, None], (g[:, 3] + g[:, 1])[None])
         - np.maximum(d[:, 1][:, None], g[:, 1][None]))
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    d_area, g_area = (d[:, 2] * d[:, 3])[:, None], (g[:, 2] * g[:, 3])[None]
    union = np.where(crowd[None].astype(bool), d_area, d_area + g_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def mask_overlaps(detections: np.ndarray, truths: np.ndarray, crowd: np.ndarray) -> np.ndarray:
    """pycocotools' `rleIou` on boolean masks [n, H, W]: intersection over union in pixels,
    over the detection's area for a crowd truth; no shared pixel is 0."""
    d = detections.reshape(len(detections), -1).astype(np.float64)
    g = truths.reshape(len(truths), -1).astype(np.float64)
    inter = d @ g.T
    d_area, g_area = d.sum(axis=1)[:, None], g.sum(axis=1)[None]
    union = np.where(crowd[None].astype(bool), d_area, d_area + g_area - inter)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(inter > 0, inter / np.where(union > 0, union, 1.0), 0.0)


def match_image(ious: np.ndarray, ignored: np.ndarray, crowd: np.ndarray,
                thresholds: np.ndarray = IOU_THRESHOLDS) -> tuple[np.ndarray, np.ndarray]:
    """`evaluateImg`'s matching of detections (rows of `ious`, best score first) to truths
    (columns): (matched [T, D], matched an ignored truth [T, D])."""
    order = np.argsort(ignored, kind="mergesort")
    ious, ignored, crowd = ious[:, order], ignored[order], crowd[order]
    n_thr, (n_det, n_truth) = len(thresholds), ious.shape
    truth_used = np.zeros((n_thr, n_truth), dtype=bool)
    matched = np.zeros((n_thr, n_det), dtype=bool)
    det_ignored = np.zeros((n_thr, n_det), dtype=bool)
    if n_det == 0 or n_truth == 0:
        return matched, det_ignored
    for t, threshold in enumerate(thresholds):
        for d in range(n_det):
            best, m = min(threshold, 1 - 1e-10), -1
            for g in range(n_truth):
                if truth_used[t, g] and not crowd[g]:
                    continue
                if m > -1 and not ignored[m] and ignored[g]:
                    break
                if ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m == -1:
                continue
            det_ignored[t, d] = ignored[m]
            matched[t, d] = True
            truth_used[t, m] = True
    return matched, det_ignored


def image_records(truth: Sequence[Truth], scores: Sequence[np.ndarray],
                  labels: Sequence[np.ndarray], overlaps: Callable[[int, np.ndarray,
                                                                    np.ndarray], np.ndarray],
                  num_classes: int, max_dets: int = 100) -> list[list[tuple | None]]:
    """Per class, per image: (scores, matched [T, D], ignored [T, D], counted truths), the
    shape `edgetl.metrics.detection` reads from COCOeval, or None where the image has neither
    truth nor detection of the class. `overlaps(image, detection rows, truth rows)`: IoU of
    those rows of the image."""
    out: list[list[tuple | None]] = []
    for k in range(num_classes):
        rows: list[tuple | None] = []
        for i, found in enumerate(truth):
            gt = np.flatnonzero(np.asarray(found.labels) == k)
            dt = np.flatnonzero(np.asarray(labels[i]) == k)
            if not len(gt) and not len(dt):
                rows.append(None)
                continue
            dt_scores = np.asarray(scores[i], dtype=np.float64)[dt]
            ranked = np.argsort(-dt_scores, kind="mergesort")[:max_dets]
            dt = dt[ranked]
            crowd = np.asarray(found.crowd, dtype=bool)[gt]
            ious = overlaps(i, dt, gt) if len(dt) and len(gt) else np.zeros((len(dt), len(gt)))
            matched, ignored = match_image(ious, crowd, crowd)
            rows.append((dt_scores[ranked], matched, ignored, int((~crowd).sum())))
        out.append(rows)
    return out
