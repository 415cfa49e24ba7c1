"""The shared metric pieces (box IoU, bootstrap draws, percentile interval, paired difference)
and verify's one budgets helper, pinned against values worked out by hand."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from edgetl import tasks
from edgetl.metrics.bootstrap import paired_delta, percentile_interval, resample_orders
from edgetl.metrics.boxes import box_iou
from edgetl.metrics.semantic import paired_miou_delta


def test_box_iou_by_hand() -> None:
    a = np.array([[0.0, 0.0, 2.0, 2.0]])
    b = np.array([[1.0, 1.0, 3.0, 3.0], [0.0, 0.0, 2.0, 2.0], [5.0, 5.0, 6.0, 6.0]])
    # overlap 1x1 of two 2x2 boxes: 1 / (4 + 4 - 1); the same box; disjoint
    assert box_iou(a, b).tolist() == [[1 / 7, 1.0, 0.0]]
    assert box_iou(a, np.zeros((0, 4))).shape == (1, 0)
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)


def test_resample_orders_are_the_seeded_generators_draws() -> None:
    # the draws every interval has used: numpy's PCG64 stream for seed 0
    assert resample_orders(5, 2, seed=0).tolist() == [[4, 3, 2, 1, 1], [0, 0, 0, 0, 4]]


def test_percentile_interval_by_hand() -> None:
    values = np.arange(101, dtype=float)
    assert percentile_interval(values) == pytest.approx([2.5, 97.5])
    assert percentile_interval(values, level=0.9) == pytest.approx([5.0, 95.0])


def test_paired_delta_resamples_both_sides_alike() -> None:
    first, second = np.array([1.0, 2, 3, 4, 5]), np.array([1.0, 2, 3, 14, 5])

    def point(x: np.ndarray) -> dict[str, float]:
        return {"mean": float(x.mean())}

    def resampled(x: np.ndarray, orders: np.ndarray) -> dict[str, np.ndarray]:
        return {"mean": x[orders].mean(axis=1)}

    delta = paired_delta(first, second, 5, ("mean",), point, resampled, rounds=2, seed=0)
    # draws [4,3,2,1,1] (item 3 once: +10/5) and [0,0,0,0,4] (never): differences 2 and 0
    assert delta["mean"]["first"] == 3.0 and delta["mean"]["second"] == 5.0
    assert delta["mean"]["delta"] == 2.0
    assert delta["mean"]["delta_ci95"] == pytest.approx([0.05, 1.95])


def test_paired_miou_delta_by_hand() -> None:
    # class 0: 3 / (3 + 1); class 1: 4 / (4 + 1) -> mIoU 0.775 on both sides
    matrix = np.array([[3, 1], [0, 4]])
    delta = paired_miou_delta([matrix, matrix], [matrix, matrix], rounds=20)
    assert delta == {"first": pytest.approx(0.775), "second": pytest.approx(0.775),
                     "delta": 0.0, "delta_ci95": [0.0, 0.0]}


def _budgets(task: str, fmt: str, precision: str, agreement: float | None = None,
             drop: float | None = None) -> tuple[object, dict]:
    art = SimpleNamespace(format=fmt, precision=precision)
    return tasks.get(task).load("verify_budgets")(art, agreement, drop)


def test_each_task_gets_its_table_row_and_the_flags_override_its_two_fields() -> None:
    names = tasks.names()
    _, record = _budgets(names[0], "onnx-int8", "int8")
    assert record == {"top1_agreement": 0.98, "accuracy_points": 1.0,
                      "golden_mean_255": 0.5, "golden_max_255": 3.0}
    _, record = _budgets(names[0], "onnx-fp16", "fp16", 0.9, 2.0)
    assert (record["top1_agreement"], record["accuracy_points"]) == (0.9, 2.0)
    _, record = _budgets(names[1], "onnx", "fp32", None, 3.0)
    assert record == {"match_rate": 0.99, "median_iou": 0.98, "map_points": 3.0,
                      "min_score": 0.3}
    budgets, record = _budgets(names[2], "onnx", "bf16", 0.5)  # unknown precision: int8's
    assert record == {"pixel_agreement": 0.5, "miou_points": 1.5}
    _, record = _budgets(names[3], "onnx-fp16", "fp16", 0.7, 4.0)
    assert (record["match_rate"], record["mask_map_points"], record["map_points"],
            record["mask_iou"]) == (0.7, 4.0, 0.5, 0.93)


def test_verify_help_lists_every_tasks_defaults() -> None:
    from edgetl.cli.verify_cmd import _budget_defaults

    agreement, drop = _budget_defaults()
    assert agreement == (
        "top-1 agreement for classification (1/0.995/0.98), matched-detection share for "
        "detection (0.99/0.98/0.95) and instance segmentation (0.99/0.98/0.95), pixel "
        "agreement for semantic segmentation (0.995/0.99/0.98)")
    assert drop == (
        "accuracy for classification (0.5/0.5/1), mAP for detection (0.5/0.5/1.5), mIoU for "
        "semantic segmentation (0.5/0.5/1.5), mask mAP for instance segmentation (0.5/0.5/2)")
