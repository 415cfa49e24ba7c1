"""Quantisation-aware int8 (issue 25): the graph passes on hand-made QDQ graphs, the recipe's
`quantize:` section, and `export --format onnx-int8 --qat` through the real CLI on a fixture
run (NNCF, ONNX Runtime, verify)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from edgetl.export.onnx_int8_qat import (
    compute_node_counts,
    dequantize_after_reshapes,
    fold_weight_quantisers,
)


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def _qdq_conv_gemm() -> onnx.ModelProto:
    """x -> Q/DQ -> Conv(Q/DQ weight, per channel) -> GlobalAveragePool -> Q/DQ -> Flatten ->
    Gemm(Q/DQ weight): the shape NNCF's QDQ export gives a classifier's end, with the scales
    and zero points as Constant nodes as torch writes them."""
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    fc = rng.normal(size=(2, 4)).astype(np.float32)
    w_scale = (np.abs(weight).reshape(4, -1).max(1) / 127).astype(np.float32)

    def const(name: str, value: np.ndarray) -> onnx.NodeProto:
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(value))

    nodes = [
        const("xs", np.array(0.02, np.float32)), const("xz", np.array(128, np.uint8)),
        const("ws", w_scale), const("wz", np.zeros(4, np.int8)),
        const("ps", np.array(0.05, np.float32)), const("pz", np.array(0, np.uint8)),
        const("fs", np.array(np.abs(fc).max() / 127, np.float32)),
        const("fz", np.array(0, np.int8)),
        helper.make_node("QuantizeLinear", ["x", "xs", "xz"], ["xq"]),
        helper.make_node("DequantizeLinear", ["xq", "xs", "xz"], ["xd"]),
        helper.make_node("QuantizeLinear", ["w", "ws", "wz"], ["wq"], axis=0),
        helper.make_node("DequantizeLinear", ["wq", "ws", "wz"], ["wd"], axis=0),
        helper.make_node("Conv", ["xd", "wd"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1]),
        helper.make_node("Relu", ["c"], ["r"]),
        helper.make_node("GlobalAveragePool", ["r"], ["p"]),
        helper.make_node("QuantizeLinear", ["p", "ps", "pz"], ["pq"]),
        helper.make_node("DequantizeLinear", ["pq", "ps", "pz"], ["pd"]),
        helper.make_node("Flatten", ["pd"], ["f"]),
        helper.make_node("QuantizeLinear", ["fc", "fs", "fz"], ["fcq"]),
        helper.make_node("DequantizeLinear", ["fcq", "fs", "fz"], ["fcd"]),
        helper.make_node("Gemm", ["f", "fcd"], ["y"], name="/fc/Gemm", transB=1),
    ]
    graph = helper.make_graph(
        nodes, "qdq", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])],
        [numpy_helper.from_array(weight, "w"), numpy_helper.from_array(fc, "fc")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model, full_check=True)
    return model


def test_weight_quantisers_become_int8_initialisers_with_the_same_outputs() -> None:
    model = _qdq_conv_gemm()
    x = np.random.default_rng(1).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    before = _run(model, x)
    weight = numpy_helper.to_array(next(t for t in model.graph.initializer if t.name == "w"))
    assert fold_weight_quantisers(model) == 2  # the two weights, not the activations
    onnx.checker.check_model(model, full_check=True)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    assert set(inits) == {"wq", "fcq"}  # the float weights are gone
    assert inits["wq"].dtype == np.int8 and inits["fcq"].dtype == np.int8
    # by hand: per output channel, round(w / (max|w| / 127)); the largest weight is +-127
    scale = np.abs(weight).reshape(4, -1).max(1) / 127
    np.testing.assert_array_equal(inits["wq"], np.rint(weight / scale[:, None, None, None]))
    assert np.abs(inits["wq"]).reshape(4, -1).max(1).tolist() == [127] * 4
    assert [n.op_type for n in model.graph.node].count("QuantizeLinear") == 2  # activations
    np.testing.assert_array_equal(_run(model, x), before)


def test_dequantize_moves_past_flatten_so_the_gemm_counts_as_int8() -> None:
    model = _qdq_conv_gemm()
    x = np.random.default_rng(2).uniform(-1, 1, (1, 3, 8, 8)).astype(np.float32)
    before = _run(model, x)
    assert compute_node_counts(model, set()) == {
        "network_compute_nodes": 2, "int8_compute_nodes": 1, "float_compute_nodes": 1}
    assert dequantize_after_reshapes(model) == 1
    onnx.checker.check_model(model, full_check=True)
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert producers[gemm.input[0]] == "DequantizeLinear"
    assert compute_node_counts(model, set()) == {
        "network_compute_nodes": 2, "int8_compute_nodes": 2, "float_compute_nodes": 0}
    assert compute_node_counts(model, {"/fc/Gemm"})["network_compute_nodes"] == 1
    np.testing.assert_allclose(_run(model, x), before, rtol=0, atol=1e-6)


def test_quantize_section_is_checked_and_old_recipes_hash_as_before() -> None:
    import hashlib

    from edgetl.errors import RecipeError
    from edgetl.recipe import Recipe, load_recipe

    plain = Recipe()
    dump = plain.model_dump(mode="json")
    dump.pop("quantize"), dump.pop("tile")
    text = json.dumps(dump, sort_keys=True, separators=(",", ":"))
    assert plain.sha256() == hashlib.sha256(text.encode()).hexdigest()
    with_qat = Recipe(quantize={"epochs": 0.5, "time_budget": "4m"})
    assert with_qat.quantize.epochs == 0.5 and with_qat.quantize.max_float_nodes == 0
    assert with_qat.sha256() != plain.sha256()
    with pytest.raises(ValueError, match="not a duration"):
        Recipe(quantize={"time_budget": "soon"})
    with pytest.raises(ValueError, match="extra"):
        Recipe(quantize={"epoch": 2})
    assert RecipeError  # load_recipe turns the ValueError into the recipe's exit code
    assert callable(load_recipe)


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args],
                          capture_output=True, text=True, timeout=900)


def test_qat_refuses_a_format_it_does_not_apply_to(fixture_run: Path, tmp_path: Path) -> None:
    done = _cli("export", str(fixture_run), "--format", "onnx", "--qat",
                "--out", str(tmp_path / "m.onnx"))
    assert done.returncode == 2
    assert "--qat does not apply to onnx" in done.stderr
    assert not (tmp_path / "m.onnx").exists() and not (fixture_run / "qat").exists()


@pytest.fixture(scope="module")
def qat_export(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A fixture run whose recipe asks for 2 QAT steps, exported with --qat."""
    from fixtures_runs import make_fixture_run

    root = tmp_path_factory.mktemp("qat")
    run = make_fixture_run(root, per_split={"train": 12, "val": 12, "test": 6})
    (run / "recipe.yaml").write_text(
        "name: qat-fixture\ndata: {source: " + str(root / "data.csv") + "}\n"
        "quantize: {max_steps: 2, batch_size: 8, calibration_images: 16}\n")
    out = root / "m.int8.onnx"
    first = _cli("export", str(run), "--format", "onnx-int8", "--qat", "--out", str(out))
    assert first.returncode == 0, first.stderr
    manifest = json.loads(Path(str(out) + ".manifest.json").read_text())
    return {"run": run, "out": out, "first": first, "manifest": manifest}


