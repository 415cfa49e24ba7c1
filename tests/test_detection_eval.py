"""Detection evaluation with pycocotools: AP by hand, bootstrap, confusion, NMS outputs."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from edgetl.artifact.postprocess import Detections
from edgetl.data.samples import Sample
from edgetl.data.targets import BoxTarget
from edgetl.metrics.detection import DetectionEvaluator, paired_map_delta
from edgetl.spec import TaskRecord

RECORD = TaskRecord(("cat", "dog"), task="detection")


def image(boxes: list[tuple[float, float, float, float]], labels: list[str],
          crowd: list[bool] | None = None) -> Sample:
    return Sample("/img.jpg", "x", target=BoxTarget(boxes=boxes, labels=labels,
                                                     crowd=crowd or [], image_size=(200, 300)))


def test_ap_matches_the_101_point_interpolation_by_hand() -> None:
    # Two cats; detections by score: hit, miss, hit -> precision 1, 1/2, 2/3 at recall .5, .5, 1
    # Interpolated: 1.0 for recall <= 0.5 (51 of COCO's 101 points), 2/3 above (50 points).
    sample = image([(10, 10, 50, 50), (100, 100, 150, 160)], ["cat", "cat"])
    found = Detections(np.array([[10, 10, 50, 50], [200, 10, 240, 40], [100, 100, 150, 160]]),
                       np.array([0.9, 0.8, 0.7]), np.array([0, 0, 0]))
    evaluator = DetectionEvaluator(RECORD)
    evaluator.update([sample], [found])
    report = evaluator.compute()
    expected = (51 + 50 * 2 / 3) / 101
    assert report.stats["map"] == pytest.approx(expected, abs=1e-9)
    assert report.stats["map50"] == pytest.approx(expected, abs=1e-9)
    assert report.per_class[0] == {"name": "cat", "ap": pytest.approx(expected),
                                   "ap50": pytest.approx(expected), "n_boxes": 2}
    # dog has no ground truth: COCO marks it absent (-1) and the report says 0
    assert report.per_class[1]["ap"] == 0.0 and report.n_boxes == 2
    matrix = report.confusion["matrix"]  # rows truth (cat, dog, bg), columns detected
    assert matrix == [[2, 0, 0], [0, 0, 0], [1, 0, 0]]


def test_crowd_boxes_neither_count_nor_punish() -> None:
    sample = image([(10, 10, 50, 50), (100, 100, 200, 190)], ["cat", "cat"], [False, True])
    found = Detections(np.array([[10, 10, 50, 50], [110, 110, 190, 180]]), np.array([0.9, 0.95]),
                       np.array([0, 0]))
    evaluator = DetectionEvaluator(RECORD)
    evaluator.update([sample], [found])
    report = evaluator.compute()
    assert report.n_boxes == 1
    assert report.stats["map50"] == pytest.approx(1.0)  # the detection on the crowd is ignored


def test_bootstrap_interval_and_paired_delta() -> None:
    rng = np.random.default_rng(0)
    samples = [image([(10, 10, 60, 60)], ["dog"]) for _ in range(30)]
    exact = [Detections(np.array(s.target.boxes), np.array([0.9]), np.array([1]))
             for s in samples]
    noisy = [Detections(np.array(s.target.boxes) + rng.normal(0, 4, (1, 4)), np.array([0.9]),
                        np.array([1])) for s in samples]
    evaluations = []
    for found in (exact, noisy):
        evaluator = DetectionEvaluator(RECORD)
        evaluator.update(samples, found)
        evaluations.append(evaluator)
    report = evaluations[1].compute(bootstrap=200)
    low, high = report.to_dict()["map_ci95"]
    assert low <= report.stats["map"] <= high < 1.0
    assert evaluations[0].compute(bootstrap=50).to_dict()["map_ci95"] == [1.0, 1.0]
    delta = paired_map_delta(evaluations[0].coco_eval(), evaluations[1].coco_eval(), rounds=200)
    assert delta["map"]["first"] == pytest.approx(1.0)
    assert delta["map"]["delta"] < 0 and delta["map"]["delta_ci95"][1] < 0


def test_detection_outputs_follow_onnx_nms_semantics() -> None:
    from torchvision.ops import batched_nms

    from edgetl.models.detection_outputs import DetectionOutputs

    outputs = DetectionOutputs.__new__(DetectionOutputs)  # select() needs no detector
    torch.nn.Module.__init__(outputs)
    outputs.max_detections, outputs.score_threshold, outputs.nms_iou = 6, 0.1, 0.5
    boxes = torch.tensor([[[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60], [0, 0, 10, 10],
                           [80, 80, 90, 90]]], dtype=torch.float32)
    scores = torch.tensor([[[0.9, 0.1], [0.8, 0.05], [0.7, 0.6], [0.05, 0.95],
                            [0.09, 0.08]]])  # [N, A, C]
    found = outputs.select(boxes, scores)
    # By hand: class 0 keeps anchors 0 (0.9) and 2 (0.7), anchor 1 overlaps anchor 0 (IoU
    # 81/119 > 0.5); class 1 keeps 3 (0.95) and 2 (0.6), its 0.1 is not above the threshold.
    assert found["num_detections"].tolist() == [4]
    assert found["scores"][0].tolist() == pytest.approx([0.95, 0.9, 0.7, 0.6, 0, 0])
    assert found["labels"][0].tolist() == [1, 0, 0, 1, -1, -1]
    assert found["boxes"][0, 4:].tolist() == [[0, 0, 0, 0]] * 2
    assert found["boxes"][0, 0].tolist() == [0, 0, 10, 10]
    # torchvision's batched NMS keeps the same four
    flat_boxes, flat_scores = boxes[0].repeat(2, 1), scores[0].T.reshape(-1)
    classes = torch.arange(2).repeat_interleave(5)
    keep = flat_scores > 0.1
    kept = batched_nms(flat_boxes[keep], flat_scores[keep], classes[keep], 0.5)
    assert flat_scores[keep][kept].tolist() == pytest.approx([0.95, 0.9, 0.7, 0.6])


def test_bootstrap_resamples_equal_pycocotools_accumulate_and_summarize() -> None:
    """Two classes, crowd regions, tied scores, misses and images without detections: the
    vectorised resample statistic equals pycocotools' accumulate + summarize exactly."""
    from edgetl.metrics.detection import (
        _per_image_records,
        _resample_stats,
        _resampled,
        summarize,
    )

    rng = np.random.default_rng(5)
    samples, found = [], []
    for i in range(12):
        count = int(rng.integers(1, 5))
        boxes = [tuple(float(v) for v in (x, y, x + 30, y + 30)) for x, y in
                 rng.integers(0, 150, size=(count, 2))]
        labels = [str(rng.choice(["cat", "dog"])) for _ in boxes]
        crowd = [bool(i % 5 == 0 and k == 0) for k in range(count)]
        samples.append(image(boxes, labels, crowd))
        keep = [k for k in range(count) if rng.random() < 0.7]
        guessed = np.array([boxes[k] for k in keep]).reshape(-1, 4)
        guessed = guessed + rng.normal(0, 3, guessed.shape)
        scores = np.round(rng.random(len(keep)), 1)  # ties on purpose
        found.append(Detections(guessed, scores,
                                np.array([RECORD.index(labels[k]) for k in keep], dtype=np.int64)))
    evaluator = DetectionEvaluator(RECORD)
    evaluator.update(samples, found)
    evaluation = evaluator.coco_eval()
    records = _per_image_records(evaluation)
    for order in rng.integers(0, 12, size=(20, 12)):
        full = summarize(_resampled(evaluation, order))
        fast = _resample_stats(records, order, evaluation.params.iouThrs,
                               evaluation.params.recThrs)
        assert fast["map"] == pytest.approx(full["map"], abs=1e-12)
        assert fast["map50"] == pytest.approx(full["map50"], abs=1e-12)
