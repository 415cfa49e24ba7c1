"""verify: every check runs on real images of the run's split; failures are gates (exit 1)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

from edgetl.artifact.manifest import META_SPEC, manifest_path
from edgetl.verify import verify_artifact
from edgetl.verify.checks import mcnemar_exact_p

REPO = Path(__file__).resolve().parents[1]
CHECKS = ["spec", "labels", "source", "preprocessing", "outputs", "parity", "accuracy"]


def run_cli(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, env=dict(os.environ),
                          timeout=600)


def rewrite_metadata(src: Path, dst: Path, change) -> Path:
    """Copy an ONNX artifact (and its manifest) with its metadata_props edited by `change`."""
    model = onnx.load(str(src))
    meta = {p.key: p.value for p in model.metadata_props}
    change(meta)
    del model.metadata_props[:]
    onnx.helper.set_model_props(model, meta)
    onnx.save(model, str(dst))
    shutil.copy(manifest_path(src), manifest_path(dst))
    return dst


@pytest.mark.parametrize("key", ["onnx", "onnx-fp16", "onnx-embed"])
def test_verify_passes(artifacts: dict[str, Path], fixture_run: Path, key: str) -> None:
    report = verify_artifact(artifacts[key], fixture_run)
    data = report.to_dict()
    assert data["passed"] is True, report.failure_line()
    assert [c["name"] for c in data["checks"]] == CHECKS
    parity = report.check("parity").details
    accuracy = report.check("accuracy").details
    assert parity["images"] == accuracy["images"] == 30
    assert parity["top1_agreement"] >= (1.0 if key != "onnx-fp16" else 0.995)
    assert parity["cosine_min"] > 0.999
    assert accuracy["pytorch_accuracy"] > 0.8  # the fixture's head learnt the classes
    assert -accuracy["delta_points"] <= 0.5
    golden = report.check("preprocessing").details
    assert golden["after_normalisation"]["worst_image_max"] <= 3.0
    assert golden["before_normalisation"]["mean_of_image_means"] < 0.5


def test_cli_verify_int8_passes_and_writes_json(artifacts: dict[str, Path], fixture_run: Path,
                                                tmp_path: Path) -> None:
    out = tmp_path / "verify.json"
    proc = run_cli("verify", artifacts["onnx-int8"], "--against", fixture_run, "--json", out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    data = json.loads(out.read_text())
    assert data["passed"] is True and data["precision"] == "int8"
    assert data["budgets"]["top1_agreement"] == 0.98 and data["budgets"]["accuracy_points"] == 1.0
    checks = {c["name"]: c for c in data["checks"]}
    assert list(checks) == CHECKS and all(c["passed"] for c in checks.values())
    acc = checks["accuracy"]["details"]
    assert abs(acc["delta_points"]) <= 1.0
    assert 0.0 <= acc["mcnemar"]["exact_p"] <= 1.0
    assert "PASSED" in proc.stdout


def test_changed_mean_fails_and_names_mean(artifacts: dict[str, Path], fixture_run: Path,
                                           tmp_path: Path) -> None:
    def shift_mean(meta: dict[str, str]) -> None:
        spec = json.loads(meta[META_SPEC])
        spec["mean"] = [m + 0.1 for m in spec["mean"]]
        meta[META_SPEC] = json.dumps(spec)

    bad = rewrite_metadata(artifacts["onnx"], tmp_path / "model.onnx", shift_mean)
    out = tmp_path / "report.json"
    proc = run_cli("verify", bad, "--against", fixture_run, "--json", out, "--max-images", 9)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "mean" in proc.stderr and proc.stderr.startswith("error: verify failed")
    data = json.loads(out.read_text())  # written before the gate failed
    checks = {c["name"]: c for c in data["checks"]}
    assert data["passed"] is False and list(checks) == CHECKS  # every check still ran
    assert checks["spec"]["passed"] is False
    assert checks["spec"]["details"]["differing_fields"] == ["mean"]
    assert checks["source"]["passed"] is False  # the file no longer matches its manifest
    assert checks["preprocessing"]["passed"] is False  # the reference now normalises wrongly
    assert checks["preprocessing"]["details"]["before_normalisation"]["worst_image_max"] <= 3


def test_artifact_without_spec_exits_2(artifacts: dict[str, Path], fixture_run: Path,
                                       tmp_path: Path) -> None:
    bare = rewrite_metadata(artifacts["onnx"], tmp_path / "bare.onnx", lambda m: m.clear())
    proc = run_cli("verify", bare, "--against", fixture_run)
    assert proc.returncode == 2
    assert "has no embedded preprocessing spec" in proc.stderr
    assert proc.stderr.count("\n") == 1


def test_missing_backend_exits_3(artifacts: dict[str, Path], fixture_run: Path) -> None:
    import onnxruntime as ort

    if "CUDAExecutionProvider" in ort.get_available_providers():
        pytest.skip("this onnxruntime has CUDA")
    proc = run_cli("verify", artifacts["onnx"], "--against", fixture_run, "--backend", "ort-cuda")
    assert proc.returncode == 3 and "no CUDA provider" in proc.stderr


def test_stricter_budget_is_a_gate(artifacts: dict[str, Path], fixture_run: Path) -> None:
    """Budgets are gates: demanding a 0.1-point gain over PyTorch fails accuracy, and only it."""
    report = verify_artifact(artifacts["onnx-fp16"], fixture_run, accuracy_budget=-0.1,
                             max_images=6)
    assert [c.name for c in report.failures] == ["accuracy"]


def test_mcnemar_exact_p_matches_binomial() -> None:
    ref = np.array([True] * 10 + [False] * 2 + [True] * 5)
    art = np.array([False] * 10 + [True] * 2 + [True] * 5)
    b, c, p = mcnemar_exact_p(ref, art)
    assert (b, c) == (10, 2)
    # two-sided exact binomial: 2 * P(X <= 2 | n=12, 1/2)
    assert p == pytest.approx(2 * (1 + 12 + 66) / 4096)
    assert mcnemar_exact_p(ref, ref)[2] == 1.0
