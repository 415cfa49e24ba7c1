"""openvino-int8 on the fixture run: NNCF quantisation recorded, verify passes on int8 budgets,
predictions agree with the onnx-int8 artifact; the accuracy search keeps a layer int8 destroys
float (`int8gen`'s tiny model; slow: a Lite0 run with a planted outlier, through export and
verify). Real files; skipped without openvino or nncf."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetl.artifact.manifest import read_manifest
from edgetl.artifact.openvino_ir import ir_metadata, weights_path
from edgetl.export.int8_search import META_INT8_FLOAT

pytest.importorskip("openvino")
nncf = pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def int8_artifacts(fixture_run: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[str, Path]:
    """The fixture run exported as onnx-int8 (the reference) and openvino-int8."""
    from edgetl.export import ExportOptions, export_run

    out = tmp_path_factory.mktemp("openvino-int8")
    # min-max given: the method NNCF calibrates with (no comparison of methods)
    options = ExportOptions(calibration_method="minmax")
    return {fmt: export_run(fixture_run, fmt, out=out, options=options).path
            for fmt in ("onnx-int8", "openvino-int8")}


def test_manifest_records_quantisation(int8_artifacts: dict[str, Path]) -> None:
    xml = int8_artifacts["openvino-int8"]
    assert xml.name == "model.int8.xml" and weights_path(xml).is_file()
    manifest = read_manifest(xml)
    assert manifest is not None and manifest["format"] == "openvino-int8"
    assert manifest["precision"] == "int8"
    q = manifest["details"]["quantization"]
    assert q["nncf"] == nncf.__version__ and q["preset"] == "PERFORMANCE"
    assert q["fake_quantize_nodes"] > 0
    assert q["quantised_compute_nodes"] > q["float_compute_nodes"]
    onnx_q = read_manifest(int8_artifacts["onnx-int8"])["details"]["quantization"]
    # the same stratified calibration pick as onnx-int8
    assert q["calibration_fingerprint"] == onnx_q["calibration_fingerprint"]
    assert q["calibration_images"] == onnx_q["calibration_images"]
    assert q["ignored_scope"]["patterns"] == ["^/preprocess/.*"]
    search = q["accuracy_search"]
    assert search["met"] is True and search["rounds"][0]["val_agreement"] >= 0.98
    assert not list(xml.parent.glob(".ov-export-*"))
    # the float-node record onnx-int8 keeps, in the manifest and the IR's rt_info
    assert q["float_nodes"] == {"strategy": "all-int8", "met": True, "nodes": []}
    assert set(q["float_nodes"]) == set(onnx_q["float_nodes"])
    assert set(search) >= set(onnx_q["accuracy_search"]) - {"sensitivity"}
    assert json.loads(ir_metadata(xml)[META_INT8_FLOAT]) == q["float_nodes"]


def test_verify_passes_with_int8_budgets(int8_artifacts: dict[str, Path],
                                         fixture_run: Path) -> None:
    from edgetl.verify import verify_artifact

    report = verify_artifact(int8_artifacts["openvino-int8"], fixture_run, backend="ov-cpu",
                             threads=2)
    assert report.to_dict()["passed"] is True, report.failure_line()
    parity = report.check("parity").details
    assert parity["top1_agreement"] >= 0.98


def test_predict_agrees_with_onnx_int8(int8_artifacts: dict[str, Path],
                                       fixture_run: Path) -> None:
    from edgetl.data.sources import load_data
    from edgetl.predict import predict_artifact_on_samples

    samples = load_data(str(fixture_run / "split.csv"), check_images=False).by_split("test")
    ref, _ = predict_artifact_on_samples(int8_artifacts["onnx-int8"], samples)
    got, _ = predict_artifact_on_samples(int8_artifacts["openvino-int8"], samples,
                                         backend="ov-cpu", threads=2)
    assert (ref.argmax(axis=1) == got.argmax(axis=1)).all()
    assert [s.label for s in samples] and got.shape == ref.shape


# --------------------------------------------------------------------------- accuracy search
def test_search_keeps_the_damaged_layer_float_in_the_ir(tmp_path: Path) -> None:
    """The shared search with NNCF candidates on a model whose third convolution int8
    destroys: everything int8 misses; the ranking (FakeQuantize bypassed, no recalibration)
    puts that convolution first, and the IR NNCF makes with it in `ignored_scope` meets the
    target with no FakeQuantize feeding it. The IR names it as the ONNX node plus
    `/WithoutBiases` (the converter moves the bias into an Add that keeps the ONNX name)."""
    import onnx
    import openvino as ov
    import torch
    from int8gen import TINY_COMPUTE, TINY_DAMAGED, tiny_inputs, tiny_int8_classifier

    from edgetl.export.int8_judges import TopOneJudge
    from edgetl.export.int8_search import search
    from edgetl.export.onnx_fp32 import trace_to_onnx
    from edgetl.export.openvino_int8 import COMPUTE_TYPES, NncfQuantiser, sensitivity

    fp32_path = tmp_path / "fp32.onnx"
    onnx.save(trace_to_onnx(tiny_int8_classifier(), torch.zeros(1, 3, 16, 16), 17),
              str(fp32_path))
    model = ov.convert_model(str(fp32_path))
    calibration, validation = tiny_inputs()
    ops = list(model.get_ordered_ops())
    compute = [op for op in ops if op.get_type_name() in COMPUTE_TYPES]
    damaged = f"{TINY_DAMAGED}/WithoutBiases"
    assert [op.get_friendly_name() for op in compute] == [f"{n}/WithoutBiases"
                                                          for n in TINY_COMPUTE]
    quantiser = NncfQuantiser(model, calibration, [])
    judge = TopOneJudge.on_inputs(fp32_path, validation, 0.95, by_bound=False)
    found = search(quantiser, tmp_path, [op.get_friendly_name() for op in ops],
                   [op.get_friendly_name() for op in compute], [], judge,
                   lambda: sensitivity(quantiser, compute, fp32_path, validation[:2]),
                   suffix=".xml")
    assert found.met and found.strategy == "sensitivity"
    assert [n["node"] for n in found.float_nodes] == [damaged] == found.exclude
    everything, kept = found.rounds
    assert everything["val_agreement"] < 0.95 <= kept["val_agreement"]
    assert kept["float_nodes"] == [damaged] and kept["size_bytes"] > 0
    ranking = found.ranking
    assert ranking["layers"][0]["node"] == damaged and ranking["images"] == 64
    assert ranking["layers"][0]["relative_gain"] > 0.5
    assert found.path.suffix == ".xml"
    ir = {op.get_friendly_name(): op for op in ov.Core().read_model(found.path).get_ops()}
    fed = [port.get_source_output().get_node().get_type_name() for port in
           ir[damaged].inputs()]
    assert "FakeQuantize" not in fed  # float32 activations and weights
    assert ir[f"{TINY_COMPUTE[3]}/WithoutBiases"].input_value(0).get_node().get_type_name() \
        == "FakeQuantize"  # its neighbour stays int8


@pytest.mark.slow
def test_export_keeps_a_sensitive_layer_float_then_verify_passes(tmp_path: Path) -> None:
    """Through the CLI on a Lite0 run with one layer int8 destroys (`plant_int8_outlier`):
    the fully quantised IR misses the judge, the search keeps that layer float and passes;
    the IR's rt_info, the manifest and the export report name it; `edgetl verify` passes."""
    import os
    import subprocess
    import sys

    from fixtures_runs import INT8_OUTLIER_NODE, make_fixture_run, plant_int8_outlier

    run = make_fixture_run(tmp_path / "planted", prepare=plant_int8_outlier)

    def cli(*args: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                              capture_output=True, text=True, timeout=600,
                              env={**os.environ, "COLUMNS": "200"})

    done = cli("export", run, "--format", "openvino-int8", "--out", tmp_path / "ir")
    assert done.returncode == 0, done.stdout + done.stderr
    kept = f"{INT8_OUTLIER_NODE}/WithoutBiases"
    assert f"float32: {kept}: rank 1 of 50" in done.stdout
    assert "1 most sensitive compute nodes kept float32" in done.stdout
    xml = tmp_path / "ir" / "model.int8.xml"
    quant = read_manifest(xml)["details"]["quantization"]
    everything, *_, last = quant["accuracy_search"]["rounds"]
    assert everything["strategy"] == "all-int8" and everything["val_agreement"] < 0.98
    assert last["strategy"] == "sensitivity" and last["val_agreement"] >= 0.98
    assert quant["accuracy_search"]["met"] and quant["float_nodes"]["strategy"] == "sensitivity"
    assert quant["float_nodes"]["nodes"][0]["node"] == kept
    assert kept in quant["ignored_scope"]["names"]
    assert quant["float_compute_nodes"] >= 1
    embedded = json.loads(ir_metadata(xml)[META_INT8_FLOAT])
    assert embedded == quant["float_nodes"]  # the same record onnx-int8 embeds
    done = cli("verify", xml, "--against", run, "--json", tmp_path / "v.json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "v.json").read_text())
    assert report["passed"] is True
