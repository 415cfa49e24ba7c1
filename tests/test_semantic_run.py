"""Semantic segmentation end to end through the real CLI: finetune, evaluate, export, verify,
predict (masks at each image's size, without torch), tiles.

One small real run (generated shapes on textured photos, index PNG masks with void edges, the
packaged Lite0 weights, 128 px input) is trained once for the module.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]

RECIPE = """\
name: seg-test
task: semantic
data: {val_fraction: 0.2, test_fraction: 0.25}
model:
  architecture: tf_efficientnet_lite0
  input_size: 128
  segmenter: {inter_channels: 32}
augment: {preset: light}
loss: {type: ce_dice}
train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}
phases:
  - {name: A, epochs: 3, unfreeze: head, lr: 5.0e-3}
  - {name: B, epochs: 2, unfreeze: last, blocks: 2, lr: 2.0e-3, freeze_bn: true}
"""


def cli(*args: object, env: dict[str, str] | None = None, timeout: float = 900
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


@pytest.fixture(scope="module")
def seg_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import seggen

    root = tmp_path_factory.mktemp("seg")
    data = seggen.make_masks(root / "data", 40, seed=2)
    (root / "recipe.yaml").write_text(RECIPE)
    done = cli("finetune", root / "recipe.yaml", "--data", data, "--out", root / "run")
    assert done.returncode == 0, done.stderr
    return root / "run"


def test_run_and_evaluate_report(seg_run: Path, tmp_path: Path) -> None:
    labels = json.loads((seg_run / "labels.json").read_text())
    assert labels == {"names": ["background", "disc", "square"], "task": "semantic",
                      "schema": "edgetl.labels/1", "ignore_index": 255}
    done = cli("evaluate", seg_run, "--json", tmp_path / "e.json", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "e.json").read_text())
    for key in ("task", "miou", "miou_ci95", "mdice", "pixel_accuracy", "per_class",
                "n_images"):
        assert key in report, key
    assert report["task"] == "semantic" and report["n_images"] == 10
    assert [r["name"] for r in report["per_class"]] == ["background", "disc", "square"]
    assert report["miou"] > 0.3
    # the per-class IoU follows from the confusion matrix (rows truth, columns prediction)
    cm = np.array(report["confusion_matrix"], dtype=float)
    iou = np.diag(cm) / (cm.sum(0) + cm.sum(1) - np.diag(cm))
    assert [r["iou"] for r in report["per_class"]] == pytest.approx(iou.tolist())
    assert report["miou"] == pytest.approx(iou.mean())
    assert (tmp_path / "out" / "confusion-test.png").stat().st_size > 1000
    # the worst images: the lowest per-image mIoU, in order, drawn in one figure
    worst = report["worst_images"]
    assert [w["miou"] for w in worst] == sorted(report["per_image_miou"])[:len(worst)]
    assert len(worst) == min(6, report["n_images"])
    assert (tmp_path / "out" / "worst-test.png").stat().st_size > 5000


@pytest.mark.parametrize("fmt", ["onnx", "onnx-fp16", "onnx-int8"])
def test_exports_pass_verify(seg_run: Path, fmt: str, tmp_path: Path) -> None:
    done = cli("export", seg_run, "--format", fmt, "--out", tmp_path)
    assert done.returncode == 0, done.stderr
    art = next(tmp_path.glob("*.onnx"))
    model = onnx.load(str(art))
    assert [o.name for o in model.graph.output] == ["mask"]
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.UINT8
    # int8 of a model trained for seconds on 10 test images of 128 px: its pixel agreement
    # lands within a fraction of a point of the 98% budget, on one CPU above, on another
    # below. The test checks the plumbing at 95%; the real budget is met on CamVid
    # (98.2%, benchmarks/results/camvid-semantic-lite0-cpu-*.md).
    budget = ["--agreement-budget", "0.95"] if fmt == "onnx-int8" else []
    done = cli("verify", art, "--against", seg_run, "--json", tmp_path / "v.json", *budget)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads((tmp_path / "v.json").read_text())["checks"]}
    assert {"parity", "miou", "outputs", "preprocessing"} <= set(checks)
    if fmt == "onnx":
        assert checks["parity"]["details"]["pixel_agreement"] == 1.0


def test_predict_without_torch_writes_masks_at_image_size(seg_run: Path, tmp_path: Path) -> None:
    from edgetl.runfolder import RunFolder

    done = cli("export", seg_run, "--format", "onnx", "--out", tmp_path / "m.onnx")
    assert done.returncode == 0, done.stderr
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked')\n")
    samples = RunFolder(seg_run).samples("test")[:4]
    big = tmp_path / "big.png"
    with Image.open(samples[0].path) as img:
        img.resize((img.width * 3, img.height * 3)).save(big)
    env = {"PYTHONPATH": str(blocker.parent)}
    done = cli("predict", tmp_path / "m.onnx", *[s.path for s in samples], "--masks",
               tmp_path / "masks", "--draw", tmp_path / "overlay", "--json", tmp_path / "p.json",
               env=env)
    assert done.returncode == 0, done.stderr
    predictions = json.loads((tmp_path / "p.json").read_text())["predictions"]
    for sample, pred in zip(samples, predictions, strict=True):
        with Image.open(sample.path) as img:
            size = img.size
        mask = np.asarray(Image.open(pred["mask_png"]))
        assert mask.shape == (size[1], size[0]) and set(np.unique(mask)) <= {0, 1, 2}
        assert sum(pred["shares"].values()) == pytest.approx(1.0, abs=1e-4)
        assert np.bincount(mask.ravel(), minlength=3)[1] / mask.size == pytest.approx(
            pred["shares"]["disc"], abs=1e-5)
        assert Image.open(pred["overlay_png"]).size == size
    folder = tmp_path / "photos"  # a folder (recursive) predicts as its files do
    for i, sample in enumerate(samples):
        (folder / f"set{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(sample.path, folder / f"set{i % 2}" / Path(sample.path).name)
    by_folder = cli("predict", tmp_path / "m.onnx", folder, "--json", "-", env=env)
    assert by_folder.returncode == 0, by_folder.stderr
    shares = {Path(p["image"]).name: p["shares"] for p in predictions}
    rows = json.loads(by_folder.stdout)["predictions"]
    assert {Path(p["image"]).name: p["shares"] for p in rows} == shares
    tiled = cli("predict", tmp_path / "m.onnx", big, "--tile", "--json", "-", env=env)
    assert tiled.returncode == 0, tiled.stderr
    row = json.loads(tiled.stdout)["predictions"][0]
    assert row["tiles"] > 1 and (row["width"], row["height"]) == Image.open(big).size
