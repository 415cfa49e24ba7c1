"""`edgetl bundle` and its device side: the runner in a subprocess that cannot import torch,
torchvision, timm, onnx or edgetl (cwd at the bundle, no repo on the path), the report read back
with `verify --device-report`, and what an edited bundle or a slower device does to the gates."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
BLOCKED = ("torch", "torchvision", "timm", "onnx", "safetensors", "scipy", "pycocotools",
           "edgetl")
ITERATIONS = "8"


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=300)


def _on_device(bundle: Path, report: Path, python: str = sys.executable,
               command: list[str] | None = None) -> subprocess.CompletedProcess:
    """run.py (or `command`) with the heavy packages and edgetl itself made unimportable."""
    blockers = report.parent / "blockers"
    for name in BLOCKED:
        (blockers / name).mkdir(parents=True, exist_ok=True)
        (blockers / name / "__init__.py").write_text(
            f"raise ImportError('{name} is blocked: the device runner must not import it')\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PYTHONPATH"] = str(blockers)
    args = command or ["run.py", "--report", str(report), "--iterations", ITERATIONS]
    return subprocess.run([python, *args], env=env, cwd=bundle, capture_output=True, text=True,
                          timeout=300)


@pytest.fixture(scope="module")
def bundles(fixture_run: Path, artifacts: dict[str, Path],
            tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = {}
    for key in ("onnx", "onnx-int8"):
        folder = tmp_path_factory.mktemp("bundles") / key
        proc = _cli("bundle", str(artifacts[key]), "--against", str(fixture_run), "--out",
                    str(folder), "--samples", "12")
        assert proc.returncode == 0, proc.stderr
        out[key] = folder
    return out


@pytest.fixture(scope="module")
def device_reports(bundles: dict[str, Path], tmp_path_factory: pytest.TempPathFactory
                   ) -> dict[str, Path]:
    out = {}
    for key, bundle in bundles.items():
        report = tmp_path_factory.mktemp("device") / "report.json"
        proc = _on_device(bundle, report)
        assert proc.returncode == 0, proc.stderr
        out[key] = report
    return out


@pytest.mark.parametrize("key", ["onnx", "onnx-int8"])
def test_bundle_passes_on_device_and_reads_back(key: str, bundles: dict[str, Path],
                                                device_reports: dict[str, Path],
                                                fixture_run: Path) -> None:
    bundle = json.loads((bundles[key] / "bundle.json").read_text())
    assert len(bundle["images"]) == 12 and len(set(bundle["labels"])) > 1
    copied = [name for name in bundle["files"] if name.startswith("edgetl_device/")]
    assert "edgetl_device/edgetl/device/runner.py" in copied
    assert not any(part in name for name in copied
                   for part in ("torch_runner", "/models/", "/train/", "/export/", "build.py"))
    report = json.loads(device_reports[key].read_text())
    assert report["passed"], report["failures"]
    assert [c["name"] for c in report["checks"]] == ["integrity", "preprocessing"]
    ort = report["backends"]["ort-cpu"]
    names = {c["name"]: c for c in ort["checks"]}
    assert names["artifact"]["passed"] and "embedded record matches" in names["artifact"]["summary"]
    assert names["parity"]["details"]["images"] == 12
    assert names["accuracy"]["details"]["artifact_accuracy"] >= 0.5
    assert ort["latency"]["n"] == int(ITERATIONS) and ort["latency"]["p50_ms"] > 0
    assert report["environment"]["versions"]["onnxruntime"]
    assert report["environment"]["cpu"]["model"]
    assert report["provenance"]["artifact_sha256"] == bundle["provenance"]["artifact_sha256"]
    proc = _cli("verify", "--device-report", str(device_reports[key]), "--against",
                str(fixture_run))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "device report: PASSED" in proc.stdout and "onnxruntime" in proc.stdout


def _edited_copy(bundle: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "bundle"
    shutil.copytree(bundle, copy)
    return copy


def test_swapped_artifact_fails_integrity(bundles: dict[str, Path], tmp_path: Path) -> None:
    copy = _edited_copy(bundles["onnx"], tmp_path)
    name = json.loads((copy / "bundle.json").read_text())["artifact"]
    int8 = json.loads((bundles["onnx-int8"] / "bundle.json").read_text())["artifact"]
    shutil.copyfile(bundles["onnx-int8"] / int8, copy / name)
    proc = _on_device(copy, tmp_path / "report.json")
    assert proc.returncode == 1
    assert f"integrity: {name} changed since bundling" in proc.stderr
    assert not json.loads((tmp_path / "report.json").read_text())["passed"]


def test_swapped_artifact_with_rewritten_file_list_fails(bundles: dict[str, Path],
                                                         tmp_path: Path) -> None:
    """The file list rewritten to match a swapped model: the artifact's own record says so."""
    sys.path.insert(0, str(REPO))
    from edgetl.io import sha256_file

    copy = _edited_copy(bundles["onnx"], tmp_path)
    record = json.loads((copy / "bundle.json").read_text())
    int8 = json.loads((bundles["onnx-int8"] / "bundle.json").read_text())["artifact"]
    shutil.copyfile(bundles["onnx-int8"] / int8, copy / record["artifact"])
    record["files"][record["artifact"]] = sha256_file(copy / record["artifact"])
    (copy / "bundle.json").write_text(json.dumps(record))
    proc = _on_device(copy, tmp_path / "report.json")
    assert proc.returncode == 1
    assert "ort-cpu/artifact: the artifact is not the one bundled" in proc.stderr
    assert "edgetl.precision int8 != bundle's fp32" in proc.stderr


