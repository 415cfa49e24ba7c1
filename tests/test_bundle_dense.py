"""`edgetl bundle` for the dense tasks: the runner with torch, pycocotools and edgetl made
unimportable (and, slow, in a virtual environment holding only numpy, Pillow and onnxruntime),
the report read back, and what an edited bundle does on the device.

Each task gets one tiny run (generated data, 64 px, one epoch, as test_openvino_dense builds
them). The default suite bundles the detector's fp32 ONNX; every task's fp32 and int8 are slow.
The device's figures are verify's own: the same checks on the same sample give the same
details (test_device_coco holds the mAP arithmetic to pycocotools').
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from test_bundle import REPO, _cli, _on_device

SLOW = pytest.mark.slow
HEADS = {
    "detection": ("tf_efficientnet_lite0", "detector: {fpn_channels: 16, head_convs: 1}"),
    "semantic": ("tf_efficientnet_lite0", "segmenter: {inter_channels: 16}"),
    "instance": ("mobilenetv2_100", "instance: {fpn_channels: 16, head_convs: 1, "
                 "mask_channels: 8, mask_resolution: 14, max_detections: 20}"),
}
# One-epoch models on a handful of test images: int8's figures land a few points either side
# of its budgets from one CPU to the next (test_semantic_run, test_detection_run and
# test_instance_deploy give verify the same looser gates for the same reason). The bundle and
# its read-back take them as verify's flags; the real budgets are met on the benchmark runs.
INT8_BUDGETS = {"detection": ["--metric-drop-budget", "10"],
                "semantic": ["--agreement-budget", "0.95"],
                "instance": ["--metric-drop-budget", "10", "--agreement-budget", "0.8"]}
FILES = {"onnx": "model.onnx", "onnx-int8": "model.int8-qdq.onnx"}


@pytest.fixture(scope="module")
def dense_runs(tmp_path_factory: pytest.TempPathFactory):
    """task -> run folder (fp32 ONNX exported), built on first use and kept for the module."""
    import detgen
    import instgen
    import seggen

    from edgetl.export import export_run

    built: dict[str, Path] = {}
    makers = {"detection": lambda root: detgen.make_voc(root, 24, seed=3),
              "semantic": lambda root: seggen.make_masks(root, 24, seed=1),
              "instance": lambda root: instgen.make_id_masks(root, 24, seed=2)}

    def get(task: str) -> Path:
        if task not in built:
            root = tmp_path_factory.mktemp(f"bundle-{task}")
            data = makers[task](root / "data")
            arch, head = HEADS[task]
            (root / "recipe.yaml").write_text(
                f"name: bundle-{task}\ntask: {task}\n"
                "data: {val_fraction: 0.25, test_fraction: 0.25}\n"
                f"model:\n  architecture: {arch}\n  input_size: 64\n  {head}\n"
                "augment: {preset: light}\n"
                "train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}\n"
                "phases:\n  - {name: A, epochs: 1, unfreeze: head, lr: 5.0e-3}\n")
            done = _cli("finetune", str(root / "recipe.yaml"), "--data", str(data), "--out",
                        str(root / "run"))
            assert done.returncode == 0, done.stderr
            export_run(root / "run", "onnx")
            built[task] = root / "run"
        return built[task]

    return get


def _artifact(run: Path, fmt: str) -> Path:
    path = run / "export" / FILES[fmt]
    if not path.is_file():
        from edgetl.export import export_run

        export_run(run, fmt)
    return path


def _bundle(run: Path, fmt: str, out: Path, budgets: list[str]) -> Path:
    done = _cli("bundle", str(_artifact(run, fmt)), "--against", str(run), "--out", str(out),
                "--samples", "12", *budgets)
    assert done.returncode == 0, done.stderr
    return out


@pytest.mark.parametrize("task", ["classification", "detection", "semantic", "instance"])
def test_each_tasks_device_modules_import_without_torch(task: str, tmp_path: Path) -> None:
    """The import scan from the runner and the task's `device_checks` module finds only numpy,
    Pillow and the standard library; the copied modules import with torch, pycocotools, scipy
    and the installed edgetl blocked."""
    from edgetl import tasks
    from edgetl.device.build import _copy_modules, task_entry

    task_def = tasks.get(task)
    copied = _copy_modules(tmp_path, task_entry(task_def))
    module = task_def.device_checks.partition(":")[0]
    assert f"edgetl_device/{module.replace('.', '/')}.py" in copied
    code = ("import sys; sys.path.insert(0, 'edgetl_device'); import edgetl.device.runner; "
            f"from edgetl import tasks; tasks.get({task!r}).load('device_checks'); "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'pycocotools', 'scipy', 'onnx')))")
    done = _on_device(tmp_path, tmp_path / "unused.json", command=["-c", code])
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.fixture(scope="module")
def det_bundle(dense_runs, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _bundle(dense_runs("detection"), "onnx", tmp_path_factory.mktemp("det") / "b", [])


@pytest.fixture(scope="module")
def det_report(det_bundle: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    report = tmp_path_factory.mktemp("det-device") / "report.json"
    done = _on_device(det_bundle, report)
    assert done.returncode == 0, done.stderr
    return report


def _checks(report: Path) -> dict[str, dict]:
    return {c["name"]: c for c in json.loads(report.read_text())["backends"]["ort-cpu"]["checks"]}


def test_detector_bundle_passes_on_device_and_reads_back(dense_runs, det_bundle: Path,
                                                        det_report: Path) -> None:
    run = dense_runs("detection")
    record = json.loads((det_bundle / "bundle.json").read_text())
    assert record["task"] == "detection" and record["budgets"]["match_rate"] == 0.99
    truth = np.load(det_bundle / "labels.npz")
    images = len(record["images"])
    assert images >= 4 and sum(len(truth[f"boxes_{i}"]) for i in range(images)) > 0
    copied = [name for name in record["files"] if name.startswith("edgetl_device/")]
    for needed in ("device/detection.py", "metrics/coco_match.py", "verify/detection.py"):
        assert f"edgetl_device/edgetl/{needed}" in copied
    assert not any(part in name for name in copied
                   for part in ("/models/", "/train/", "/export/", "/device/semantic.py"))
    checks = _checks(det_report)
    assert list(checks) == ["artifact", "parity", "map"]
    assert all(c["passed"] for c in checks.values())
    assert checks["map"]["details"]["images"] == images
    back = _cli("verify", "--device-report", str(det_report), "--against", str(run))
    assert back.returncode == 0, back.stdout + back.stderr
    assert "device report: PASSED" in back.stdout and "ort-cpu/map" in back.stdout


def _rewritten(bundle: Path, tmp_path: Path, name: str) -> Path:
    """A copy whose file list is rewritten to match an edited `name` (only the device's own
    checks can tell then)."""
    sys.path.insert(0, str(REPO))
    from edgetl.io import sha256_file

    record = json.loads((bundle / "bundle.json").read_text())
    record["files"][name] = sha256_file(bundle / name)
    (bundle / "bundle.json").write_text(json.dumps(record))
    return bundle


def test_detector_bundle_with_edited_torch_outputs_fails_on_device(det_bundle: Path,
                                                                  tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(det_bundle, copy)
    outputs = dict(np.load(copy / "torch_outputs.npz"))
    outputs["num_detections"][:] = 1  # a confident box the artifact never gives
    outputs["scores"][:, 0], outputs["labels"][:, 0] = 0.99, 0
    outputs["boxes"][:, 0] = [8.0, 8.0, 40.0, 40.0]
    np.savez(copy / "torch_outputs.npz", **outputs)
    done = _on_device(copy, tmp_path / "r1.json")
    assert done.returncode == 1
    assert "integrity: torch_outputs.npz changed since bundling" in done.stderr
    done = _on_device(_rewritten(copy, tmp_path, "torch_outputs.npz"), tmp_path / "r2.json")
    assert done.returncode == 1
    assert "ort-cpu/parity: 0/" in done.stderr and "matched, 0.00%" in done.stderr


def test_detector_bundle_with_swapped_artifact_fails_on_device(det_bundle: Path,
                                                              tmp_path: Path) -> None:
    """Another model file in the artifact's place (the same graph from other weights, as its
    embedded record says): integrity fails; with the file list rewritten, the artifact check."""
    import onnx

    from edgetl.artifact.manifest import META_WEIGHTS_SHA256

    copy = tmp_path / "b"
    shutil.copytree(det_bundle, copy)
    name = json.loads((copy / "bundle.json").read_text())["artifact"]
    model = onnx.load(str(copy / name))
    (prop,) = [p for p in model.metadata_props if p.key == META_WEIGHTS_SHA256]
    prop.value = "0" * 64
    onnx.save(model, str(copy / name))
    done = _on_device(copy, tmp_path / "r1.json")
    assert done.returncode == 1 and f"integrity: {name} changed since bundling" in done.stderr
    done = _on_device(_rewritten(copy, tmp_path, name), tmp_path / "r2.json")
    assert done.returncode == 1
    assert "ort-cpu/artifact: the artifact is not the one bundled" in done.stderr
    assert f"{META_WEIGHTS_SHA256} 000000000000 != bundle's" in done.stderr


def test_detector_bundle_with_edited_labels_fails_integrity(det_bundle: Path,
                                                           tmp_path: Path) -> None:
    copy = tmp_path / "b"
    shutil.copytree(det_bundle, copy)
    truth = dict(np.load(copy / "labels.npz"))
    truth["boxes_0"] = truth["boxes_0"] + 5.0
    np.savez_compressed(copy / "labels.npz", **truth)
    done = _on_device(copy, tmp_path / "r.json")
    assert done.returncode == 1 and "integrity: labels.npz changed since bundling" in done.stderr


@pytest.fixture(scope="module")
def bare_python(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A real virtual environment holding only numpy, Pillow and onnxruntime."""
    from importlib import metadata

    venv = tmp_path_factory.mktemp("venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = str(venv / "bin" / "python")
    pins = [f"{p}=={metadata.version(p)}" for p in ("numpy", "Pillow", "onnxruntime")]
    pip = subprocess.run([python, "-m", "pip", "install", "-q", *pins], capture_output=True,
                         text=True, timeout=600)
    if pip.returncode != 0:
        pytest.skip(f"cannot install {pins} here: {pip.stderr.strip()[-200:]}")
    return python


@SLOW
@pytest.mark.parametrize("fmt", ["onnx", "onnx-int8"])
@pytest.mark.parametrize("task", ["detection", "semantic", "instance"])
def test_dense_bundle_in_a_bare_venv_reads_back(dense_runs, bare_python: str, task: str,
                                                fmt: str, tmp_path: Path) -> None:
    from edgetl import tasks

    run = dense_runs(task)
    budgets = INT8_BUDGETS[task] if fmt == "onnx-int8" else []
    bundle = _bundle(run, fmt, tmp_path / "bundle", budgets)
    for python, report in ((sys.executable, tmp_path / "blocked.json"),
                           (bare_python, tmp_path / "bare.json")):
        done = _on_device(bundle, report, python=python)
        assert done.returncode == 0, done.stderr
        checks = _checks(report)
        assert list(checks) == ["artifact", *tasks.get(task).verify_gates]
    back = _cli("verify", "--device-report", str(tmp_path / "bare.json"), "--against", str(run),
                *budgets)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "device report: PASSED" in back.stdout
    if budgets:  # read back with the default gates, the loosened one fails here
        strict = _cli("verify", "--device-report", str(tmp_path / "bare.json"), "--against",
                      str(run))
        assert strict.returncode in (0, 1)
        assert strict.returncode == 0 or "fails this machine's budget" in strict.stdout


@SLOW
@pytest.mark.parametrize("task", ["detection", "semantic", "instance"])
def test_device_figures_are_verify_figures(dense_runs, task: str, tmp_path: Path) -> None:
    """verify on the same sample (its stratified subset of 12 is the bundle's): the device's
    parity and metric details equal verify's, bootstrap interval and all."""
    from edgetl import tasks

    run = dense_runs(task)
    bundle = _bundle(run, "onnx", tmp_path / "bundle", [])
    done = _on_device(bundle, tmp_path / "device.json")
    assert done.returncode == 0, done.stderr
    done = _cli("verify", str(_artifact(run, "onnx")), "--against", str(run), "--max-images",
                "12", "--json", str(tmp_path / "v.json"))
    assert done.returncode == 0, done.stdout + done.stderr
    verified = {c["name"]: c for c in json.loads((tmp_path / "v.json").read_text())["checks"]}
    device = _checks(tmp_path / "device.json")
    for name in tasks.get(task).verify_gates:
        assert device[name]["details"] == verified[name]["details"], name
        assert device[name]["summary"] == verified[name]["summary"], name
