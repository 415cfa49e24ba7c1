"""predict: the artifact and its embedded spec only, and never torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetl.data.sources import load_data
from edgetl.predict import predict_artifact_on_samples

REPO = Path(__file__).resolve().parents[1]


def split_samples(run: Path, n: int | None = None) -> list:
    samples = load_data(str(run / "split.csv"), check_images=False).by_split("test")
    return samples if n is None else samples[::max(1, len(samples) // n)][:n]


def torch_blocked_env(tmp_path: Path) -> dict[str, str]:
    """An environment whose `import torch` raises, whatever is installed."""
    blocker = tmp_path / "blocker" / "torch"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text(
        "raise ImportError('torch is blocked: predict must not import it')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(blocker.parent),
                                                    env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.parametrize("key", ["onnx", "onnx-embed"])
def test_predict_cli_without_torch(artifacts: dict[str, Path], fixture_run: Path,
                                   tmp_path: Path, key: str) -> None:
    env = torch_blocked_env(tmp_path)
    check = subprocess.run([sys.executable, "-c", "import torch"], env=env, cwd=REPO,
                           capture_output=True, text=True)
    assert check.returncode != 0 and "torch is blocked" in check.stderr
    samples = split_samples(fixture_run, 6)
    proc = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "predict", str(artifacts[key]),
         *[s.path for s in samples], "--top-k", "2", "--json", "-"],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert [p["image"] for p in data["predictions"]] == [s.path for s in samples]
    for pred, sample in zip(data["predictions"], samples, strict=True):
        top = pred["top"]
        assert len(top) == 2 and top[0]["probability"] >= top[1]["probability"]
        assert top[0]["label"] == sample.label  # the fixture model is right on these
    # The table output works the same way.
    table = subprocess.run(
        [sys.executable, "-m", "edgetl.cli.main", "predict", str(artifacts[key]), samples[0].path],
        env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert table.returncode == 0 and samples[0].label in table.stdout


def test_predict_module_imports_no_torch() -> None:
    code = ("import sys, edgetl.predict, edgetl.cli.main; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'torchvision', 'timm')];"
            " print(bad); sys.exit(1 if bad else 0)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_embedded_and_plain_predict_identically(artifacts: dict[str, Path],
                                                fixture_run: Path) -> None:
    samples = split_samples(fixture_run)
    probs, logits = predict_artifact_on_samples(artifacts["onnx"], samples)
    probs_e, logits_e = predict_artifact_on_samples(artifacts["onnx-embed"], samples)
    assert probs.shape == (len(samples), 3)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert (probs.argmax(axis=1) == probs_e.argmax(axis=1)).all()
    assert np.abs(probs - probs_e).max() < 1e-5
    assert np.abs(logits - logits_e).max() < 1e-3


def test_predict_errors(artifacts: dict[str, Path], tmp_path: Path) -> None:
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not an image")
    proc = subprocess.run([sys.executable, "-m", "edgetl.cli.main", "predict",
                           str(artifacts["onnx"]), str(broken)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "cannot decode image" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "edgetl.cli.main", "predict",
                           str(tmp_path / "missing.onnx"), str(broken)],
                          cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and "artifact not found" in proc.stderr


@pytest.mark.slow
def test_embedded_int8_predicts_like_plain_int8(artifacts: dict[str, Path], fixture_run: Path,
                                                tmp_path: Path) -> None:
    """The normalisation stays float in embedded int8 graphs, so both quantise identically."""
    from edgetl.export import ExportOptions, export_run

    embedded = export_run(fixture_run, "onnx-int8", tmp_path,
                          ExportOptions(embed_preprocessing=True)).path
    samples = split_samples(fixture_run)
    probs, _ = predict_artifact_on_samples(artifacts["onnx-int8"], samples)
    probs_e, _ = predict_artifact_on_samples(embedded, samples)
    assert (probs.argmax(axis=1) == probs_e.argmax(axis=1)).all()
    assert np.abs(probs - probs_e).max() < 1e-4


def test_predict_takes_folders_recursively_with_glob(artifacts: dict[str, Path],
                                                     fixture_run: Path, tmp_path: Path) -> None:
    """A folder is every image under it (sorted, recursively), the same predictions as the
    files given one by one; --glob picks names; an empty match is exit 2 before any work."""
    import shutil

    samples = split_samples(fixture_run, 6)
    tree = tmp_path / "photos"
    copies = []
    for i, sample in enumerate(samples):
        target = tree / ("cam1" if i % 2 else "cam2/night") / f"img{i}{Path(sample.path).suffix}"
        target.parent.mkdir(parents=True, exist_ok=True)
        copies.append(Path(shutil.copy(sample.path, target)))
    (tree / "notes.txt").write_text("not an image\n")
    (tree / ".hidden.png").write_bytes(b"not read")

    env = torch_blocked_env(tmp_path)

    def predict(*args: object) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "edgetl.cli.main", "predict",
                               str(artifacts["onnx"]), *map(str, args), "--json", "-"],
                              cwd=REPO, capture_output=True, text=True, timeout=300, env=env)

    folder = predict(tree)
    assert folder.returncode == 0, folder.stderr
    files = predict(*sorted(copies))
    assert files.returncode == 0, files.stderr
    by_folder = json.loads(folder.stdout)["predictions"]
    assert [p["image"] for p in by_folder] == [str(p) for p in sorted(copies)]
    assert by_folder == json.loads(files.stdout)["predictions"]
    labels = {str(c): s.label for c, s in zip(copies, samples, strict=True)}
    assert all(p["top"][0]["label"] == labels[p["image"]] for p in by_folder)

    picked = predict(tree, "--glob", "cam1/*")
    assert picked.returncode == 0, picked.stderr
    assert {p["image"] for p in json.loads(picked.stdout)["predictions"]} == \
        {str(c) for c in copies if c.parent.name == "cam1"}
    none = predict(tree, "--glob", "*.gif")
    assert none.returncode == 2 and "holds no files matching '*.gif'" in none.stderr
    shutil.copy(copies[0], tree / "cam1" / f"{copies[0].stem}.png")  # two files img0.*
    clash = predict(tree, "--draw", tmp_path / "drawn")
    assert clash.returncode == 2 and "would both be written as img0.png" in clash.stderr
    assert not (tmp_path / "drawn").exists()
