"""Instance segmentation: mask pasting, segm mAP on hand-made cases, and the real CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetl.artifact.postprocess import Instances, paste_mask
from edgetl.data.detection.masks import encode
from edgetl.data.samples import Sample
from edgetl.data.targets import InstanceMask, InstanceTarget
from edgetl.metrics.instance import InstanceEvaluator
from edgetl.spec import TaskRecord

REPO = Path(__file__).resolve().parents[1]


def test_paste_mask_matches_a_hand_computed_case() -> None:
    # A 2x2 mask over the box (0, 0, 4, 4): pixel centres 0.5..3.5 sample the mask at
    # u = x / 4 * 2 - 0.5 = -0.25, 0.25, 0.75, 1.25 (edges clamp). Left column on:
    # 1, 0.75, 0.25, 0 -> the first two columns exceed 0.5.
    crop, (left, top) = paste_mask(np.array([[1.0, 0.0], [1.0, 0.0]]),
                                   np.array([0.0, 0.0, 4.0, 4.0]), (6, 6))
    assert (left, top) == (0, 0)
    np.testing.assert_array_equal(crop, np.array([[1, 1, 0, 0]] * 4, dtype=bool))
    # Top-left cell only: (0.75 x 0.75 = 0.5625) at the 2x2 pixels nearest it, 0.1875 beyond.
    crop, _ = paste_mask(np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([0.0, 0.0, 4.0, 4.0]),
                         (6, 6))
    assert crop.sum() == 4 and crop[:2, :2].all()
    # A box reaching outside the image is pasted at its own scale, cut at the border.
    crop, (left, top) = paste_mask(np.ones((4, 4)), np.array([-2.0, 3.0, 2.0, 9.0]), (8, 8))
    assert (left, top) == (0, 3) and crop.shape == (5, 2) and crop.all()


def test_instances_mask_and_id_map_at_the_file_size() -> None:
    found = Instances(np.array([[1.0, 1, 5, 5], [3.0, 3, 7, 7]]), np.array([0.9, 0.5]),
                      np.array([0, 0]), np.ones((2, 4, 4), np.float32),
                      np.array([[1.0, 1, 5, 5], [3.0, 3, 7, 7]]), (8, 10))
    assert found.mask(0).shape == (8, 10) and found.mask(0).sum() == 16
    ids = found.id_map()
    assert ids[4, 4] == 1  # the overlap goes to the higher score
    assert ids[6, 6] == 2 and ids[0, 0] == 0
    assert (ids > 0).sum() == 16 + 16 - 4
    assert found.rles()[1]["size"] == [8, 10]


def _sample(path: str, blocks: list[tuple[slice, slice]], size=(20, 30)) -> tuple[Sample, list]:
    rles, boxes = [], []
    for rows, cols in blocks:
        mask = np.zeros(size, dtype=bool)
        mask[rows, cols] = True
        rles.append(encode(mask))
        boxes.append((cols.start, rows.start, cols.stop, rows.stop))
    target = InstanceTarget(boxes=tuple(boxes), labels=("cell",) * len(boxes),
                            masks=tuple(InstanceMask(rle=r) for r in rles), image_size=size)
    return Sample(path=path, label="", target=target), rles


def _perfect(blocks: list[tuple[slice, slice]], scores: list[float], size=(20, 30)
             ) -> Instances:
    """Detections that are exactly the truth: each box with a full mask over it."""
    boxes = np.array([[c.start, r.start, c.stop, r.stop] for r, c in blocks], dtype=float)
    return Instances(boxes.reshape(-1, 4), np.array(scores), np.zeros(len(blocks), np.int64),
                     np.ones((len(blocks), 14, 14), np.float32), boxes.reshape(-1, 4), size)


BLOCKS = [[(slice(0, 6), slice(0, 8)), (slice(10, 18), slice(4, 12))],
          [(slice(2, 9), slice(15, 28))]]


def test_segm_map_on_hand_made_cases() -> None:
    record = TaskRecord(task="instance", names=["cell"])
    samples = [_sample(f"img{i}.png", b) for i, b in enumerate(BLOCKS)]
    perfect = InstanceEvaluator(record)
    perfect.update([s for s, _ in samples], [_perfect(b, [0.9] * len(b)) for b in BLOCKS],
                   [r for _, r in samples])
    report = perfect.compute(bootstrap=50).to_dict()
    assert report["mask_map"] == pytest.approx(1.0) and report["box_map"] == pytest.approx(1.0)
    assert report["mask_map_ci95"] == pytest.approx([1.0, 1.0])
    assert report["n_images"] == 2 and report["n_instances"] == 3
    assert report["per_image_f1"] == [1.0, 1.0]
    # One of three instances missed, the other two perfect: precision 1 up to recall 2/3, then
    # nothing, so COCO's 101-point AP is 67/101 (recall points 0, 0.01, ..., 0.66) at every IoU.
    missing = InstanceEvaluator(record)
    missing.update([s for s, _ in samples], [_perfect(BLOCKS[0], [0.9, 0.8]),
                                             _perfect([], [])], [r for _, r in samples])
    report = missing.compute().to_dict()
    assert report["mask_map"] == pytest.approx(67 / 101)
    assert report["mask_map50"] == pytest.approx(67 / 101)
    assert report["per_image_f1"] == [1.0, 0.0]
    assert report["per_class"][0]["n_instances"] == 3


def cli(*args: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, "COLUMNS": "160"})


RECIPE = """\
name: inst-test
task: instance
data: {val_fraction: 0.2, test_fraction: 0.25}
model:
  architecture: mobilenetv2_100
  input_size: 96
  instance: {fpn_channels: 32, head_convs: 1, mask_channels: 16, mask_resolution: 14,
             max_detections: 30}
