"""Instance segmentation on tiles: a generated id-mask set, `tile:` in the recipe, a few
training steps, ONNX export; `predict` and `evaluate ARTIFACT` cut the same windows and put
each instance's box and mask in the image's own pixels. And the merge of instances across
tiles, by hand."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetl.artifact.postprocess import Instances, merge_instance_tiles

REPO = Path(__file__).resolve().parents[1]

RECIPE = """\
name: inst-tiles
task: instance
data: {val_fraction: 0.2, test_fraction: 0.25}
model:
  architecture: mobilenetv2_100
  input_size: 64
  instance: {fpn_channels: 16, head_convs: 1, mask_channels: 8, mask_resolution: 14,
             max_detections: 30}
augment: {preset: light}
tile: {size: 64, overlap: 0.0, whole_image: true}
train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}
phases:
  - {name: A, steps: 2, unfreeze: head, lr: 5.0e-3}
"""


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "COLUMNS": "160"})


def test_instances_merge_across_tiles_with_their_masks() -> None:
    # one instance seen by two tiles of a 200 x 100 image (windows start at 0 and 80): the
    # higher score stays, its box and paste box shifted by its window, its own mask kept
    mask_a, mask_b = np.full((1, 4, 4), 0.9), np.full((1, 4, 4), 0.2)
    left = Instances(np.array([[90.0, 10, 100, 30]]), np.array([0.6]), np.array([0]),
                     mask_a, np.array([[90.0, 10, 105, 30]]), (100, 100))
    right = Instances(np.array([[10.0, 10, 30, 30]]), np.array([0.9]), np.array([0]),
                      mask_b, np.array([[10.0, 10, 30, 30]]), (100, 100))
    merged = merge_instance_tiles([(0, 0, 100, 100), (80, 0, 180, 100)], [left, right])
    assert merged.size == (100, 180)
    assert merged.boxes.tolist() == [[90, 10, 110, 30]]
    assert merged.paste_boxes.tolist() == [[90, 10, 110, 30]]
    assert merged.masks.tolist() == mask_b.tolist()
    assert not merged.mask(0, 0.1)[:, :90].any() and merged.mask(0, 0.1)[10:30, 90:110].all()


@pytest.mark.slow  # about 90 s on 2 shared cores: a training, an export, three CLI commands
def test_tiled_instance_training_prediction_and_evaluation(tmp_path: Path) -> None:
    import instgen

    data = instgen.make_id_masks(tmp_path / "cells", 16, seed=4)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    done = cli("finetune", recipe, "--data", data, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiles: 64 px" in done.stdout
    done = cli("export", tmp_path / "run", "--format", "onnx")
    assert done.returncode == 0, done.stderr
    artifact = tmp_path / "run" / "export" / "model.onnx"
    done = cli("evaluate", artifact, "--json", tmp_path / "eval.json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    windows = report["tiles"]["windows"]
    assert report["tiles"]["rule"]["size"] == 64 and all(len(w) > 1 for w in windows.values())
    images = sorted(windows)
    done = cli("predict", artifact, *images, "--min-score", "0", "--json",
               tmp_path / "pred.json")
    assert done.returncode == 0, done.stdout + done.stderr
    for p in json.loads((tmp_path / "pred.json").read_text())["predictions"]:
        assert p["tiles"] == windows[p["image"]]
        for row in p["instances"]:
            x1, y1, x2, y2 = row["box"]
            assert 0 <= x1 < x2 <= p["width"] and 0 <= y1 < y2 <= p["height"]
            assert row["rle"]["size"] == [p["height"], p["width"]]
