"""Reliability of the data side (issue 26): readers never misread, through the real CLI.

Each test writes small real files, runs `edgetl` as a user would, and checks the exit code,
the last line of stderr, and the files left behind.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import annotgen as ag
import numpy as np
import pytest
from reliability_common import edgetl, last_line


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(26)


def split_rows(path: Path) -> dict[str, list[dict]]:
    rows: dict[str, list[dict]] = {}
    with open(path, newline="") as handle:
        for row in csv.DictReader(handle):
            rows.setdefault(Path(row["path"]).name, []).append(row)
    return rows


# ------------------------------------------------- item 1: an image that lost an object is out


def test_voc_image_with_a_zero_area_box_is_left_out_of_the_split(tmp_path: Path, rng) -> None:
    data = tmp_path / "voc"
    for i in range(6):
        ag.image(data / f"raccoon-{i}.jpg", rng, (64, 48))
        ag.voc_xml(data / f"raccoon-{i}.xml", f"raccoon-{i}.jpg", (64, 48),
                   [("raccoon", (5, 5, 30, 30), 0)])
    # raccoon-3 has a real raccoon and a zero-area box: kept, it would teach the first as
    # background if the second were only dropped
    ag.voc_xml(data / "raccoon-3.xml", "raccoon-3.jpg", (64, 48),
               [("raccoon", (5, 5, 30, 30), 0), ("raccoon", (40, 10, 40, 20), 0)])
    ag.image(data / "empty.jpg", rng, (64, 48))  # an XML without objects: background
    ag.voc_xml(data / "empty.xml", "empty.jpg", (64, 48), [])
    out = tmp_path / "split.csv"
    result = edgetl("data", "split", data, "--task", "detection", "--out", out,
                    "--val", "0.2", "--test", "0.2")
    assert result.returncode == 0, result.stderr
    rows = split_rows(out)
    assert "raccoon-3.jpg" not in rows
    assert sorted(rows) == ["empty.jpg", *(f"raccoon-{i}.jpg" for i in (0, 1, 2, 4, 5))]
    assert rows["empty.jpg"][0]["label"] == ""  # the format's background image stays
    assert "image left out: raccoon-3.jpg" in result.stderr
    assert "box dropped" in result.stderr and "DataSet.skipped" not in result.stderr
    inspect = edgetl("data", "inspect", data, "--task", "detection")
    assert inspect.returncode == 0, inspect.stderr
    assert "image left out: raccoon-3.jpg" in inspect.stdout


def test_coco_unknown_category_leaves_its_image_out(tmp_path: Path, rng) -> None:
    images, anns = [], []
    for i in range(5):
        ag.image(tmp_path / "coco" / f"{i}.png", rng, (64, 48))
        images.append({"id": i + 1, "file_name": f"{i}.png", "width": 64, "height": 48})
        anns.append({"id": len(anns) + 1, "image_id": i + 1, "category_id": 1,
                     "bbox": [4, 4, 20, 20]})
    anns.append({"id": 99, "image_id": 3, "category_id": 7, "bbox": [30, 10, 10, 10]})
    ag.image(tmp_path / "coco" / "bare.png", rng, (64, 48))  # no annotations: background
    images.append({"id": 9, "file_name": "bare.png", "width": 64, "height": 48})
    coco = ag.coco_json(tmp_path / "coco" / "instances.json", images, anns,
                        [{"id": 1, "name": "raccoon"}])
    out = tmp_path / "split.csv"
    result = edgetl("data", "split", f"coco:{coco}", "--task", "detection", "--out", out,
                    "--val", "0.2", "--test", "0.2")
    assert result.returncode == 0, result.stderr
    rows = split_rows(out)
    assert "2.png" not in rows and sorted(rows) == ["0.png", "1.png", "3.png", "4.png",
                                                    "bare.png"]
    assert "category_id 7 is not among the categories; image left out: 2.png" in result.stderr


def test_a_set_whose_every_image_lost_an_object_is_exit_2(tmp_path: Path, rng) -> None:
    data = tmp_path / "voc"
    ag.image(data / "a.jpg", rng, (64, 48))
    ag.voc_xml(data / "a.xml", "a.jpg", (64, 48), [("cat", (5, 5, 5, 30), 0)])
    out = tmp_path / "split.csv"
    out.write_text("kept\n")
    result = edgetl("data", "split", data, "--task", "detection", "--out", out)
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert line.startswith("error: ") and "no usable image" in line
    assert "image left out: a.jpg" in line
    assert out.read_text() == "kept\n"  # nothing written over


# ------------------------------------------------- item 10: a full 8-bit id map


def test_full_8_bit_id_map_is_left_out_and_says_16_bit(tmp_path: Path, rng) -> None:
    data = tmp_path / "cells"
    (data / "classes.txt").parent.mkdir(parents=True)
    (data / "classes.txt").write_text("nucleus\n")
    for name in ("ok", "full"):
        ag.image(data / "images" / f"{name}.png", rng, (64, 48))
    ok = np.zeros((48, 64), dtype=np.int64)
    ok[2:8, 2:8], ok[20:30, 20:30] = 1, 2
    ag.id_png(data / "masks" / "ok.png", ok)
    # 300 instances written as 8 bits: ids past 255 wrapped onto 0..44
    full = (np.arange(48 * 64).reshape(48, 64) // 10 % 300 + 1) % 256
    ag.id_png(data / "masks" / "full.png", full)
    result = edgetl("data", "inspect", data, "--task", "instance")
    assert result.returncode == 0, result.stderr
    assert "id map full" in result.stderr and "16-bit PNG" in result.stderr
    assert "image left out: full.png" in result.stderr
    report_json = tmp_path / "r.json"
    edgetl("data", "inspect", data, "--task", "instance", "--json", report_json)
    report = json.loads(report_json.read_text())
    assert report["n_images"] == 1 and report["problem_counts"] == {"id map full": 1}


# ------------------------------------------------- item 9: an unquoted comma in a CSV label


def test_manifest_row_with_more_fields_than_the_header_names_its_line(tmp_path: Path,
                                                                      rng) -> None:
    for i in range(4):
        ag.image(tmp_path / f"{i}.jpg", rng, (48, 48))
    manifest = tmp_path / "labels.csv"
    manifest.write_text("path,label\n0.jpg,street\n1.jpg,street, urban\n2.jpg,field\n"
                        "3.jpg,field\n")
    out = tmp_path / "split.csv"
    out.write_text("path,label,group,split\n")
    for command in (("data", "inspect", manifest),
                    ("data", "split", manifest, "--out", out)):
        result = edgetl(*command)
        assert result.returncode == 2, result.stderr
        line = last_line(result.stderr)
        assert line.startswith("error: ") and f"manifest {manifest} line 3" in line
        assert "3 fields where the header has 2" in line and "' urban'" in line
        assert "quote a value that holds a comma" in line
    assert out.read_text() == "path,label,group,split\n"  # nothing written over
    manifest.write_text('path,label\n0.jpg,street\n1.jpg,"street, urban"\n2.jpg,field\n'
                        "3.jpg,field\n")
    report = tmp_path / "r.json"
    result = edgetl("data", "inspect", manifest, "--json", report)
    assert result.returncode == 0, result.stderr
    assert json.loads(report.read_text())["classes"]["street, urban"] == 1


def test_box_csv_row_with_more_fields_than_the_header_names_its_line(tmp_path: Path,
                                                                     rng) -> None:
    ag.image(tmp_path / "a.jpg", rng, (64, 48))
    boxes = tmp_path / "boxes.csv"
    boxes.write_text("path,xmin,ymin,xmax,ymax,label\na.jpg,1,1,20,20,street sign\n"
                     "a.jpg,5,5,30,30,traffic, light\n")
    result = edgetl("data", "inspect", f"csv:{boxes}", "--task", "detection")
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert f"box CSV {boxes} line 3: 7 fields where the header has 6" in line


# ------------------------------------------------- item 10: reasons a user can read


def test_inspect_reasons_never_print_an_in_memory_buffer(tmp_path: Path, rng) -> None:
    for label in ("a", "b"):
        for i in range(3):
            ag.image(tmp_path / label / f"{i}.jpg", rng, (48, 48))
    (tmp_path / "a" / "notes.jpg").write_text("not an image\n")
    report = tmp_path / "r.json"
    result = edgetl("data", "inspect", tmp_path, "--json", report)
    assert result.returncode == 0, result.stderr
    assert "BytesIO" not in result.stdout + result.stderr + report.read_text()
    reasons = {Path(e["path"]).name: e["reason"] for e in json.loads(report.read_text())
               ["unreadable"]}
    assert reasons == {"notes.jpg": "cannot decode (not an image format PIL recognises)"}


# ------------------------------------------------- item 5: data without splits is no test split


def test_evaluate_artifact_on_data_without_splits_refuses_or_takes_a_split(
        fixture_run: Path, tmp_path: Path) -> None:
    model = tmp_path / "model.onnx"
    result = edgetl("export", fixture_run, "--format", "onnx", "--out", model)
    assert result.returncode == 0, result.stderr
    with open(fixture_run / "split.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    data = tmp_path / "flat"  # the run's images, train ones included, in class folders
    for row in rows:
        (data / row["label"]).mkdir(parents=True, exist_ok=True)
        (data / row["label"] / Path(row["path"]).name).symlink_to(row["path"])
    report = tmp_path / "eval.json"
    report.write_text("{}\n")
    result = edgetl("evaluate", model, "--data", data, "--json", report)
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert line.startswith("error: ") and "has no train/val/test split" in line
    assert f"--split-from {fixture_run} to score the test split" in line
    assert "--split all" in line
    assert report.read_text() == "{}\n"  # nothing written over
    result = edgetl("evaluate", model, "--split-from", fixture_run, "--json", report)
    assert result.returncode == 0, result.stderr
    scored = json.loads(report.read_text())
    assert scored["split"] == "test" and scored["data"] == str(fixture_run / "split.csv")
    assert scored["n"] == sum(r["split"] == "test" for r in rows)
    result = edgetl("evaluate", model, "--data", data, "--split", "all", "--json", report)
    assert result.returncode == 0, result.stderr
    scored = json.loads(report.read_text())
    assert scored["split"] == "all" and scored["n"] == len(rows)
    result = edgetl("evaluate", model, "--data", data, "--split-from", fixture_run)
    assert result.returncode == 2 and "pass one of them" in last_line(result.stderr)


# ------------------------------------------------- item 8: one picture under two labels


def test_finetune_warns_about_one_image_in_two_class_folders(tmp_path: Path, rng) -> None:
    from reliability_common import tiny_recipe

    data = tmp_path / "tree"
    for label in ("street", "field"):
        for i in range(8):
            ag.image(data / label / f"{label}-{i}.jpg", rng, (64, 64))
    (data / "field" / "twin.jpg").symlink_to(data / "street" / "street-0.jpg")
    recipe = tiny_recipe(tmp_path / "r.yaml", data)
    run = tmp_path / "run"
    result = edgetl("finetune", recipe, "--out", run, "--set", "data.val_fraction=0.25",
                    "--set", "data.test_fraction=0.25")
    assert result.returncode == 0, result.stderr
    assert "1 image(s) carry two labels: identical files" in result.stderr
    assert f"{data / 'street' / 'street-0.jpg'} as 'street'" in result.stderr
    assert f"{data / 'field' / 'twin.jpg'} as 'field'" in result.stderr
    leakage = json.loads((run / "leakage.json").read_text())
    [conflict] = leakage["label_conflicts"]
    assert sorted(conflict["labels"]) == ["field", "street"] and conflict["exact"]
    refused = tmp_path / "refused"
    result = edgetl("finetune", recipe, "--out", refused, "--set",
                    "data.label_conflicts=refuse")
    assert result.returncode == 2
    line = last_line(result.stderr)
    assert line.startswith("error: 1 image(s) carry two labels")
    assert "data.label_conflicts: warn" in line
    assert not (refused / "summary.json").exists() and not (refused / "best").exists()


# ------------------------------------------------- item 4: EXIF orientation


def sideways_jpeg(path: Path, rng, box: tuple[int, int, int, int]) -> np.ndarray:
    """A 64x48 upright picture with a red square at `box`, stored as 48x64 pixels plus the
    EXIF Orientation 6 a phone writes; returns the upright pixels."""
    import imagegen
    from PIL import Image

    upright = np.asarray(imagegen.textured_image(rng, (64, 48)).convert("RGB")).copy()
    upright[box[1]:box[3], box[0]:box[2]] = (230, 20, 20)
    stored = Image.fromarray(upright).transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    stored.save(path, quality=95, exif=exif)
    return upright


def test_exif_rotated_photo_is_read_upright_with_its_boxes(tmp_path: Path, rng) -> None:
    from PIL import Image

    from edgetl.artifact.reference import decode_image
    from edgetl.data.transforms import load_uint8_tensor
    from edgetl.spec import PreprocessSpec

    data = tmp_path / "voc"
    box = (40, 10, 60, 30)  # drawn on the upright 64x48 picture: outside the stored 48 px width
    upright = sideways_jpeg(data / "phone.jpg", rng, box)
    with Image.open(data / "phone.jpg") as img:
        assert img.size == (48, 64)  # stored sideways
    ag.voc_xml(data / "phone.xml", "phone.jpg", (64, 48), [("raccoon", box, 0)])
    for i in range(4):
        ag.image(data / f"plain-{i}.jpg", rng, (64, 48))
        ag.voc_xml(data / f"plain-{i}.xml", f"plain-{i}.jpg", (64, 48),
                   [("raccoon", (5, 5, 25, 25), 0)])
    report = tmp_path / "inspect.json"
    result = edgetl("data", "inspect", data, "--task", "detection", "--json", report)
    assert result.returncode == 0, result.stderr
    found = json.loads(report.read_text())
    assert found["exif_rotated_images"] == {"count": 1, "paths": [str(data / "phone.jpg")]}
    assert found["invalid_boxes"] == [] and found["problem_counts"] == {}
    assert "1 image(s) carry an EXIF rotation" in result.stdout + result.stderr
    out = tmp_path / "split.csv"
    result = edgetl("data", "split", data, "--task", "detection", "--out", out)
    assert result.returncode == 0, result.stderr
    [row] = split_rows(out)["phone.jpg"]
    assert [float(row[k]) for k in ("xmin", "ymin", "xmax", "ymax")] == list(box)
    assert (row["width"], row["height"]) == ("64", "48")
    # training's decode and the deployment reference both see the upright picture
    spec = PreprocessSpec(input_size=(64, 64), resize_mode="exact", resize_size=(64, 64),
                          crop_size=None, geometry="letterbox")
    reference = np.asarray(decode_image(data / "phone.jpg", "rgb"))
    tensor = load_uint8_tensor(str(data / "phone.jpg"), spec).numpy().transpose(1, 2, 0)
    assert reference.shape == tensor.shape == (48, 64, 3)
    assert np.array_equal(reference, tensor)
    error = np.abs(reference.astype(int) - upright.astype(int)).mean()  # JPEG noise only
    turned = np.abs(reference[::-1, ::-1].astype(int) - upright.astype(int)).mean()
    assert error < 12 and turned > 3 * error
    square = reference[box[1] + 2:box[3] - 2, box[0] + 2:box[2] - 2].reshape(-1, 3).mean(0)
    assert square[0] > 200 and square[1] < 60  # the red square where the box says
