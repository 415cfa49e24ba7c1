"""Matching an artifact's detections to the torch model's: greedy pairs, mask IoU.

Shared by verify's parity checks and the int8 search's judges (export), so both measure the
same thing; kept below both layers.
"""

from __future__ import annotations

import numpy as np

from edgetl.artifact.postprocess import Detections, Instances, paste_mask
from edgetl.metrics.boxes import box_iou

MATCH_IOU = 0.5


def match_pairs(reference: Detections, candidate: Detections, min_score: float,
                iou: float = MATCH_IOU) -> tuple[int, list[tuple[int, int, float]]]:
    """`match_detections` with the pairs: (reference row, candidate row, box IoU), rows of
    the detections as given (the reference's above `min_score` only)."""
    rows = np.flatnonzero(reference.scores >= min_score)
    order = rows[np.argsort(-reference.scores[rows], kind="stable")]
    overlaps = box_iou(reference.boxes, candidate.boxes)
    free = np.ones(len(candidate.boxes), dtype=bool)
    matched: list[tuple[int, int, float]] = []
    for i in order:
        same = (candidate.labels == reference.labels[i]) & free
        if not same.any():
            continue
        row = np.where(same, overlaps[i], -1.0)
        best = int(np.argmax(row))
        if row[best] >= iou:
            free[best] = False
            matched.append((int(i), best, float(row[best])))
    return len(rows), matched


def mask_iou(a: Instances, i: int, b: Instances, j: int) -> float:
    """IoU of instance `i` of `a` and instance `j` of `b`, pasted at the file's size (only
    the window both boxes cover is built)."""
    crop_a, (left_a, top_a) = paste_mask(a.masks[i], a.paste_boxes[i], a.size)
    crop_b, (left_b, top_b) = paste_mask(b.masks[j], b.paste_boxes[j], b.size)
    left, top = min(left_a, left_b), min(top_a, top_b)
    right = max(left_a + crop_a.shape[1], left_b + crop_b.shape[1])
    bottom = max(top_a + crop_a.shape[0], top_b + crop_b.shape[0])
    window = np.zeros((2, bottom - top, right - left), dtype=bool)
    window[0, top_a - top:top_a - top + crop_a.shape[0],
           left_a - left:left_a - left + crop_a.shape[1]] = crop_a
    window[1, top_b - top:top_b - top + crop_b.shape[0],
           left_b - left:left_b - left + crop_b.shape[1]] = crop_b
    union = int(np.logical_or(window[0], window[1]).sum())
    return 1.0 if union == 0 else float(np.logical_and(window[0], window[1]).sum() / union)


def matched_mask_ious(reference: list[Instances], candidate: list[Instances],
                      min_score: float) -> tuple[int, list[float]]:
    """(reference detections considered, mask IoU of each matched pair) over the images."""
    considered, ious = 0, []
    for ref, cand in zip(reference, candidate, strict=True):
        n, pairs = match_pairs(ref, cand, min_score)
        considered += n
        ious += [mask_iou(ref, i, cand, j) for i, j, _ in pairs]
    return considered, ious
