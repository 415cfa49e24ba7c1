"""The device's numpy COCO matching (`edgetl.metrics.coco_match`) against pycocotools: on the
same boxes, masks and detections, the mAP gate's figures (point estimates, paired bootstrap
interval) are verify's, to rounding, so a device and the training machine judge alike."""

from __future__ import annotations

import numpy as np
import pytest

from edgetl.artifact.postprocess import Detections, Instances
from edgetl.data.samples import Sample
from edgetl.data.targets import BoxTarget
from edgetl.device.detection import box_records
from edgetl.device.instance import mask_records
from edgetl.metrics.coco_match import Truth
from edgetl.metrics.detection import DetectionEvaluator, paired_map_delta, paired_records_delta
from edgetl.spec import TaskRecord

pytest.importorskip("pycocotools")

RECORD = TaskRecord(("cat", "dog", "owl"), task="detection")
SIZE = (90, 120)  # H, W
ROUNDS = 200


def _scene(rng: np.random.Generator, images: int) -> tuple[list[Sample], list[Truth]]:
    """Images with 0-5 boxes of three classes, one in six a crowd box."""
    samples, truth = [], []
    for _ in range(images):
        n = int(rng.integers(0, 6))
        xy = rng.uniform(0, [SIZE[1] - 30, SIZE[0] - 30], (n, 2))
        wh = rng.uniform(6, 30, (n, 2))
        boxes = np.round(np.column_stack([xy, xy + wh]), 1)
        labels = rng.integers(0, 3, n)
        crowd = rng.random(n) < 1 / 6
        samples.append(Sample("/img.jpg", "x", target=BoxTarget(
            boxes=[tuple(float(v) for v in b) for b in boxes],
            labels=[RECORD.names[k] for k in labels], crowd=[bool(c) for c in crowd],
            image_size=SIZE)))
        truth.append(Truth(boxes, labels, crowd))
    return samples, truth


def _detections(rng: np.random.Generator, truth: list[Truth], jitter: float) -> list[Detections]:
    """Each truth box found with `jitter` px of noise (a wrong class now and then), plus false
    positives; scores with ties."""
    found = []
    for t in truth:
        boxes = t.boxes + rng.normal(0, jitter, t.boxes.shape)
        labels = np.where(rng.random(len(t.labels)) < 0.1, (t.labels + 1) % 3, t.labels)
        extra = int(rng.integers(0, 4))
        xy = rng.uniform(0, 80, (extra, 2))
        boxes = np.vstack([boxes, np.column_stack([xy, xy + rng.uniform(5, 25, (extra, 2))])])
        labels = np.concatenate([labels, rng.integers(0, 3, extra)]).astype(np.int64)
        boxes[:, 2:] = np.maximum(boxes[:, 2:], boxes[:, :2] + 1)
        scores = np.round(rng.uniform(0.05, 1.0, len(boxes)), 1)  # ties on purpose
        found.append(Detections(boxes, scores, labels))
    return found


def _assert_same(ours: dict, theirs: dict) -> None:
    for stat in ("map", "map50"):
        for key in ("first", "second", "delta"):
            assert ours[stat][key] == pytest.approx(theirs[stat][key], abs=1e-12)
        assert ours[stat]["delta_ci95"] == pytest.approx(theirs[stat]["delta_ci95"], abs=1e-12)


def test_box_map_delta_equals_pycocotools() -> None:
    rng = np.random.default_rng(4)
    samples, truth = _scene(rng, 25)
    first, second = _detections(rng, truth, 1.0), _detections(rng, truth, 4.0)
    evaluations = []
    for found in (first, second):
        evaluator = DetectionEvaluator(RECORD)
        evaluator.update(samples, found, [SIZE] * len(samples))
        evaluations.append(evaluator.coco_eval())
    theirs = paired_map_delta(*evaluations, rounds=ROUNDS)
    ours = paired_records_delta(box_records(truth, first, 3), box_records(truth, second, 3),
                                len(truth), rounds=ROUNDS)
    assert 0.2 < theirs["map50"]["first"] < 1.0  # a scene with hits, misses and crowds
    _assert_same(ours, theirs)


def _blob(rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """A boolean ellipse inside `box` at the image's size."""
    yy, xx = np.mgrid[0:SIZE[0], 0:SIZE[1]] + 0.5
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    rx, ry = (box[2] - box[0]) / 2, (box[3] - box[1]) / 2
    return ((xx - cx) / rx) ** 2 + ((yy - cy) / ry) ** 2 <= 1.0 + rng.uniform(-0.2, 0.0)


def test_mask_map_delta_equals_pycocotools() -> None:
    from pycocotools import mask as mask_utils

    from edgetl.metrics.instance import InstanceEvaluator

    rng = np.random.default_rng(7)
    samples, boxes_only = _scene(rng, 16)
    truth, rles = [], []
    for t in boxes_only:
        masks = np.stack([_blob(rng, b) for b in t.boxes]) if len(t.boxes) else np.zeros(
            (0, *SIZE), dtype=bool)
        truth.append(Truth(t.boxes, t.labels, t.crowd, masks))
        encoded = [mask_utils.encode(np.asfortranarray(m.astype(np.uint8))) for m in masks]
        rles.append([{"size": r["size"], "counts": r["counts"].decode()} for r in encoded])
    yy, xx = np.mgrid[0:7, 0:7]
    disc = np.where((yy - 3) ** 2 + (xx - 3) ** 2 <= 10, 0.8, 0.2)  # an ellipse over its box
    sets = []
    for jitter in (1.0, 3.0):
        sets.append([Instances(d.boxes, d.scores, d.labels,
                               (disc + rng.normal(0, 0.15, (len(d.scores), 7, 7))
                                ).astype(np.float32), d.boxes, SIZE)
                     for d in _detections(rng, truth, jitter)])
    evaluations = []
    for found in sets:
        evaluator = InstanceEvaluator(RECORD, 20)
        evaluator.update(samples, found, rles)
        evaluations.append(evaluator._coco_eval(evaluator.gt_segm, evaluator.dt_segm, "segm",
                                                20))
    theirs = paired_map_delta(*evaluations, rounds=ROUNDS)
    ours = paired_records_delta(mask_records(truth, sets[0], 3, 100),
                                mask_records(truth, sets[1], 3, 100), len(truth), rounds=ROUNDS)
    assert 0.2 < theirs["map50"]["first"] < 1.0
    _assert_same(ours, theirs)