def test_qat_export_is_all_int8_in_its_own_checkpoint(qat_export: dict) -> None:
    run, out = qat_export["run"], qat_export["out"]
    quant = qat_export["manifest"]["details"]["quantization"]
    # nothing in the network float: every Conv and the Gemm read dequantised inputs and weights
    assert quant["network_compute_nodes"] == 50 and quant["float_compute_nodes"] == 0
    assert quant["float_nodes"] == {"strategy": "qat", "met": True, "nodes": []}
    graph = onnx.load(str(out))
    assert compute_node_counts(graph, set())["float_compute_nodes"] == 0
    int8 = [t for t in graph.graph.initializer if t.data_type == TensorProto.INT8]
    assert len(int8) >= 50 and quant["weight_quantisers_folded"] == 50
    assert not [t for t in graph.graph.initializer
                if t.data_type == TensorProto.FLOAT and t.name.endswith("conv_pw.weight")]
    meta = {p.key: p.value for p in graph.metadata_props}
    assert json.loads(meta["edgetl.int8_float_nodes"])["nodes"] == []
    # its own checkpoint beside best/, with its own metrics lines: before, then one epoch
    record = json.loads((run / "qat" / "checkpoint.json").read_text())
    qat = record["quantisation_aware"]
    assert qat["steps"] == 2 and qat["ended_by"] == "max_steps"
    assert qat["identity"]["source_weights_sha256"] == json.loads(
        (run / "best" / "checkpoint.json").read_text())["weights_sha256"]
    lines = [json.loads(x) for x in (run / "qat" / "metrics.jsonl").read_text().splitlines()]
    assert [(x["phase"], x["epoch"], x["steps"]) for x in lines] == [("QAT", 0, 0),
                                                                   ("QAT", 1, 2)]
    assert lines[0]["images"] == 36 and 0.0 <= lines[1]["val_agreement"] <= 1.0
    assert quant["quantisation_aware"]["validation_before"] == {k: lines[0][k] for k in
                                                  ("val_accuracy", "val_loss",
                                                   "val_agreement", "images")}
    # ONNX Runtime runs it as integer convolutions
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(out.with_suffix(".opt.onnx"))
    ort.InferenceSession(str(out), options, providers=["CPUExecutionProvider"])
    ops = [n.op_type for n in onnx.load(options.optimized_model_filepath).graph.node]
    assert ops.count("QLinearConv") == 49 and "Conv" not in ops


def test_qat_export_passes_verify_and_reuses_its_checkpoint(qat_export: dict,
                                                             tmp_path: Path) -> None:
    run, out = qat_export["run"], qat_export["out"]
    verdict = _cli("verify", str(out), "--against", str(run), "--json",
                   str(tmp_path / "v.json"))
    assert verdict.returncode == 0, verdict.stdout + verdict.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["passed"] is True
    stamp = (run / "qat" / "model.safetensors").stat().st_mtime_ns
    again = _cli("export", str(run), "--format", "onnx-int8", "--qat",
                 "--out", str(tmp_path / "again.onnx"))
    assert again.returncode == 0, again.stderr
    assert "(reused)" in again.stdout.replace("\n", " ")
    assert (run / "qat" / "model.safetensors").stat().st_mtime_ns == stamp
    first = onnx.load(str(out)).graph.initializer
    second = {t.name: numpy_helper.to_array(t) for t in
              onnx.load(str(tmp_path / "again.onnx")).graph.initializer}
    for tensor in first:
        np.testing.assert_array_equal(numpy_helper.to_array(tensor), second[tensor.name])