def test_edited_golden_outputs_fail(bundles: dict[str, Path], tmp_path: Path) -> None:
    import numpy as np

    copy = _edited_copy(bundles["onnx"], tmp_path)
    logits = np.load(copy / "torch_outputs.npz")["logits"]
    np.savez(copy / "torch_outputs.npz", logits=logits[:, ::-1])
    proc = _on_device(copy, tmp_path / "report.json")
    assert proc.returncode == 1
    assert "integrity: torch_outputs.npz changed since bundling" in proc.stderr


def test_edited_report_fails_read_back(device_reports: dict[str, Path], fixture_run: Path,
                                       tmp_path: Path) -> None:
    report = json.loads(device_reports["onnx"].read_text())
    report["backends"]["ort-cpu"]["latency"]["p50_ms"] /= 2  # a faster device, by hand
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(report))
    proc = _cli("verify", "--device-report", str(edited), "--against", str(fixture_run))
    assert proc.returncode == 1
    assert "report: the report was edited" in proc.stderr


def test_device_latency_regression_fails_gate(device_reports: dict[str, Path],
                                              fixture_run: Path, tmp_path: Path) -> None:
    sys.path.insert(0, str(REPO))
    from edgetl.device.runner import canonical_sha256

    report = json.loads(device_reports["onnx"].read_text())
    latency = report["backends"]["ort-cpu"]["latency"]
    for key in [k for k in latency if k.endswith("_ms")]:
        latency[key] *= 5.0  # a device five times slower, spread and all
    report["report_sha256"] = canonical_sha256(report, "report_sha256")
    slower = tmp_path / "slower.json"
    slower.write_text(json.dumps(report))
    args = ("verify", "--device-report", str(slower), "--against", str(fixture_run),
            "--baseline", str(device_reports["onnx"]), "--max-regression", "0.2")
    proc = _cli(*args)
    assert proc.returncode == 1
    assert "latency: ort-cpu fp32 batch 1 compute regressed" in proc.stderr
    same = _cli("verify", "--device-report", str(device_reports["onnx"]), "--against",
                str(fixture_run), "--baseline", str(device_reports["onnx"]))
    assert same.returncode == 0, same.stderr


def test_device_report_is_a_bench_baseline(device_reports: dict[str, Path]) -> None:
    """`bench --baseline` reads a device report as a bench report with one row per backend."""
    sys.path.insert(0, str(REPO))
    from edgetl.bench.compare import compare_reports
    from edgetl.device.readback import load_baseline

    baseline = load_baseline(device_reports["onnx"])
    (row,) = baseline["rows"]
    assert (row["backend"], row["precision"], row["batch"], row["mode"]) == (
        "ort-cpu", "fp32", 1, "compute")
    faster = {**baseline, "rows": [{**row, "p50_ms": row["p50_ms"] / 2}]}
    slower = {**baseline, "rows": [{**row, "p50_ms": row["p50_ms"] * 3 + row["p90_ms"] * 3,
                                    "p90_ms": row["p90_ms"] * 3 + row["p90_ms"] * 3}]}
    assert compare_reports(baseline, faster, 0.2).passed
    assert not compare_reports(baseline, slower, 0.2).passed


@pytest.mark.slow
def test_runner_in_a_bare_venv(bundles: dict[str, Path], tmp_path: Path) -> None:
    """A real virtual environment holding only numpy, Pillow and onnxruntime."""
    from importlib import metadata

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    pins = [f"{p}=={metadata.version(p)}" for p in ("numpy", "Pillow", "onnxruntime")]
    pip = subprocess.run([python, "-m", "pip", "install", "-q", *pins], capture_output=True,
                         text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install {pins} here: {pip.stderr.strip()[-200:]}")
    for key, bundle in bundles.items():
        proc = _on_device(bundle, tmp_path / f"{key}.json", python=python)
        assert proc.returncode == 0, proc.stderr
        assert json.loads((tmp_path / f"{key}.json").read_text())["passed"]