augment: {preset: light}
train: {batch_size: 8, eval_batch_size: 8, num_threads: 1}
phases:
  - {name: A, epochs: 2, unfreeze: head, lr: 5.0e-3}
"""


def test_finetune_and_evaluate_an_instance_run(tmp_path: Path) -> None:
    import instgen

    data = instgen.make_id_masks(tmp_path / "cells", 24, seed=1)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    done = cli("finetune", recipe, "--data", data, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert "test_mask_map" in summary
    lines = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert all({"val_mask_map", "val_map", "val_loss"} <= set(line) for line in lines)
    done = cli("evaluate", tmp_path / "run", "--json", tmp_path / "eval.json",
               "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    for key in ("task", "mask_map", "mask_map50", "mask_map_ci95", "box_map", "box_map50",
                "per_class", "n_images", "n_instances"):
        assert key in report, key
    assert report["task"] == "instance"
    # the test split: 6 of 24 images; its instances counted from the masks written
    assert report["n_images"] == 6 == len(report["per_image_f1"])
    import instgen as g

    written = {f"cells-{i:03d}.png": int(g.draw_scene(10_000 + i)[1].max()) for i in range(24)}
    tested = [Path(w["path"]).name for w in report["worst_images"]]
    assert report["n_instances"] == sum(written[name] for name in tested)
    for key in ("mask_map", "mask_map50", "box_map", "box_map50"):
        assert 0.0 <= report[key] <= 1.0
    low, high = report["mask_map_ci95"]
    assert low <= report["mask_map"] + 1e-9 and report["mask_map"] <= high + 1e-9
    assert report["per_class"][0]["n_instances"] == report["n_instances"]
    assert (tmp_path / "out" / "worst-test.png").stat().st_size > 1000


def test_map_scores_more_than_100_detections_per_image() -> None:
    """An image with 150 instances, all found: COCO's default of 100 detections would cap
    recall at 2/3; the evaluator scores up to its max_dets, and mAP is read there too."""
    record = TaskRecord(task="instance", names=["cell"])
    blocks = [(slice(r * 4, r * 4 + 3), slice(c * 4, c * 4 + 3)) for r in range(10)
              for c in range(15)]
    sample, rles = _sample("many.png", blocks, size=(40, 60))
    evaluator = InstanceEvaluator(record, max_dets=200)
    evaluator.update([sample], [_perfect(blocks, list(np.linspace(0.9, 0.5, 150)), (40, 60))],
                     [rles])
    report = evaluator.compute().to_dict()
    assert report["mask_map"] == pytest.approx(1.0) and report["box_map"] == pytest.approx(1.0)
    assert report["mask_map50"] == pytest.approx(1.0)
    assert report["max_detections_scored"] == 200


def test_lean_bootstrap_resamples_equal_pycocotools_summarize() -> None:
    """The bootstrap computes only the curve mAP reads, vectorised; on every resample it
    must give what pycocotools' full accumulate + summarize gives."""
    from edgetl.metrics.detection import (
        _per_image_records,
        _resample_stats,
        _resampled,
        summarize,
    )

    record = TaskRecord(task="instance", names=["cell"])
    rng = np.random.default_rng(3)
    evaluator = InstanceEvaluator(record, max_dets=150)
    for i, blocks in enumerate(BLOCKS * 3):
        sample, rles = _sample(f"img{i}.png", blocks)
        shifted = [(slice(r.start + int(rng.integers(0, 3)), r.stop), c) for r, c in blocks]
        evaluator.update([sample], [_perfect(shifted[: len(blocks) - i % 2],
                                             list(rng.random(len(blocks) - i % 2)))], [rles])
    for evaluation in (evaluator._coco_eval(evaluator.gt_segm, evaluator.dt_segm, "segm", 150),
                       evaluator.coco_eval()):
        records = _per_image_records(evaluation)
        for order in rng.integers(0, 6, size=(8, 6)):
            full = summarize(_resampled(evaluation, order))
            lean = _resample_stats(records, order, evaluation.params.iouThrs,
                                   evaluation.params.recThrs)
            assert lean["map"] == pytest.approx(full["map"], abs=1e-12)
            assert lean["map50"] == pytest.approx(full["map50"], abs=1e-12)
