"""openvino-int8 on the fixture run: NNCF quantisation recorded, verify passes on int8 budgets,
predictions agree with the onnx-int8 artifact. Real files; skipped without openvino or nncf."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetl.artifact.manifest import read_manifest
from edgetl.artifact.openvino_ir import weights_path

pytest.importorskip("openvino")
nncf = pytest.importorskip("nncf")


@pytest.fixture(scope="module")
def int8_artifacts(fixture_run: Path, tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[str, Path]:
    """The fixture run exported as onnx-int8 (the reference) and openvino-int8."""
    from edgetl.export import export_run

    out = tmp_path_factory.mktemp("openvino-int8")
    return {fmt: export_run(fixture_run, fmt, out=out).path
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
