"""Issue 16, item 2: 16-bit images are read by their real range (recorded in the spec) or
refused with one line; never clipped. Training, the torch/numpy golden pair, inspect, predict."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from reliability_common import edgetl, last_line, tiny_recipe


@pytest.fixture(scope="module")
def deep_images(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A manifest of 16-bit grey PNGs whose values are the 8-bit images' times 257."""
    from fixtures_runs import make_image_list

    root = tmp_path_factory.mktemp("deep")
    source = make_image_list(root / "eight", {"train": 4, "val": 2, "test": 2}, seed=11)
    lines = source.read_text().splitlines()
    out = [lines[0]]
    for row in lines[1:]:
        path = row.split(",")[0]
        grey = np.asarray(Image.open(path).convert("L"), dtype=np.uint16)
        deep = Path(path + ".16.png")
        Image.fromarray(grey * 257).save(deep)
        assert Image.open(deep).mode == "I;16"
        out.append(row.replace(path, str(deep)))
    manifest = root / "deep.csv"
    manifest.write_text("\n".join(out) + "\n")
    return manifest


def test_16bit_images_are_refused_unless_the_recipe_scales_them(tmp_path: Path,
                                                                deep_images: Path) -> None:
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", deep_images,
                         preprocess={"color_mode": "grayscale3"})
    refused = edgetl("finetune", recipe, "--out", run)
    assert refused.returncode == 2
    line = last_line(refused.stderr)
    assert "is a 16-bit image (PIL mode I;16)" in line and "high_bit_depth: scale" in line
    scaled = edgetl("finetune", recipe, "--out", run, "--set", "preprocess.high_bit_depth=scale")
    assert scaled.returncode == 0, scaled.stderr  # the failed start did not block it
    record = json.loads((run / "best" / "checkpoint.json").read_text())
    assert record["spec"]["high_bit_depth"] == "scale"


def test_16bit_read_by_real_range_identically_in_torch_and_reference(deep_images: Path) -> None:
    """Both pipelines read 16-bit grey as the 8-bit image it was made from (v * 257), exactly."""
    from edgetl.artifact.reference import pixels_uint8
    from edgetl.data.transforms import geometry_transform, load_image
    from edgetl.spec import PreprocessSpec

    spec = PreprocessSpec.from_crop_pct(64, 0.875, "bicubic", (0.5,) * 3, (0.25,) * 3,
                                        color_mode="grayscale3")
    scaled = spec.with_overrides(high_bit_depth="scale")
    assert scaled.fingerprint() != spec.fingerprint()
    assert "high_bit_depth" not in spec.to_dict()  # old specs keep their fingerprint
    for row in deep_images.read_text().splitlines()[1:4]:
        deep = row.split(",")[0]
        eight = deep[: -len(".16.png")]
        ref = pixels_uint8(deep, scaled)
        torch_side = geometry_transform(scaled)(load_image(deep, scaled)).permute(1, 2, 0).numpy()
        assert np.array_equal(ref, torch_side)
        assert np.array_equal(ref, pixels_uint8(eight, spec))  # not clipped: the real values
        assert ref.mean() < 200


def test_inspect_and_predict_on_16bit_images(artifacts: dict[str, Path], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    for label in ("dark", "light"):
        for i in range(3):
            folder = tmp_path / "data" / label
            folder.mkdir(parents=True, exist_ok=True)
            values = rng.integers(0, 65535, (40, 50), dtype=np.uint16)
            Image.fromarray(values).save(folder / f"{i}.png")
    proc = edgetl("data", "inspect", tmp_path / "data", "--json", tmp_path / "r.json")
    assert proc.returncode == 0, proc.stderr
    assert "warning: 6 high-bit-depth image(s) (6 I;16)" in proc.stderr
    assert json.loads((tmp_path / "r.json").read_text())["high_bit_depth_images"] == 6
    image = tmp_path / "data" / "dark" / "0.png"
    proc = edgetl("predict", artifacts["onnx"], image)
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1
    assert f"{image} is a 16-bit image (PIL mode I;16)" in last_line(proc.stderr)
