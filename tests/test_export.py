"""export: ONNX fp32/fp16/int8 artifacts from a real run carry their spec and behave.

The artifacts come from the session fixtures in conftest.py (exported once); the CLI itself is
exercised through a subprocess for exit codes and messages.
"""

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

from edgetl.artifact.manifest import (
    META_ARCHITECTURE,
    META_LABELS,
    META_SPEC,
    META_SPEC_FINGERPRINT,
    META_VERSION,
    META_WEIGHTS_SHA256,
    manifest_path,
    read_artifact,
)
from edgetl.checkpoint import read_checkpoint_info
from edgetl.export.calibration import select_calibration_samples
from edgetl.io import sha256_file

REPO = Path(__file__).resolve().parents[1]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=env or dict(os.environ),
                          timeout=600)


def session(path: Path) -> ort.InferenceSession:
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def test_cli_export_onnx(fixture_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "lite0.onnx"
    proc = run_cli("export", fixture_run, "--format", "onnx", "--out", out)
    assert proc.returncode == 0, proc.stderr
    assert out.is_file() and manifest_path(out).is_file()
    model = onnx.load(str(out))
    onnx.checker.check_model(model, full_check=True)
    assert max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx")) >= 17
    assert [i.name for i in model.graph.input] == ["input"]
    assert [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    # Dynamic batch really works: three real-shaped inputs in one call.
    info = read_checkpoint_info(fixture_run)
    h, w = info.spec.input_size
    x = np.random.default_rng(0).standard_normal((3, 3, h, w)).astype(np.float32)
    assert session(out).run(None, {"input": x})[0].shape == (3, info.task_record.num_classes)


@pytest.mark.parametrize("key", ["onnx", "onnx-fp16", "onnx-int8", "onnx-embed"])
def test_metadata_and_manifest(artifacts: dict[str, Path], fixture_run: Path, key: str) -> None:
    path = artifacts[key]
    model = onnx.load(str(path))
    onnx.checker.check_model(model, full_check=True)
    meta = {p.key: p.value for p in model.metadata_props}
    for field in (META_SPEC, META_SPEC_FINGERPRINT, META_LABELS, META_ARCHITECTURE,
                  META_VERSION, META_WEIGHTS_SHA256):
        assert meta.get(field), field
    run = read_checkpoint_info(fixture_run)
    art = read_artifact(path)
    assert art.task_record == run.task_record
    assert meta[META_WEIGHTS_SHA256] == run.weights_sha256()
    assert meta[META_ARCHITECTURE] == run.architecture
    assert meta[META_SPEC_FINGERPRINT] == art.spec.fingerprint()
    expected_spec = run.spec.with_overrides(graph_input="uint8_raw") if key == "onnx-embed" \
        else run.spec
    assert art.spec == expected_spec
    manifest = json.loads(manifest_path(path).read_text())
    assert manifest["sha256"] == sha256_file(path)
    assert manifest["opset"] >= 17
    assert manifest["source"]["run"] == str(fixture_run.resolve())
    assert manifest["spec_fingerprint"] == art.spec.fingerprint()
    assert manifest["versions"]["onnxruntime"] == ort.__version__
    assert art.source_run == fixture_run.resolve() and art.data_origin == run.data_origin


def test_fp32_graph_matches_pytorch(artifacts: dict[str, Path], fixture_run: Path) -> None:
    """The export surgery (static SAME padding folded into Conv pads) keeps the function."""
    import torch

    from edgetl.models.loading import load_model

    model, info = load_model(fixture_run)
    h, w = info.spec.input_size
    x = np.random.default_rng(1).standard_normal((2, 3, h, w)).astype(np.float32)
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    got = session(artifacts["onnx"]).run(None, {"input": x})[0]
    assert np.abs(got - expected).max() < 1e-3
    ops = [n.op_type for n in onnx.load(str(artifacts["onnx"])).graph.node]
    assert "Pad" not in ops and "Shape" not in ops  # static, folded padding


def test_fp16_has_half_weights_and_float32_io(artifacts: dict[str, Path]) -> None:
    model = onnx.load(str(artifacts["onnx-fp16"]))
    halves = sum(t.data_type == onnx.TensorProto.FLOAT16 for t in model.graph.initializer)
    assert halves > 40
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert model.graph.output[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    manifest = json.loads(manifest_path(artifacts["onnx-fp16"]).read_text())
    assert manifest["details"]["compute_dtype"] == "float16"
    assert manifest["io"]["input"]["dtype"] == "float32"
    assert os.path.getsize(artifacts["onnx-fp16"]) < 0.6 * os.path.getsize(artifacts["onnx"])


def test_int8_is_really_quantised_and_3x_smaller(artifacts: dict[str, Path]) -> None:
    path = artifacts["onnx-int8"]
    assert "int8-qdq" in path.name
    model = onnx.load(str(path))
    ops = [n.op_type for n in model.graph.node]
    int8 = sum(t.data_type == onnx.TensorProto.INT8 for t in model.graph.initializer)
    assert ops.count("QuantizeLinear") > 20 and ops.count("DequantizeLinear") > 40
    assert int8 >= 40  # the convolution and classifier weights
    quant = json.loads(manifest_path(path).read_text())["details"]["quantization"]
    assert quant["quantize_linear_nodes"] == ops.count("QuantizeLinear")
    assert quant["format"] == "QDQ" and quant["per_channel"] is True
    assert quant["calibration_images"] > 0
    assert os.path.getsize(artifacts["onnx"]) >= 3 * os.path.getsize(path)
    # which nodes stayed float32 and why: the same record in the manifest and the metadata
    embedded = json.loads({p.key: p.value for p in model.metadata_props}[
        "edgetl.int8_float_nodes"])
    assert embedded == quant["float_nodes"]
    assert embedded["strategy"] == quant["accuracy_search"]["strategy"] == \
        quant["accuracy_search"]["rounds"][-1]["strategy"]
    assert len(embedded["nodes"]) == quant["accuracy_search"]["rounds"][-1][
        "float_compute_nodes"]
    assert all(node["why"] for node in embedded["nodes"])
    assert quant["accuracy_search"]["rounds"][0]["strategy"] == "all-int8"
    assert quant["calibration_reused"] is True


def test_embedded_graph_takes_uint8_nhwc(artifacts: dict[str, Path], fixture_run: Path) -> None:
    model = onnx.load(str(artifacts["onnx-embed"]))
    tensor = model.graph.input[0].type.tensor_type
    assert tensor.elem_type == onnx.TensorProto.UINT8
    h, w = read_checkpoint_info(fixture_run).spec.input_size
    assert [d.dim_param or d.dim_value for d in tensor.shape.dim] == ["batch", h, w, 3]
    assert "embed" not in artifacts["onnx"].name and ".uint8in." in artifacts["onnx-embed"].name


def test_calibration_pick_is_stratified_and_deterministic() -> None:
    from edgetl.data.samples import Sample

    samples = [Sample(f"/x/{label}/{i}.png", label) for label, n in (("a", 60), ("b", 30),
                                                                     ("c", 10))
               for i in range(n)]
    picked = select_calibration_samples(samples, 20, seed=3)
    counts = {label: sum(s.label == label for s in picked) for label in "abc"}
    assert sum(counts.values()) == 20 and counts["a"] > counts["b"] > counts["c"] >= 1
    assert picked == select_calibration_samples(samples, 20, seed=3)
    assert select_calibration_samples(samples, 500) == sorted(samples, key=lambda s: s.path)


@pytest.mark.parametrize("fmt", ["tensorrt-fp16", "tensorrt-int8"])
def test_tensorrt_without_tensorrt_exits_3(fixture_run: Path, tmp_path: Path, fmt: str) -> None:
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("tensorrt is installed here; see test_tensorrt_engine_builds")
    proc = run_cli("export", fixture_run, "--format", fmt, "--out", tmp_path / "m.engine")
    assert proc.returncode == 3, proc.stderr
    assert "TensorRT is not installed" in proc.stderr
    assert proc.stderr.count("\n") == 1 and not (tmp_path / "m.engine").exists()


@pytest.mark.tensorrt
@pytest.mark.parametrize("fmt", ["tensorrt-fp16", "tensorrt-int8"])
def test_tensorrt_engine_builds(fixture_run: Path, tmp_path: Path, fmt: str) -> None:
    pytest.importorskip("tensorrt", reason="TensorRT is not installed here")
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.skip("TensorRT needs a CUDA GPU")
    from edgetl.export import ExportOptions, export_run

    result = export_run(fixture_run, fmt, tmp_path, ExportOptions(max_batch=8))
    assert result.path.suffix == ".engine" and manifest_path(result.path).is_file()
    assert read_artifact(result.path).spec == read_checkpoint_info(fixture_run).spec


def test_unknown_format_exits_2(fixture_run: Path) -> None:
    proc = run_cli("export", fixture_run, "--format", "onnx-int4")
    assert proc.returncode == 2
    assert "unknown export format 'onnx-int4'" in proc.stderr and "onnx-int8" in proc.stderr
