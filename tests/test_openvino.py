"""OpenVINO IR artifacts on the fixture run: export, rt_info metadata, verify, predict, bench.

Real files and the real openvino runtime; skipped where openvino is not installed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetl.artifact.manifest import (
    META_FORMAT,
    META_PRECISION,
    read_artifact,
    read_manifest,
)
from edgetl.artifact.openvino_ir import RT_INFO_ROOT, ir_metadata, weights_path
from edgetl.errors import UsageError
from edgetl.io import sha256_file

ov = pytest.importorskip("openvino")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def ir_artifacts(fixture_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The fixture run exported as onnx (the reference), openvino and openvino-fp16."""
    from edgetl.export import export_run

    out = tmp_path_factory.mktemp("openvino")
    return {fmt: export_run(fixture_run, fmt, out=out).path
            for fmt in ("onnx", "openvino", "openvino-fp16")}


def test_export_writes_ir_and_manifest(ir_artifacts: dict[str, Path]) -> None:
    for fmt, name in (("openvino", "model.xml"), ("openvino-fp16", "model.fp16.xml")):
        xml = ir_artifacts[fmt]
        assert xml.name == name and weights_path(xml).is_file()
        manifest = read_manifest(xml)
        assert manifest is not None and manifest["format"] == fmt
        assert manifest["sha256"] == sha256_file(xml)
        weights = manifest["details"]["weights_file"]
        assert weights["name"] == weights_path(xml).name
        assert weights["sha256"] == sha256_file(weights_path(xml))
    # float16 weights: the .bin is about half the float32 one
    fp32 = weights_path(ir_artifacts["openvino"]).stat().st_size
    fp16 = weights_path(ir_artifacts["openvino-fp16"]).stat().st_size
    assert 0.4 < fp16 / fp32 < 0.6
    assert not list(ir_artifacts["openvino"].parent.glob(".ov-export-*"))  # no work folder left


@pytest.mark.parametrize("fmt", ["openvino", "openvino-fp16"])
def test_metadata_round_trips_through_rt_info(ir_artifacts: dict[str, Path], fmt: str) -> None:
    onnx_info = read_artifact(ir_artifacts["onnx"])
    info = read_artifact(ir_artifacts[fmt])
    assert (info.format, info.precision) == (fmt, "fp16" if fmt.endswith("fp16") else "fp32")
    assert info.spec == onnx_info.spec and info.task_record == onnx_info.task_record
    assert info.architecture == onnx_info.architecture
    same = {k: v for k, v in onnx_info.metadata.items() if k not in (META_FORMAT, META_PRECISION)}
    assert {k: info.metadata[k] for k in same} == same
    # what openvino itself reads back is what the artifact layer parsed from the .xml
    model = ov.Core().read_model(str(ir_artifacts[fmt]))
    section = model.get_rt_info()[RT_INFO_ROOT]
    assert {k: v.astype(str) for k, v in section.items()} == ir_metadata(ir_artifacts[fmt])
    # the file alone: the manifest gone, the spec and labels still come from rt_info
    lone = ir_metadata(ir_artifacts[fmt])
    assert json.loads(lone["edgetl.spec"]) == json.loads(onnx_info.spec.canonical_json())


@pytest.mark.parametrize("fmt", ["openvino", "openvino-fp16"])
def test_verify_passes(ir_artifacts: dict[str, Path], fixture_run: Path, fmt: str) -> None:
    from edgetl.verify import verify_artifact

    report = verify_artifact(ir_artifacts[fmt], fixture_run, backend="ov-cpu", threads=2)
    assert report.to_dict()["passed"] is True, report.failure_line()
    parity = report.check("parity").details
    assert parity["top1_agreement"] >= (1.0 if fmt == "openvino" else 0.995)
    assert parity["cosine_min"] > 0.999


