"""`--calibration-method auto`: each calibration method's fully quantised graph is judged on
validation and the best is kept (near-ties to min-max, then percentile, then entropy); an
explicit method skips the comparison. The choice is in the export report and the artifact's
metadata. Real onnxruntime quantisation; the fixture run through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from edgetl.export.int8_method import META_INT8_CALIBRATION, PREFERENCE, choose_method


def test_auto_picks_the_method_with_the_best_judge_figure(tmp_path: Path) -> None:
    """A calibration outlier min-max stretches its range over: percentile wins by far."""
    import onnx
    import torch
    from int8gen import outlier_inputs, tiny_outlier_classifier

    from edgetl.export.int8_judges import TopOneJudge
    from edgetl.export.int8_quantise import Quantiser
    from edgetl.export.onnx_fp32 import trace_to_onnx
    from edgetl.export.onnx_int8 import _pre_process

    fp32_path, pre_path = tmp_path / "fp32.onnx", tmp_path / "pre.onnx"
    onnx.save(trace_to_onnx(tiny_outlier_classifier(), torch.zeros(1, 3, 32, 32), 17),
              str(fp32_path))
    _pre_process(fp32_path, pre_path)
    calibration, validation = outlier_inputs()
    judge = TopOneJudge.on_inputs(fp32_path, validation, 0.98)

    def candidate(method: str) -> Path:
        return Quantiser(pre_path, calibration, method, tmp_path)(tmp_path / f"{method}.onnx")

    choice = choose_method("auto", candidate, judge)
    figures = {c["method"]: c["score_points"] for c in choice.candidates}
    assert [c["method"] for c in choice.candidates] == list(PREFERENCE)
    assert figures["percentile"] > figures["minmax"] + 10.0  # the outlier ruins min-max
    assert choice.method == max(figures, key=lambda m: (figures[m], -PREFERENCE.index(m)))
    assert choice.method != "minmax"
    assert all(c["seconds"] > 0 and "agreement" in c["text"] for c in choice.candidates)
    record = choice.record()
    assert record["calibration_method"] == choice.method
    assert record["calibration_choice"].startswith("auto, best top-1 agreement")
    assert choice.metadata() == {META_INT8_CALIBRATION: choice.method}
    # given: no candidate is built
    given = choose_method("entropy", lambda m: pytest.fail("quantised"), judge)
    assert given.method == "entropy" and given.candidates == []


def test_fixture_artifact_records_the_method(artifacts: dict[str, Path]) -> None:
    """The session's onnx-int8 artifact (default options: min-max, no comparison): the method
    named in the report, as given, and read back from the ONNX file."""
    import onnx

    from edgetl.artifact.manifest import read_manifest

    path = artifacts["onnx-int8"]
    quant = read_manifest(path)["details"]["quantization"]
    assert quant["calibration_method"] == "minmax"
    assert quant["calibration_candidates"] == []
    assert quant["calibration_choice"].startswith("given")
    metadata = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert metadata[META_INT8_CALIBRATION] == "minmax"
    assert read_manifest(path)["options"]["calibration_method"] == "minmax"


def _export(run: Path, out: Path, *method: str) -> tuple[dict, dict[str, str], str]:
    """The CLI's onnx-int8 export: (its quantization record, metadata_props, stdout)."""
    import onnx

    from edgetl.artifact.manifest import manifest_path

    done = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "export", str(run), "--format", "onnx-int8",
         "--out", str(out), "--calibration-images", "8", *method],
        capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stderr
    manifest = json.loads(manifest_path(out).read_text())
    model = onnx.load(str(out))
    return (manifest["details"]["quantization"],
            {p.key: p.value for p in model.metadata_props}, done.stdout)


@pytest.mark.slow
def test_cli_auto_then_given(fixture_run: Path, tmp_path: Path) -> None:
    """The fixture run: auto compares the three methods (all agree on its validation images,
    so min-max keeps today's graph); --calibration-method percentile is used as given."""
    import onnx

    auto_q, auto_meta, auto_out = _export(fixture_run, tmp_path / "auto.onnx",
                                          "--calibration-method", "auto")
    candidates = auto_q["calibration_candidates"]
    assert [c["method"] for c in candidates] == list(PREFERENCE)
    assert all(c["score_points"] is not None and c["seconds"] > 0 for c in candidates)
    best = max(c["score_points"] for c in candidates)
    tied = [c["method"] for c in candidates if c["score_points"] >= best - 0.1]
    assert auto_q["calibration_method"] == tied[0]
    assert auto_meta[META_INT8_CALIBRATION] == auto_q["calibration_method"]
    assert f"({auto_q['calibration_method']}, auto, best" in auto_out

    given_q, given_meta, given_out = _export(fixture_run, tmp_path / "given.onnx",
                                             "--calibration-method", auto_q[
                                                 "calibration_method"])
    assert given_q["calibration_candidates"] == []
    assert given_meta[META_INT8_CALIBRATION] == auto_q["calibration_method"]
    # auto's choice quantises exactly as the explicit method does
    graphs = [onnx.load(str(tmp_path / f"{n}.onnx")).graph.SerializeToString()
              for n in ("auto", "given")]
    assert graphs[0] == graphs[1]

    other = next(m for m in PREFERENCE if m != auto_q["calibration_method"])
    other_q, other_meta, _ = _export(fixture_run, tmp_path / "other.onnx",
                                     "--calibration-method", other)
    assert other_q["calibration_method"] == other and other_meta[META_INT8_CALIBRATION] == other
