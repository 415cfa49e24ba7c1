"""The README's "Your own data" blocks run as written, each on a generated data set of its layout.

Each task's ```bash block is taken from README.md unchanged except for its two placeholder
lines, `DATA=...` and `IMAGES=...`, which point at a small data set made here (the layout the
section describes) and a folder of new images. The block runs in bash (`set -eu`) from a folder
that holds the repository's `recipes/` and the `.venv` running these tests, so
`. .venv/bin/activate` and the recipe paths work as on a user's clone. To keep a block to
seconds of training, finetune gets `--set` overrides appended (one short phase, small inputs):
a shell function named `edgetl` adds them to `finetune` and runs the venv's real `edgetl` for
every command. Each block must end with a verify report that passed and a prediction file (and
masks) with the expected content.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
VENV = Path(sys.executable).parent.parent  # the venv running the tests, not resolved
PLACEHOLDERS = ("DATA", "IMAGES")
ONE_PHASE = "phases=[{name: A, epochs: 1, unfreeze: head, lr: 0.01, warmup_epochs: 0}]"


def readme_block(heading: str) -> str:
    """The first ```bash block under `### heading` inside "## Your own data"."""
    text = README.read_text(encoding="utf-8")
    part = text.split("\n## Your own data", 1)[1].split("\n## ", 1)[0]
    sections = re.split(r"^### ", part, flags=re.M)
    section = next((s for s in sections if s.startswith(heading + "\n")), None)
    assert section is not None, f"README has no '### {heading}' under '## Your own data'"
    blocks = re.findall(r"^```bash\n(.*?)^```", section, flags=re.M | re.S)
    assert blocks, f"'### {heading}' has no ```bash block"
    return blocks[0]


def with_paths(block: str, values: dict[str, Path]) -> str:
    """The block with each placeholder line `NAME=path/to/...` set to a real path."""
    for name in PLACEHOLDERS:
        pattern = re.compile(rf"^{name}=(\S+)$", re.M)
        found = pattern.findall(block)
        assert len(found) == 1 and found[0].startswith("path/to/"), \
            f"the block should set {name}=path/to/... once, found {found}"
        block = pattern.sub(f"{name}={shlex.quote(str(values[name]))}", block)
    return block


def run_block(block: str, workdir: Path, overrides: list[str]) -> subprocess.CompletedProcess:
    """Run the block in bash from `workdir`, finetune with `overrides` appended."""
    extra = " ".join(shlex.quote(f"--set={o}") for o in overrides)
    prelude = ("set -eu\n"
               "edgetl() {\n"
               f'  if [ "$1" = finetune ]; then command edgetl "$@" {extra}; '
               'else command edgetl "$@"; fi\n'
               "}\n")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    return subprocess.run(["bash", "-c", prelude + block], cwd=workdir, env=env,
                          capture_output=True, text=True, timeout=900)


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    """A folder laid out like the repository root for the README's commands."""
    if not (VENV / "bin" / "activate").is_file() or not (VENV / "bin" / "edgetl").is_file():
        pytest.skip(f"tests do not run from a venv with edgetl installed ({VENV})")
    work = tmp_path / "clone"
    work.mkdir()
    (work / ".venv").symlink_to(VENV, target_is_directory=True)
    (work / "recipes").symlink_to(ROOT / "recipes", target_is_directory=True)
    return work


def new_images(src: list[Path], dest: Path) -> Path:
    """A folder of images to predict on, one level of subfolder (predict searches it)."""
    (dest / "batch").mkdir(parents=True)
    for path in src:
        shutil.copy(path, dest / "batch" / path.name)
    return dest


def passed_verify(work: Path, run: str) -> dict:
    """verify's JSON report of the run's artifact: passed, parity among its checks."""
    report = json.loads((work / "runs" / f"{run}-verify.json").read_text())
    assert report["passed"] is True, report
    assert all(check["passed"] for check in report["checks"])
    assert "parity" in {check["name"] for check in report["checks"]}
    assert Path(report["artifact"]).name == "model.onnx"
    return report


def predictions(work: Path, run: str, images: Path) -> list[dict]:
    data = json.loads((work / "runs" / f"{run}-predictions.json").read_text())
    found = sorted(p["image"] for p in data["predictions"])
    expected = sorted(str(p) for p in (images / "batch").iterdir())
    assert [Path(f).name for f in found] == [Path(e).name for e in expected]
    return data["predictions"]


def splits_by_folder(split_csv: Path, data: Path) -> dict[str, set[str]]:
    """Top-level folder of DATA (train, val) -> the splits the run put its images in."""
    found: dict[str, set[str]] = {}
    with open(split_csv, newline="") as f:
        for row in csv.DictReader(f):
            if row["split"]:
                top = Path(row["path"]).relative_to(data).parts[0]
                found.setdefault(top, set()).add(row["split"])
    return found


def check_image_size(entry: dict) -> tuple[int, int]:
    with Image.open(entry["image"]) as img:
        assert (entry["width"], entry["height"]) == img.size
        return img.size