def _samples(run: Path, n: int) -> list:
    from edgetl.data.sources import load_data

    samples = load_data(str(run / "split.csv"), check_images=False).by_split("test")
    return samples[::max(1, len(samples) // n)][:n]


def test_predict_matches_onnx(ir_artifacts: dict[str, Path], fixture_run: Path) -> None:
    from edgetl.predict import predict_artifact_on_samples

    samples = _samples(fixture_run, 6)
    ref_probs, ref_logits = predict_artifact_on_samples(ir_artifacts["onnx"], samples)
    for fmt, atol in (("openvino", 1e-3), ("openvino-fp16", 5e-2)):
        probs, logits = predict_artifact_on_samples(ir_artifacts[fmt], samples,
                                                    backend="ov-cpu", threads=2)
        assert np.abs(logits - ref_logits).max() < atol, fmt
        assert (probs.argmax(1) == ref_probs.argmax(1)).all()


def test_ir_runs_only_on_ov_cpu(ir_artifacts: dict[str, Path]) -> None:
    from edgetl.runtime import open_runner
    from edgetl.runtime.backends import default_backend

    with pytest.raises(UsageError, match="OpenVINO IR"):
        open_runner(ir_artifacts["openvino"], "ort-cpu")
    assert default_backend(ir_artifacts["openvino"]) == "ov-cpu"
    assert default_backend(ir_artifacts["onnx"]) == "ort-cpu"
    with open_runner(ir_artifacts["openvino"], "ov-cpu", threads=2) as runner:
        info = runner.describe()
    assert runner.threads == 2
    assert info["hints"] == {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
                             "INFERENCE_NUM_THREADS": "2"}


def test_bench_ov_cpu_records_openvino(ir_artifacts: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    proc = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "bench", str(ir_artifacts["openvino"]),
         "--backend", "ov-cpu", "--threads", "2", "--iters", "3", "--warmup", "1",
         "--json", str(out)], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(out.read_text())
    assert report["env"]["versions"]["openvino"] == ov.__version__.split("-")[0]
    row = report["rows"][0]
    assert (row["backend"], row["precision"], row["threads"]) == ("ov-cpu", "fp32", 2)
    assert row["details"]["runner"]["hints"]["INFERENCE_PRECISION_HINT"] == "f32"
    # the environment block: openvino's version, the CPU as the plugin names it, the settings
    # asked for and what the plugin settled on (float32, not the bf16 default, one stream)
    runtime = report["env"]["runtimes"]["ov-cpu"]
    assert (runtime["runtime"], runtime["version"], runtime["device"]) == \
        ("openvino", ov.__version__, "CPU")
    assert runtime["device_name"] == ov.Core().get_property("CPU", "FULL_DEVICE_NAME")
    assert runtime["settings"] == {"PERFORMANCE_HINT": "LATENCY",
                                   "INFERENCE_PRECISION_HINT": "f32",
                                   "INFERENCE_NUM_THREADS": "2"}
    compiled = runtime["compiled"]
    assert compiled["INFERENCE_PRECISION_HINT"] == "f32"
    assert (compiled["INFERENCE_NUM_THREADS"], compiled["NUM_STREAMS"]) == ("2", "1")
    assert "LATENCY" in compiled["PERFORMANCE_HINT"]
    xml = ir_artifacts["openvino"]
    assert report["artifact"]["size_bytes"] == (xml.stat().st_size
                                                + weights_path(xml).stat().st_size)


def test_predict_cli_without_torch_or_onnxruntime(ir_artifacts: dict[str, Path],
                                                  fixture_run: Path, tmp_path: Path) -> None:
    blockers = tmp_path / "blocker"
    for name in ("torch", "onnxruntime", "onnx"):
        (blockers / name).mkdir(parents=True)
        (blockers / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked: an OpenVINO predict must not import it')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(blockers), env.get("PYTHONPATH")) if p)
    samples = _samples(fixture_run, 4)
    proc = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "predict", str(ir_artifacts["openvino"]),
         *[s.path for s in samples], "--top-k", "2", "--json", "-"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr  # no --backend: an IR picks ov-cpu itself
    predictions = json.loads(proc.stdout)["predictions"]
    assert [p["top"][0]["label"] for p in predictions] == [s.label for s in samples]
    from edgetl.models.inference import torch_probs
    from edgetl.models.loading import load_model

    model, info = load_model(fixture_run, "best")
    probs = torch_probs(model, info.spec, [s.path for s in samples])
    for row, prediction in zip(probs, predictions, strict=True):
        best = int(row.argmax())
        assert prediction["top"][0]["label"] == info.task_record.names[best]
        assert abs(prediction["top"][0]["probability"] - float(row[best])) < 1e-4
