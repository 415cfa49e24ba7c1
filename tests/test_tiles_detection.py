"""Detection on tiles through the real CLI: a generated set of small objects, `tile:` in the
recipe, a few training steps, ONNX export, then `predict`, `evaluate ARTIFACT` and `evaluate
RUN` cut the same windows (the rule recorded in the spec) and report boxes in the images' own
pixels."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import imagegen
import numpy as np
import pytest
from detgen import voc_xml
from PIL import ImageDraw

from edgetl.tiling import TileRule, image_windows

REPO = Path(__file__).resolve().parents[1]
SIZE = (320, 240)  # W, H of every image
RULE = TileRule(160, 0.0, whole_image=True)  # 2 x 2 tiles and the whole image

RECIPE = """\
name: tiles-test
task: detection
data: {val_fraction: 0.2, test_fraction: 0.2}
model:
  architecture: tf_efficientnet_lite0
  input_size: 96
  detector: {fpn_channels: 16, head_convs: 1}
augment: {preset: light}
tile: {size: 160, overlap: 0.0, whole_image: true}
train: {batch_size: 8, eval_batch_size: 8, num_threads: 2}
phases:
  - {name: A, steps: 3, unfreeze: head, lr: 5.0e-3}
"""


def make_small_objects(root: Path, count: int, seed: int = 0) -> Path:
    """ROOT/images/*.png with Pascal VOC XML: 3-6 squares of 10-16 px on textured photos,
    4-6 px at a 96 px input: small untiled, 6-10 px on a 160 px tile."""
    (root / "images").mkdir(parents=True)
    (root / "annotations").mkdir(parents=True)
    for i in range(count):
        rnd = random.Random(seed * 1000 + i)
        image = imagegen.textured_image(np.random.default_rng(seed * 1000 + i), SIZE)
        draw = ImageDraw.Draw(image)
        objects: list[tuple[str, tuple[int, int, int, int]]] = []
        for _ in range(rnd.randint(3, 6)):
            side = rnd.randint(10, 16)
            x1, y1 = rnd.randint(0, SIZE[0] - side), rnd.randint(0, SIZE[1] - side)
            box = (x1, y1, x1 + side, y1 + side)
            draw.rectangle((x1, y1, box[2] - 1, box[3] - 1), fill=(240, 20, 20))
            objects.append(("square", box))
        image.save(root / "images" / f"s{i:02d}.png")
        (root / "annotations" / f"s{i:02d}.xml").write_text(
            voc_xml(f"s{i:02d}.png", SIZE, objects))
    return root


def cli(*args: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *map(str, args)],
                          capture_output=True, text=True, cwd=REPO, timeout=600,
                          env={**os.environ, "COLUMNS": "160"})


@pytest.mark.slow  # about 80 s on 2 shared cores: a training, an export, four CLI commands
def test_tiled_training_prediction_and_evaluation_cut_the_same_windows(tmp_path: Path) -> None:
    data = make_small_objects(tmp_path / "voc", 15)
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(RECIPE)
    done = cli("finetune", recipe, "--data", data, "--out", tmp_path / "run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tiles: 160 px" in done.stdout
    spec = json.loads((tmp_path / "run" / "best" / "checkpoint.json").read_text())["spec"]
    assert spec["tile"] == RULE.to_dict()

    # tiles are cut from images already split (a group never spans splits): the split file
    # names whole images, and the training tiles are exactly the training images' windows
    import csv

    rows = list(csv.DictReader((tmp_path / "run" / "split.csv").open()))
    train = {r["path"] for r in rows if r["split"] == "train"}
    assert len({r["path"] for r in rows}) == 15
    assert f"{5 * len(train)} training tiles from {len(train)} images" in done.stdout

    done = cli("export", tmp_path / "run", "--format", "onnx")
    assert done.returncode == 0, done.stderr
    artifact = tmp_path / "run" / "export" / "model.onnx"

    done = cli("evaluate", artifact, "--json", tmp_path / "eval.json")
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "eval.json").read_text())
    assert report["tiles"]["rule"] == RULE.to_dict()
    windows = report["tiles"]["windows"]
    expected = [list(w) for w in image_windows(*SIZE, RULE)]
    assert len(expected) == 5 and all(ws == expected for ws in windows.values())

    done = cli("evaluate", tmp_path / "run", "--json", tmp_path / "eval-run.json")
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads((tmp_path / "eval-run.json").read_text())["tiles"]["windows"] == windows

    done = cli("verify", artifact, "--against", tmp_path / "run", "--json", tmp_path / "v.json")
    checks = {c["name"]: c for c in json.loads((tmp_path / "v.json").read_text())["checks"]}
    assert checks["tiles"]["passed"] and checks["preprocessing"]["passed"], checks["tiles"]
    assert {row["image"]: row["windows"] for row in checks["tiles"]["details"]["images"]} == \
        windows

    images = sorted(windows)
    done = cli("predict", artifact, *images, "--min-score", "0", "--json",
               tmp_path / "pred.json")
    assert done.returncode == 0, done.stdout + done.stderr
    predictions = json.loads((tmp_path / "pred.json").read_text())["predictions"]
    assert [p["image"] for p in predictions] == images
    for p in predictions:
        assert p["tiles"] == windows[p["image"]]  # predict's tiles are evaluate's
        assert (p["width"], p["height"]) == SIZE
        for det in p["detections"]:  # boxes in the image's pixels, beyond any one tile
            x1, y1, x2, y2 = det["box"]
            assert 0 <= x1 < x2 <= SIZE[0] and 0 <= y1 < y2 <= SIZE[1]
    boxes = np.array([d["box"] for p in predictions for d in p["detections"]])
    assert len(boxes) and boxes[:, 2].max() > RULE.size  # from tiles right of the first

    bench = cli("bench", artifact, "--backend", "ort-cpu", "--batch", "1", "--mode", "e2e",
                "--threads", "1", "--min-time", "0.3", "--json", tmp_path / "b.json")
    assert bench.returncode == 0, bench.stderr
    text = (tmp_path / "b.json").read_text()
    assert json.loads(text)["rows"][0]["p50_ms"] > 0 and "run_tiles" in text


@pytest.mark.parametrize("section, words", [
    ("tile: {size: 8}", "at least 16"),
    ("tile: {size: 128, stride: 3}", "stride"),
    ("tile: {overlap: 0.95}", "overlap"),
])
def test_tile_section_is_validated(tmp_path: Path, section: str, words: str) -> None:
    from edgetl.errors import RecipeError
    from edgetl.recipe import load_recipe

    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"task: detection\n{section}\n")
    with pytest.raises(RecipeError, match=words):
        load_recipe(recipe)
    recipe.write_text("task: detection\ntile: {size: auto}\n")
    assert load_recipe(recipe).tile.size == "auto"


def test_tile_section_refused_where_the_task_has_no_tiles(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("task: semantic\ntile: {size: 128}\n")
    done = cli("finetune", recipe, "--data", tmp_path, "--out", tmp_path / "run")
    assert done.returncode == 2 and "tile applies to" in done.stderr, done.stderr


def test_verify_golden_test_covers_the_tiles(tmp_path: Path) -> None:
    """The tile check of verify, in process on real files and both real transforms: equal
    windows pass and every tile enters the golden test; another rule in the artifact fails."""
    from edgetl.data.transforms import geometry_transform, normalize_transform
    from edgetl.spec import PreprocessSpec
    from edgetl.verify.checks import GoldenAccumulator
    from edgetl.verify.tiles import TileGolden

    data = make_small_objects(tmp_path / "voc", 2)
    paths = sorted(str(p) for p in (data / "images").glob("*.png"))
    spec = PreprocessSpec(input_size=(224, 224)).for_dense((96, 96)).with_overrides(tile=RULE)
    halves = geometry_transform(spec), normalize_transform(spec)
    golden = GoldenAccumulator(spec, spec)
    tiles = TileGolden(spec, spec, golden)
    for path in paths:
        tiles.add(path, *halves)
    check = tiles.result()
    assert check.passed and len(golden.rows) == 2 * 5
    assert check.details["images"][0]["windows"] == [list(w) for w in image_windows(*SIZE, RULE)]
    assert golden.result().passed

    other = spec.with_overrides(tile=TileRule(128, 0.0))
    tiles = TileGolden(other, spec, GoldenAccumulator(other, spec))
    tiles.add(paths[0], *halves)
    assert not tiles.result().passed and "other windows" in tiles.result().summary
