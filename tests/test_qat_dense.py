"""Quantisation-aware int8 for the dense tasks through the real CLI: a tiny one-epoch run of
each task, `export --format onnx-int8 --qat` with two QAT steps, the graph's network all int8,
ONNX Runtime runs it, and verify judges it with the task's checks. The semantic run is in the
default suite; the others are marked slow."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

pytest.importorskip("nncf")

REPO = Path(__file__).resolve().parents[1]
HEADS = {
    "semantic": ("tf_efficientnet_lite0", "segmenter: {inter_channels: 16}"),
    "detection": ("tf_efficientnet_lite0", "detector: {fpn_channels: 16, head_convs: 1}"),
}
QUANTIZE = "quantize: {max_steps: 2, batch_size: 4, calibration_images: 8}\n"


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "COLUMNS": "160"})


def _data(task: str, root: Path) -> Path:
    import detgen
    import seggen

    makers = {"detection": lambda: detgen.make_voc(root, 16, seed=3),
              "semantic": lambda: seggen.make_masks(root, 16, seed=1)}
    return makers[task]()


def _qat_export(task: str, root: Path) -> dict:
    arch, head = HEADS[task]
    data = _data(task, root / "data")
    (root / "recipe.yaml").write_text(
        f"name: qat-{task}\ntask: {task}\n"
        "data: {val_fraction: 0.25, test_fraction: 0.25}\n"
        f"model:\n  architecture: {arch}\n  input_size: 64\n  {head}\n"
        "train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}\n"
        "phases:\n  - {name: A, epochs: 1, unfreeze: head, lr: 5.0e-3}\n" + QUANTIZE)
    done = cli("finetune", root / "recipe.yaml", "--data", data, "--out", root / "run")
    assert done.returncode == 0, done.stderr
    run, out = root / "run", root / "m.int8.onnx"
    first = cli("export", run, "--format", "onnx-int8", "--qat", "--out", out)
    assert first.returncode == 0, first.stderr
    manifest = json.loads(Path(str(out) + ".manifest.json").read_text())
    return {"run": run, "out": out, "manifest": manifest}


def _check_graph(export: dict) -> dict:
    """The checks every task shares; returns the report's quantisation record."""
    from edgetl.export.onnx_int8_qat import compute_node_counts

    run, out = export["run"], export["out"]
    quant = export["manifest"]["details"]["quantization"]
    assert quant["network_compute_nodes"] > 0 and quant["float_compute_nodes"] == 0
    assert quant["int8_compute_nodes"] == quant["network_compute_nodes"]
    assert quant["float_nodes"]["nodes"] == [] and quant["weight_quantisers_folded"] > 0
    qat = json.loads((run / "qat" / "checkpoint.json").read_text())["quantisation_aware"]
    assert qat["steps"] == 2 and qat["ended_by"] == "max_steps"
    lines = [json.loads(x) for x in (run / "qat" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["phase"], x["epoch"], x["steps"]) for x in lines] == [("QAT", 0, 0),
                                                                   ("QAT", 1, 2)]
    assert np.isfinite(lines[1]["train_loss"])
    assert quant["quantisation_aware"]["validation_before"] == qat["validation_before"]
    graph = onnx.load(str(out))
    assert compute_node_counts(graph, set())["int8_compute_nodes"] >= \
        quant["int8_compute_nodes"]
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    shape = [1 if not isinstance(d, int) else d for d in feed.shape]
    dtype = np.uint8 if "uint8" in feed.type else np.float32
    outputs = session.run(None, {feed.name: np.zeros(shape, dtype)})
    assert outputs and all(o is not None for o in outputs)
    return quant


def _verify(export: dict, tmp_path: Path, gates: tuple[str, ...]) -> dict:
    report_path = tmp_path / "v.json"
    done = cli("verify", export["out"], "--against", export["run"], "--json", report_path)
    assert done.returncode in (0, 1), done.stderr  # 1: a gate the one-epoch model misses
    report = json.loads(report_path.read_text())
    checks = {c["name"]: c for c in report["checks"]}
    assert set(gates) <= set(checks)
    return checks


def test_semantic_qat_export_is_all_int8_and_verifies(tmp_path: Path) -> None:
    export = _qat_export("semantic", tmp_path)
    quant = _check_graph(export)
    lines = [json.loads(x) for x in
             (export["run"] / "qat" / "metrics.jsonl").read_text().splitlines()]
    assert lines[0]["images"] == 4 and 0.0 <= lines[1]["val_pixel_agreement"] <= 1.0
    assert 0.0 <= lines[1]["val_miou"] <= 1.0
    assert quant["network_compute_nodes"] >= 50  # the encoder's and LR-ASPP's convolutions
    checks = _verify(export, tmp_path, ("parity", "miou"))
    assert checks["parity"]["details"]

