"""LiteRT .tflite artifacts on the fixture run: export, manifest record, verify, predict.

Real files, the real litert-torch converter and LiteRT interpreter; skipped where either is
not installed (see docs/litert.md for why the converter is not in `make setup`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetl.artifact.manifest import read_artifact, read_manifest
from edgetl.errors import UsageError
from edgetl.io import sha256_file

pytest.importorskip("ai_edge_litert.interpreter")
pytest.importorskip("litert_torch")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def artifacts(fixture_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture run exported as onnx (the reference) and litert."""
    from edgetl.export import export_run

    out = tmp_path_factory.mktemp("litert")
    return {fmt: export_run(fixture_run, fmt, out=out).path for fmt in ("onnx", "litert")}


def _samples(run: Path, n: int) -> list:
    from edgetl.data.sources import load_data

    samples = load_data(str(run / "split.csv"), check_images=False).by_split("test")
    return samples[::max(1, len(samples) // n)][:n]


def test_export_writes_tflite_and_manifest(artifacts: dict[str, Path]) -> None:
    path = artifacts["litert"]
    assert path.name == "model.tflite" and path.read_bytes()[4:8] == b"TFL3"
    manifest = read_manifest(path)
    assert manifest is not None and manifest["format"] == "litert"
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["io"]["outputs"][0]["name"] == "logits"
    assert not list(path.parent.glob(".litert-export-*"))  # no work folder left


def test_metadata_round_trips_through_the_manifest(artifacts: dict[str, Path]) -> None:
    onnx_info = read_artifact(artifacts["onnx"])
    info = read_artifact(artifacts["litert"])
    assert (info.format, info.precision) == ("litert", "fp32")
    assert info.spec == onnx_info.spec and info.task_record == onnx_info.task_record
    assert info.architecture == onnx_info.architecture


def test_verify_passes(artifacts: dict[str, Path], fixture_run: Path) -> None:
    from edgetl.verify import verify_artifact

    report = verify_artifact(artifacts["litert"], fixture_run, backend="litert-cpu", threads=2)
    assert report.to_dict()["passed"] is True, report.failure_line()
    parity = report.check("parity").details
    assert parity["top1_agreement"] >= 1.0
    assert parity["cosine_min"] > 0.999


def test_predict_matches_onnx_and_runs_only_on_litert(artifacts: dict[str, Path],
                                                      fixture_run: Path) -> None:
    from edgetl.predict import predict_artifact_on_samples
    from edgetl.runtime import open_runner
    from edgetl.runtime.backends import default_backend

    samples = _samples(fixture_run, 6)
    ref_probs, ref_logits = predict_artifact_on_samples(artifacts["onnx"], samples)
    probs, logits = predict_artifact_on_samples(artifacts["litert"], samples,
                                                backend="litert-cpu", threads=2)
    assert np.abs(logits - ref_logits).max() < 1e-3
    assert (probs.argmax(1) == ref_probs.argmax(1)).all()
    assert default_backend(artifacts["litert"]) == "litert-cpu"
    with pytest.raises(UsageError, match="LiteRT model"):
        open_runner(artifacts["litert"], "ort-cpu")


def test_predict_cli_without_torch_or_onnxruntime(artifacts: dict[str, Path],
                                                  fixture_run: Path, tmp_path: Path) -> None:
    blockers = tmp_path / "blocker"
    for name in ("torch", "onnxruntime", "onnx"):
        (blockers / name).mkdir(parents=True)
        (blockers / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked: a LiteRT predict must not import it')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(blockers), env.get("PYTHONPATH")) if p)
    samples = _samples(fixture_run, 4)
    proc = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "predict", str(artifacts["litert"]),
         *[s.path for s in samples], "--top-k", "2", "--json", "-"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr  # no --backend: a .tflite picks litert-cpu
    predictions = json.loads(proc.stdout)["predictions"]
    from edgetl.models.inference import torch_probs
    from edgetl.models.loading import load_model

    model, info = load_model(fixture_run, "best")
    probs = torch_probs(model, info.spec, [s.path for s in samples])
    for row, prediction in zip(probs, predictions, strict=True):
        best = int(row.argmax())
        assert prediction["top"][0]["label"] == info.task_record.names[best]
        assert abs(prediction["top"][0]["probability"] - float(row[best])) < 1e-4


def test_bench_litert_cpu_records_the_runner(artifacts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "bench", str(artifacts["litert"]),
         "--backend", "litert-cpu", "--threads", "2", "--iters", "3", "--warmup", "1",
         "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    from importlib.metadata import version

    assert report["env"]["versions"]["ai-edge-litert"] == version("ai-edge-litert")
    row = report["rows"][0]
    assert (row["backend"], row["precision"], row["threads"]) == ("litert-cpu", "fp32", 2)
    assert row["details"]["runner"]["delegate"] == "XNNPACK (default)"
    runtime = report["env"]["runtimes"]["litert-cpu"]
    assert (runtime["runtime"], runtime["device"], runtime["device_name"]) == \
        ("ai-edge-litert", "CPU", "XNNPACK")
    assert runtime["settings"]["num_threads"] == 2
