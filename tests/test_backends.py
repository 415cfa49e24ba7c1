"""The backend table: every list of backends comes from it, and `open_runner` chooses by it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgetl.errors import EXIT_USAGE, UsageError
from edgetl.runtime import ARTIFACT_BACKENDS, BACKENDS, open_runner
from edgetl.runtime.backends import BACKEND_TABLE


def _relu_onnx(path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Relu", ["input"], ["logits"])], "relu",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return path


def test_every_list_is_derived_from_the_table() -> None:
    from edgetl.bench.e2e import E2E_BACKENDS
    from edgetl.bench.runner import BACKEND_NAMES
    from edgetl.select.config import BACKENDS as SELECT_BACKENDS
    from edgetl.select.config import FORMAT_FOR

    assert ARTIFACT_BACKENDS == ("ort-cpu", "ort-cuda", "tensorrt", "ov-cpu",
                                  "litert-cpu") == SELECT_BACKENDS
    assert BACKENDS == ("ort-cpu", "ort-cuda", "tensorrt", "torch", "ov-cpu",
                        "litert-cpu") == E2E_BACKENDS
    assert tuple(BACKEND_NAMES) == ("auto", *BACKEND_TABLE)
    assert set(BACKEND_NAMES) == {"auto", "ort-cpu", "ort-cuda", "ort-trt", "tensorrt", "torch",
                                  "ov-cpu", "litert-cpu"}
    onnx_formats = {"fp32": "onnx", "fp16": "onnx-fp16", "int8": "onnx-int8"}
    engines = {"fp16": "tensorrt-fp16", "int8": "tensorrt-int8"}
    irs = {"fp32": "openvino", "fp16": "openvino-fp16", "int8": "openvino-int8"}
    expected = {"ort-cpu": onnx_formats, "ort-cuda": onnx_formats, "tensorrt": engines,
                "ov-cpu": irs, "litert-cpu": {"fp32": "litert"}}
    assert expected == FORMAT_FOR


def test_every_row_names_code_that_exists() -> None:
    for row in BACKEND_TABLE.values():
        if row.runner is not None:
            assert callable(row.runner_class().for_artifact), row.name
        if row.require is not None:
            from edgetl.runtime.backends import _load

            assert callable(_load(row.require)), row.name


def test_open_runner_runs_an_onnx_graph_on_ort_cpu(tmp_path: Path) -> None:
    path = _relu_onnx(tmp_path / "relu.onnx")
    with open_runner(path, "ort-cpu", threads=1) as runner:
        out = runner.run(np.array([[-1.0, 0.5, 2.0]], dtype=np.float32))
        assert runner.describe()["providers"] == ["CPUExecutionProvider"]
    np.testing.assert_array_equal(out["logits"], [[0.0, 0.5, 2.0]])


@pytest.mark.parametrize(("name", "backend", "words", "hint"), [
    ("model.fp16.engine", "ort-cpu", "is a TensorRT engine", "use --backend tensorrt"),
    ("model.onnx", "tensorrt", "is an ONNX graph", "--format tensorrt-fp16 or tensorrt-int8"),
    ("model.onnx", "torch", "unknown backend 'torch'", "ort-cpu, ort-cuda, tensorrt"),
    ("model.onnx", "ort-trt", "unknown backend 'ort-trt'", "ort-cpu, ort-cuda, tensorrt"),
])
def test_wrong_pairings_are_usage_errors(tmp_path: Path, name: str, backend: str, words: str,
                                         hint: str) -> None:
    path = _relu_onnx(tmp_path / "relu.onnx").rename(tmp_path / name)
    with pytest.raises(UsageError) as caught:
        open_runner(path, backend)
    assert words in caught.value.message and hint in (caught.value.hint or "")
    assert caught.value.exit_code == EXIT_USAGE


def test_sessions_open_with_the_runner_options(tmp_path: Path) -> None:
    import onnxruntime as ort

    from edgetl.runtime.onnxrt import open_session

    path = _relu_onnx(tmp_path / "relu.onnx")
    options = open_session(path, threads=2).get_session_options()
    assert (options.intra_op_num_threads, options.inter_op_num_threads) == (2, 1)
    assert options.log_severity_level == 3
    assert options.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    plain = open_session(path.read_bytes(), optimization="basic").get_session_options()
    assert plain.intra_op_num_threads == 0  # onnxruntime's own default pool
    assert plain.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
