"""Instance artifacts through the real CLI: export (fp32, fp16, int8), verify, predict without
torch, bench. One small run (blobs with id-mask PNGs, MobileNetV2, 96 px) for the module."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # one training and three exports: about a minute on 2 cores

RECIPE = """\
name: inst-deploy
task: instance
data: {val_fraction: 0.2, test_fraction: 0.25}
model:
  architecture: mobilenetv2_100
  input_size: 96
  instance: {fpn_channels: 32, head_convs: 1, mask_channels: 16, mask_resolution: 14,
             max_detections: 30}
augment: {preset: light}
train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}
phases:
  - {name: A, epochs: 5, unfreeze: head, lr: 5.0e-3}
  - {name: B, epochs: 3, unfreeze: last, blocks: 2, lr: 2.0e-3, freeze_bn: true}
"""
FILES = {"onnx": "model.onnx", "onnx-fp16": "model.fp16.onnx", "onnx-int8": "model.int8-qdq.onnx"}


def cli(*args: object, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import instgen

    root = tmp_path_factory.mktemp("inst")
    data = instgen.make_id_masks(root / "cells", 40, seed=2)
    (root / "recipe.yaml").write_text(RECIPE)
    done = cli("finetune", root / "recipe.yaml", "--data", data, "--out", root / "run")
    assert done.returncode == 0, done.stderr
    for fmt in FILES:
        done = cli("export", root / "run", "--format", fmt)
        assert done.returncode == 0, done.stderr
    return root / "run"


@pytest.mark.parametrize("fmt", list(FILES))
def test_exports_have_masks_and_pass_verify(run: Path, fmt: str, tmp_path: Path) -> None:
    artifact = run / "export" / FILES[fmt]
    model = onnx.load(str(artifact))
    assert [o.name for o in model.graph.output] == ["boxes", "scores", "labels",
                                                    "num_detections", "masks"]
    assert "RoiAlign" in {n.op_type for n in model.graph.node}
    post = json.loads({p.key: p.value for p in model.metadata_props}["edgetl.postprocess"])
    assert post["mask_resolution"] == 14 and post["max_detections"] == 30
    # 10 test images: one instance moves int8's figures by points (see test_detection_run)
    budget = (["--metric-drop-budget", "10", "--agreement-budget", "0.8"]
              if fmt == "onnx-int8" else [])
    done = cli("verify", artifact, "--against", run, "--json", tmp_path / "v.json", *budget)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads((tmp_path / "v.json").read_text())["checks"]}
    assert set(checks) >= {"coordinates", "outputs", "parity", "mask_parity", "mask_map"}
    if fmt == "onnx":
        assert checks["parity"]["details"]["reference_detections"] > 0
        assert checks["mask_parity"]["details"]["median_mask_iou"] >= 0.95
        assert abs(checks["mask_map"]["details"]["drop_points"]["map"]) <= 0.5


def test_predict_without_torch_writes_instance_masks(run: Path, tmp_path: Path) -> None:
    from edgetl.artifact.postprocess import instances_from_outputs
    from edgetl.models.inference import torch_outputs
    from edgetl.models.loading import load_model
    from edgetl.runfolder import RunFolder

    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked')\n")
    samples = RunFolder(run).samples("test")[:4]
    out = tmp_path / "pred.json"
    done = cli("predict", run / "export" / "model.onnx", *[s.path for s in samples],
               "--min-score", "0.05", "--json", out, "--masks", tmp_path / "masks",
               "--draw", tmp_path / "drawn", env={"PYTHONPATH": str(blocker.parent)})
    assert done.returncode == 0, done.stderr
    predictions = json.loads(out.read_text())["predictions"]
    model, info = load_model(run)
    outputs, geometries = torch_outputs(model, info.spec, samples, info.task_record.task)
    reference = instances_from_outputs(outputs, geometries, 0.05)
    for pred, ref, sample in zip(predictions, reference, samples, strict=True):
        with Image.open(sample.path) as img:
            width, height = img.size
        ids = np.asarray(Image.open(tmp_path / "masks" / f"{Path(sample.path).stem}.png"))
        assert ids.shape == (height, width) == (pred["height"], pred["width"])
        assert len(pred["instances"]) == len(ref.scores) > 0
        # ids number the rows; one covered entirely by better-scored ones may not show
        assert set(np.unique(ids)) - {0} <= {r["instance_id"] for r in pred["instances"]}
        # the torch model's id map, pasted the same way: (nearly) the same pixels
        torch_ids = ref.id_map()
        assert np.mean((ids > 0) == (torch_ids > 0)) >= 0.99
        for row in pred["instances"]:
            assert row["rle"]["size"] == [height, width]
        assert (tmp_path / "drawn" / f"{Path(sample.path).stem}.png").is_file()


def test_bench_end_to_end_includes_mask_pasting(run: Path, tmp_path: Path) -> None:
    done = cli("bench", run / "export" / "model.onnx", "--backend", "ort-cpu", "--batch", "1",
               "--mode", "e2e", "--threads", "1", "--min-time", "0.3", "--json",
               tmp_path / "b.json")
    assert done.returncode == 0, done.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert rows and "masks pasted" in json.dumps(rows[0])