def block_ok(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, (f"block exited {result.returncode}\n"
                                    f"stdout:\n{result.stdout[-4000:]}\n"
                                    f"stderr:\n{result.stderr[-4000:]}")


def test_readme_names_no_development_paths() -> None:
    """A user's clone has no ../shared (the development data sets live there)."""
    assert "../shared" not in README.read_text(encoding="utf-8")


# ------------------------------------------------------------------ the four tasks


def classification_data(root: Path) -> tuple[Path, list[Path]]:
    """DATA/train/{ok,defect}/ and DATA/val/{ok,defect}/: the tree whose val/ is the test."""
    from clsgen import make_defect_tree

    make_defect_tree(root, {"train": (10, 10), "val": (4, 4)}, scratch=(70, 100),
                     benign=(0, 2), benign_share=0.0)
    return root, sorted((root / "val" / "defect").iterdir())[:2]


def test_classification_block(clone: Path, tmp_path: Path) -> None:
    data, picked = classification_data(tmp_path / "tree")
    images = new_images(picked, tmp_path / "new")
    block = with_paths(readme_block("Classification"), {"DATA": data, "IMAGES": images})
    block_ok(run_block(block, clone, [ONE_PHASE, "model.input_size=64", "train.batch_size=8",
                                      "data.val_fraction=0.2"]))
    passed_verify(clone, "cls")
    splits = splits_by_folder(clone / "runs" / "cls" / "split.csv", data)
    assert splits["val"] == {"test"}, "README: with train/ and val/ only, val/ is the test split"
    assert splits["train"] >= {"train", "val"}, "README: validation is carved from train/"
    for entry in predictions(clone, "cls", images):
        top = entry["top"]
        assert {t["label"] for t in top} <= {"ok", "defect"}
        assert abs(sum(t["probability"] for t in top) - 1.0) < 1e-4  # 2 classes, top-3
    assert (clone / "runs" / "cls-eval").is_dir()


def test_detection_block(clone: Path, tmp_path: Path) -> None:
    from detgen import make_voc

    data = tmp_path / "voc"
    make_voc(data / "train", 16, seed=1)
    make_voc(data / "val", 6, seed=2)
    picked = sorted((data / "val" / "images").iterdir())[:2]
    images = new_images(picked, tmp_path / "new")
    block = with_paths(readme_block("Object detection"), {"DATA": data, "IMAGES": images})
    block_ok(run_block(block, clone, [ONE_PHASE,
                                      "model.input_size=128", "train.batch_size=4",
                                      "model.detector.score_threshold=0.01"]))
    passed_verify(clone, "det")
    by_folder = splits_by_folder(clone / "runs" / "det" / "split.csv", data)
    assert by_folder["val"] == {"val"}, "README: detection keeps val/ as the validation split"
    assert by_folder["train"] >= {"train", "test"}, "README: the test split is carved from train/"
    for entry in predictions(clone, "det", images):
        width, height = check_image_size(entry)
        for det in entry["detections"]:
            assert det["label"] in ("disc", "square")
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 < x2 <= width and 0 <= y1 < y2 <= height
    drawn = sorted(p.name for p in (clone / "runs" / "det-drawn").iterdir())
    assert drawn == sorted(p.stem + ".png" for p in picked)


def _mask_check(folder: Path, picked: list[Path], allowed: Callable[[np.ndarray], bool]) -> None:
    for path in picked:
        mask = np.asarray(Image.open(folder / f"{path.stem}.png"))
        with Image.open(path) as img:
            assert mask.shape[:2] == (img.height, img.width)
        assert allowed(mask), np.unique(mask)


def test_semantic_block(clone: Path, tmp_path: Path) -> None:
    from seggen import make_masks

    data = make_masks(tmp_path / "seg", 24)
    picked = sorted((data / "images").iterdir())[:2]
    images = new_images(picked, tmp_path / "new")
    block = with_paths(readme_block("Semantic segmentation"), {"DATA": data, "IMAGES": images})
    block_ok(run_block(block, clone, [ONE_PHASE, "model.input_size=128", "train.batch_size=4"]))
    passed_verify(clone, "seg")
    for entry in predictions(clone, "seg", images):
        check_image_size(entry)
        shares = entry["shares"]
        assert set(shares) <= {"background", "disc", "square"}
        assert abs(sum(shares.values()) - 1.0) < 1e-3
    _mask_check(clone / "runs" / "seg-masks", picked, lambda m: bool(np.isin(m, [0, 1, 2]).all()))


def test_instance_block(clone: Path, tmp_path: Path) -> None:
    from instgen import make_id_masks

    data = make_id_masks(tmp_path / "cells", 20)
    picked = sorted((data / "images").iterdir())[:2]
    images = new_images(picked, tmp_path / "new")
    block = with_paths(readme_block("Instance segmentation"), {"DATA": data, "IMAGES": images})
    block_ok(run_block(block, clone, [ONE_PHASE,
                                      "model.input_size=96", "train.batch_size=4",
                                      "model.instance.score_threshold=0.01"]))
    passed_verify(clone, "inst")
    for entry in predictions(clone, "inst", images):
        width, height = check_image_size(entry)
        for inst in entry["instances"]:
            assert inst["label"] == "nucleus"
            assert inst["rle"]["size"] == [height, width]
    _mask_check(clone / "runs" / "inst-masks", picked, lambda m: int(m.min()) >= 0)
