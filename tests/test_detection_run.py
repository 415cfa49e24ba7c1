"""Detection end to end through the real CLI: finetune, evaluate, export, verify, predict, bench.

One small real run (generated shapes on textured photos, Pascal VOC XML, the packaged Lite0
weights, 128 px input) is trained once for the module; every test reads it.
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

REPO = Path(__file__).resolve().parents[1]

RECIPE = """\
name: det-test
task: detection
data: {val_fraction: 0.2, test_fraction: 0.25}
model:
  architecture: tf_efficientnet_lite0
  input_size: 128
  detector: {fpn_channels: 32, head_convs: 1}
augment: {preset: light}
train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}
phases:
  - {name: A, epochs: 4, unfreeze: head, lr: 5.0e-3}
  - {name: B, epochs: 2, unfreeze: last, blocks: 2, lr: 2.0e-3, freeze_bn: true}
"""


def cli(*args: object, env: dict[str, str] | None = None, timeout: float = 900
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=timeout,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


@pytest.fixture(scope="module")
def det_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import detgen

    root = tmp_path_factory.mktemp("det")
    data = detgen.make_voc(root / "voc", 48, seed=3)
    recipe = root / "recipe.yaml"
    recipe.write_text(RECIPE)
    done = cli("finetune", recipe, "--data", data, "--out", root / "run")
    assert done.returncode == 0, done.stderr
    return root / "run"


@pytest.fixture(scope="module")
def det_artifacts(det_run: Path) -> dict[str, Path]:
    out = {}
    for fmt in ("onnx", "onnx-fp16", "onnx-int8"):
        done = cli("export", det_run, "--format", fmt)
        assert done.returncode == 0, done.stderr
        out[fmt] = next(p for p in (det_run / "export").glob("model*.onnx")
                        if fmt == {"model.onnx": "onnx", "model.fp16.onnx": "onnx-fp16",
                                   "model.int8-qdq.onnx": "onnx-int8"}.get(p.name))
    return out


def test_run_folder_and_evaluate_report(det_run: Path, tmp_path: Path) -> None:
    labels = json.loads((det_run / "labels.json").read_text())
    assert labels["task"] == "detection" and labels["names"] == ["disc", "square"]
    split = (det_run / "split.csv").read_text().splitlines()
    assert split[0].startswith("path,") and "xmin" in split[0]
    summary = json.loads((det_run / "summary.json").read_text())
    assert "val_map" in summary and "test_map" in summary
    done = cli("evaluate", det_run, "--json", tmp_path / "eval.json", "--out", tmp_path / "out")
    assert done.returncode == 0, done.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    for key in ("task", "map", "map50", "map75", "map_ci95", "map50_ci95", "per_class",
                "n_images", "n_boxes"):
        assert key in report, key
    assert report["task"] == "detection"
    assert [row["name"] for row in report["per_class"]] == ["disc", "square"]
    assert report["map50"] > 0.3  # learnt something about these easy shapes
    assert report["map_ci95"][0] <= report["map"] <= report["map_ci95"][1]
    test = json.loads((det_run / "test_metrics.json").read_text())
    assert test["map"] == pytest.approx(report["map"]) and test["n_boxes"] == report["n_boxes"]
    assert (tmp_path / "out" / "pr-curve-test.png").stat().st_size > 1000
    assert (tmp_path / "out" / "confusion-test.png").stat().st_size > 1000


@pytest.mark.parametrize("fmt", ["onnx", "onnx-fp16", "onnx-int8"])
def test_exports_pass_verify(det_run: Path, det_artifacts: dict[str, Path], fmt: str,
                             tmp_path: Path) -> None:
    model = onnx.load(str(det_artifacts[fmt]))
    assert [o.name for o in model.graph.output] == ["boxes", "scores", "labels",
                                                    "num_detections"]
    assert "NonMaxSuppression" in {n.op_type for n in model.graph.node}
    meta = {p.key: p.value for p in model.metadata_props}
    post = json.loads(meta["edgetl.postprocess"])
    assert post["nms_iou"] == 0.6 and post["max_detections"] == 100
    # 12 test images hold ~26 boxes: one box moves AP50 by ~4 points and the paired interval
    # of the int8 drop is ~3.5 points wide, landing differently on different CPUs, far more
    # than int8's 1.5-point budget can resolve. The test checks the plumbing at 10 points;
    # the real budget is met on raccoon (benchmarks/results/raccoon-detect-lite0-cpu-*.md).
    budget = ["--metric-drop-budget", "10"] if fmt == "onnx-int8" else []
    done = cli("verify", det_artifacts[fmt], "--against", det_run, "--json", tmp_path / "v.json",
               *budget)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert report["passed"] and set(checks) >= {"spec", "preprocessing", "coordinates",
                                                 "outputs", "parity", "map"}
    assert checks["coordinates"]["details"]["max_px_input"] <= 0.5
    if fmt == "onnx":
        assert checks["parity"]["details"]["match_rate"] == 1.0
        assert checks["parity"]["details"]["median_iou"] >= 0.98
    if fmt == "onnx-int8":
        assert _quantised_outside_network(model) == []


def _quantised_outside_network(model: onnx.ModelProto) -> list[str]:
    """Nodes outside the backbone and head whose outputs an int8 graph quantises: box
    decoding, NMS and output packing must stay float (quantised, boxes fell on a uint8 grid)."""
    producer = {out: node.name for node in model.graph.node for out in node.output}
    sources = [producer.get(node.input[0], "") for node in model.graph.node
               if node.op_type == "QuantizeLinear"]
    assert any(s.startswith("/backbone/") for s in sources)  # the network is quantised
    return [s for s in sources if s and s.split("/")[1:2] not in (["backbone"], ["head"])]


def _edited(src: Path, dst: Path, changes: dict[str, object]) -> Path:
    import shutil

    from edgetl.artifact.manifest import META_SPEC, META_SPEC_FINGERPRINT, manifest_path
    from edgetl.spec import PreprocessSpec

    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    spec = {**json.loads(meta[META_SPEC]), **changes}
    meta[META_SPEC] = json.dumps(spec, sort_keys=True, separators=(",", ":"))
    meta[META_SPEC_FINGERPRINT] = PreprocessSpec.from_dict(spec).fingerprint()
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(dst))
    shutil.copy(manifest_path(src), manifest_path(dst))
    return dst


@pytest.mark.parametrize(("field", "value"), [("fill", [0, 0, 0]),
                                              ("input_size", [160, 160])])
def test_edited_letterbox_fails_verify_naming_it(det_run: Path, det_artifacts: dict[str, Path],
                                                tmp_path: Path, field: str, value: object
                                                ) -> None:
    changes = {"input_size": {"input_size": value, "resize_size": value}}.get(field,
                                                                             {field: value})
    edited = _edited(det_artifacts["onnx"], tmp_path / "model.onnx", changes)
    done = cli("verify", edited, "--against", det_run, "--max-images", "4")
    assert done.returncode == 1
    assert field in done.stderr.splitlines()[-1]


def test_predict_without_torch_matches_the_torch_model(det_run: Path,
                                                      det_artifacts: dict[str, Path],
                                                      tmp_path: Path) -> None:
    from edgetl.artifact.postprocess import Detections, detections_from_outputs
    from edgetl.models.inference import torch_outputs
    from edgetl.models.loading import load_model
    from edgetl.runfolder import RunFolder
    from edgetl.verify.detection import match_detections

    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('torch is blocked')\n")
    samples = RunFolder(det_run).samples("test")[:6]
    out = tmp_path / "pred.json"
    done = cli("predict", det_artifacts["onnx"], *[s.path for s in samples], "--json", out,
               "--draw", tmp_path / "drawn", env={"PYTHONPATH": str(blocker.parent)})
    assert done.returncode == 0, done.stderr
    predictions = json.loads(out.read_text())["predictions"]
    assert [p["image"] for p in predictions] == [s.path for s in samples]
    model, info = load_model(det_run)
    outputs, geometries = torch_outputs(model, info.spec, samples, info.task_record.task)
    reference = detections_from_outputs(outputs, geometries, 0.3)
    total = matched_all = 0
    for pred, ref in zip(predictions, reference, strict=True):
        rows = pred["detections"]
        found = Detections(np.array([r["box"] for r in rows]).reshape(-1, 4),
                           np.array([r["score"] for r in rows]),
                           np.array([r["index"] for r in rows]))
        n, ious = match_detections(ref, found, 0.3)
        total += n
        matched_all += len(ious)
        assert all(iou >= 0.98 for iou in ious)
        assert (tmp_path / "drawn" / f"{Path(pred['image']).stem}.png").is_file()
    assert matched_all == total
    folder = tmp_path / "photos"  # a folder (recursive) predicts as its files do
    for i, sample in enumerate(samples):
        (folder / f"cam{i % 2}").mkdir(parents=True, exist_ok=True)
        shutil.copy(sample.path, folder / f"cam{i % 2}" / Path(sample.path).name)
    by_folder = cli("predict", det_artifacts["onnx"], folder, "--json", "-",
                    env={"PYTHONPATH": str(blocker.parent)})
    assert by_folder.returncode == 0, by_folder.stderr
    rows = json.loads(by_folder.stdout)["predictions"]
    assert {Path(p["image"]).name: p["detections"] for p in rows} == \
        {Path(p["image"]).name: p["detections"] for p in predictions}


def test_raw_export_and_bench(det_run: Path, det_artifacts: dict[str, Path],
                              tmp_path: Path) -> None:
    raw = tmp_path / "raw.onnx"
    done = cli("export", det_run, "--format", "onnx", "--raw", "--out", raw)
    assert done.returncode == 0, done.stderr
    assert [o.name for o in onnx.load(str(raw)).graph.output] == [
        "cls_logits", "bbox_regression", "bbox_ctrness"]
    refused = cli("predict", raw, next((det_run.parent / "voc" / "images").iterdir()))
    assert refused.returncode == 2 and "--raw" in refused.stderr
    bench = cli("bench", det_artifacts["onnx"], "--backend", "ort-cpu", "--batch", "1",
                "--mode", "e2e", "--threads", "1", "--min-time", "0.5", "--json",
                tmp_path / "b.json")
    assert bench.returncode == 0, bench.stderr
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert rows[0]["mode"] == "e2e" and rows[0]["p50_ms"] > 0


def test_detector_checkpoint_with_other_classes_loads(tmp_path: Path) -> None:
    """`model.weights: FILE` takes a torchvision-format detector: class layers replaced."""
    import torch

    from edgetl.models.detector import CLASS_LAYERS, DetectorSettings, build_detector

    settings = DetectorSettings(fpn_channels=32, head_convs=1)
    torch.manual_seed(0)
    three, _ = build_detector("tf_efficientnet_lite0", 3, settings, (128, 128), "random")
    path = tmp_path / "fcos3.pth"
    torch.save(three.state_dict(), path)
    two, _ = build_detector("tf_efficientnet_lite0", 2, settings, (128, 128), str(path))
    mine, theirs = two.state_dict(), three.state_dict()
    for key, value in mine.items():
        if key.startswith(CLASS_LAYERS):
            assert value.shape[0] == 2 and theirs[key].shape[0] == 3
        else:
            assert torch.equal(value, theirs[key]), key
    same = build_detector("tf_efficientnet_lite0", 3, settings, (128, 128), str(path))[0]
    assert all(torch.equal(v, theirs[k]) for k, v in same.state_dict().items())
