"""OpenVINO IR for the dense tasks (detection, semantic, instance) through the real CLI.

Each task gets one tiny run for the module (generated data, 64 px, one epoch), exported as onnx
(the reference) and openvino. The full deployable graph (decoding, NMS, RoiAlign, argmax)
converts and runs on ov-cpu, so the IR carries the same outputs as the ONNX artifact and verify
judges it with the same gates. Predict on the IR runs with torch, onnx and onnxruntime made
unimportable and must give the ONNX artifact's results. Only the semantic predict test is in the
default suite (one ~25 s training); the rest is marked slow.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("openvino")

REPO = Path(__file__).resolve().parents[1]
HEADS = {
    "detection": ("tf_efficientnet_lite0", "detector: {fpn_channels: 16, head_convs: 1}"),
    "semantic": ("tf_efficientnet_lite0", "segmenter: {inter_channels: 16}"),
    "instance": ("mobilenetv2_100", "instance: {fpn_channels: 16, head_convs: 1, "
                 "mask_channels: 8, mask_resolution: 14, max_detections: 20}"),
}
MIN_SCORE = 0.05  # low enough that a one-epoch model still returns rows to compare
SLOW = pytest.mark.slow


def cli(*args: object, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "COLUMNS": "160", **(env or {})})


def _data(task: str, root: Path) -> Path:
    import detgen
    import instgen
    import seggen

    makers = {"detection": lambda: detgen.make_voc(root, 24, seed=3),
              "semantic": lambda: seggen.make_masks(root, 24, seed=1),
              "instance": lambda: instgen.make_id_masks(root, 24, seed=2)}
    return makers[task]()


@pytest.fixture(scope="module")
def dense_runs(tmp_path_factory: pytest.TempPathFactory):
    """task -> (run folder, {format: artifact}), built on first use and kept for the module."""
    from edgetl.export import export_run

    built: dict[str, tuple[Path, dict[str, Path]]] = {}

    def get(task: str) -> tuple[Path, dict[str, Path]]:
        if task not in built:
            root = tmp_path_factory.mktemp(f"ov-{task}")
            arch, head = HEADS[task]
            data = _data(task, root / "data")
            (root / "recipe.yaml").write_text(
                f"name: ov-{task}\ntask: {task}\n"
                "data: {val_fraction: 0.25, test_fraction: 0.25}\n"
                f"model:\n  architecture: {arch}\n  input_size: 64\n  {head}\n"
                "augment: {preset: light}\n"
                "train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}\n"
                "phases:\n  - {name: A, epochs: 1, unfreeze: head, lr: 5.0e-3}\n")
            done = cli("finetune", root / "recipe.yaml", "--data", data, "--out", root / "run")
            assert done.returncode == 0, done.stderr
            run = root / "run"
            built[task] = (run, {fmt: export_run(run, fmt).path for fmt in ("onnx", "openvino")})
        return built[task]

    return get


def _images(run: Path, count: int) -> list[str]:
    """The first `count` image files of the run's data (sorted, so both sides get the same)."""
    found = sorted(p for p in Path(run).parent.joinpath("data").rglob("*")
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png") and "mask" not in str(p)
                   and "annotation" not in str(p))
    return [str(p) for p in found[:count]]


def _blocked_env(tmp_path: Path) -> dict[str, str]:
    """PYTHONPATH with torch, onnx and onnxruntime packages that refuse to import."""
    blockers = tmp_path / "blocker"
    for name in ("torch", "onnxruntime", "onnx"):
        (blockers / name).mkdir(parents=True)
        (blockers / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked: an OpenVINO predict must not import it')\n")
    return {"PYTHONPATH": os.pathsep.join(
        p for p in (str(blockers), os.environ.get("PYTHONPATH")) if p)}


def _predict(task: str, artifact: Path, images: list[str], out: Path,
             env: dict[str, str] | None = None) -> list[dict]:
    from edgetl import tasks

    masks = ["--masks", out / "masks"] if tasks.get(task).predict_masks else []
    done = cli("predict", artifact, *images, "--min-score", MIN_SCORE, *masks,
               "--json", out / "p.json", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return json.loads((out / "p.json").read_text())["predictions"]


def _same_detections(ir: list[dict], ref: list[dict]) -> int:
    """IR rows equal the ONNX rows (labels exact, boxes within 0.5 px, scores 1e-3): count
    (a detector lists `detections`, an instance model `instances`)."""
    rows = 0
    key = "instances" if "instances" in ir[0] else "detections"
    for a, b in zip(ir, ref, strict=True):
        assert [d["label"] for d in a[key]] == [d["label"] for d in b[key]]
        for da, db in zip(a[key], b[key], strict=True):
            assert abs(da["score"] - db["score"]) < 1e-3
            assert np.abs(np.subtract(da["box"], db["box"])).max() < 0.5
            if "rle" in da:  # the pasted masks (numpy, from each side's [M, M] probabilities)
                from pycocotools import mask as mask_utils

                ma, mb = (mask_utils.decode({**d["rle"], "counts": d["rle"]["counts"].encode()})
                          for d in (da, db))
                union = np.logical_or(ma, mb).sum()
                assert union == 0 or np.logical_and(ma, mb).sum() / union >= 0.95
        rows += len(a[key])
    return rows


@pytest.mark.parametrize("task", [pytest.param("detection", marks=SLOW), "semantic",
                                  pytest.param("instance", marks=SLOW)])
def test_torch_free_predict_on_ir_matches_onnx(dense_runs, task: str, tmp_path: Path) -> None:
    run, files = dense_runs(task)
    images = _images(run, 6)
    assert len(images) == 6
    (tmp_path / "ir").mkdir()
    (tmp_path / "onnx").mkdir()
    ir = _predict(task, files["openvino"], images, tmp_path / "ir", env=_blocked_env(tmp_path))
    ref = _predict(task, files["onnx"], images, tmp_path / "onnx")
    if "mask_png" in ir[0]:  # a class map per image
        from PIL import Image

        for a, b in zip(ir, ref, strict=True):
            ma = np.asarray(Image.open(a["mask_png"]))
            mb = np.asarray(Image.open(b["mask_png"]))
            assert ma.shape == mb.shape and (ma == mb).mean() >= 0.999
    else:
        assert _same_detections(ir, ref) > 0


@SLOW
@pytest.mark.parametrize("task", ["detection", "semantic", "instance"])
def test_openvino_verify_passes_with_onnx_gates(dense_runs, task: str, tmp_path: Path) -> None:
    run, files = dense_runs(task)
    report = tmp_path / "v.json"
    done = cli("verify", files["openvino"], "--against", run, "--json", report)
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads(report.read_text())["checks"]}
    from edgetl import tasks

    gates = set(tasks.get(task).verify_gates)
    assert gates and gates <= set(checks)
    assert all(checks[g]["passed"] for g in gates)
    # the same gates as the fp32 ONNX artifact of the same run
    done = cli("verify", files["onnx"], "--against", run, "--json", tmp_path / "o.json")
    assert done.returncode == 0, done.stdout + done.stderr
    onnx_checks = {c["name"] for c in json.loads((tmp_path / "o.json").read_text())["checks"]}
    assert set(checks) == onnx_checks


@SLOW
def test_openvino_int8_detection_passes_int8_gates(dense_runs, tmp_path: Path) -> None:
    run, _ = dense_runs("detection")
    done = cli("export", run, "--format", "openvino-int8", "--out", tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "FakeQuantize" in done.stdout  # the CLI's summary reads NNCF's record
    xml = tmp_path / "model.int8.xml"
    manifest = json.loads(xml.with_name(xml.name + ".manifest.json").read_text())
    quant = manifest["details"]["quantization"]
    assert quant["fake_quantize_nodes"] > 0 and quant["accuracy_search"]["met"]
    assert quant["ignored_scope"]["postprocess_float"] is not None  # NMS and decoding float
    done = cli("verify", xml, "--against", run, "--json", tmp_path / "v.json")
    assert done.returncode == 0, done.stdout + done.stderr
    checks = {c["name"]: c for c in json.loads((tmp_path / "v.json").read_text())["checks"]}
    assert checks["parity"]["passed"] and checks["map"]["passed"]
