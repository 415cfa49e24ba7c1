"""Detection data: VOC, COCO, YOLO and box-CSV readers, bad input, splits, split files, CLI.

Every test writes real images and annotation files in the format's own layout and checks the
exact boxes, labels, crowd flags, splits and classes that come back.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import annotgen as ag
import imagegen
import numpy as np
import pytest

from edgetl.data.detection import load_detection, sniff_task
from edgetl.data.detection import problems as P
from edgetl.data.detection.splitfile import write_split_file
from edgetl.data.samples import NO_CLASS, DataWarning
from edgetl.data.sources import load_data
from edgetl.data.split import leakage_report, make_splits, strata_matrix
from edgetl.data.targets import BoxTarget
from edgetl.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(77)


def quiet_load(source: str, task: str = "detection", **kwargs):
    """Load and fail on any DataWarning: a clean source must load silently."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)
        return load_detection(source, task, **kwargs)


def load_warned(source: str, task: str = "detection", **kwargs):
    """Load expecting exactly one DataWarning (the summary of every problem)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_detection(source, task, **kwargs)
    data = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(data) == 1, [str(w.message) for w in data]
    return ds, str(data[0].message)


def by_name(ds) -> dict:
    return {Path(s.path).name: s for s in ds.samples}


def kinds(ds) -> dict[str, list[str]]:
    out: dict[str, list[str]] = defaultdict(list)
    for path, reason in ds.skipped:
        out[Path(path.split(" ")[0]).name].append(P.kind_of(reason))
    return dict(out)


# ---------------------------------------------------------------- Pascal VOC


def test_voc_folder_pairs_by_filename_then_stem(tmp_path: Path, rng) -> None:
    ag.image(tmp_path / "images" / "a.jpg", rng, (64, 48))
    ag.image(tmp_path / "images" / "b.png", rng, (80, 60))
    ag.image(tmp_path / "images" / "c.jpg", rng, (64, 48))
    ag.voc_xml(tmp_path / "annotations" / "a.xml", "a.jpg", (64, 48),
               [("cat", (4, 5, 30, 40), 0), ("dog", (10, 10, 20, 20), 1)])
    ag.voc_xml(tmp_path / "annotations" / "b.xml", "b.jpg", (80, 60),  # wrong extension
               [("dog", (1.5, 2.5, 70, 50), 0)])
    ag.voc_xml(tmp_path / "annotations" / "c.xml", "c.jpg", (64, 48), [])
    ds = quiet_load(str(tmp_path))
    assert ds.origin == f"voc:{tmp_path}" and ds.task == "detection"
    assert ds.classes == ["cat", "dog"] and ds.skipped == []
    s = by_name(ds)
    assert s["a.jpg"].target == BoxTarget(boxes=((4, 5, 30, 40), (10, 10, 20, 20)),
                                          labels=("cat", "dog"), crowd=(False, True),
                                          image_size=(48, 64))
    assert s["a.jpg"].label == "cat"  # the difficult dog is crowd: not a class of the image
    assert s["b.png"].target.boxes == ((1.5, 2.5, 70.0, 50.0),)
    assert s["b.png"].label == "dog" and s["b.png"].target.image_size == (60, 80)
    assert s["c.jpg"].target.boxes == () and s["c.jpg"].label == NO_CLASS
    assert all(x.split is None and x.group is None for x in ds.samples)


def test_voc_devkit_splits_and_class_order(tmp_path: Path, rng) -> None:
    for i in range(1, 7):
        ident = f"{i:06d}"
        ag.image(tmp_path / "JPEGImages" / f"{ident}.jpg", rng, (64, 48))
        ag.voc_xml(tmp_path / "Annotations" / f"{ident}.xml", f"{ident}.jpg", (64, 48),
                   [("car" if i % 2 else "person", (2, 2, 20, 20), 0)])
    lists = tmp_path / "ImageSets" / "Main"
    lists.mkdir(parents=True)
    (lists / "train.txt").write_text("000001\n000002\n000003\n")
    (lists / "val.txt").write_text("000004\n")
    (lists / "test.txt").write_text("000005\n000006\n")
    (tmp_path / "classes.txt").write_text("person\ncar\nbike\n")
    ds = quiet_load(f"voc:{tmp_path}")
    assert ds.classes == ["person", "car", "bike"]  # classes.txt order, unused class kept
    assert {Path(s.path).stem: s.split for s in ds.samples} == {
        "000001": "train", "000002": "train", "000003": "train", "000004": "val",
        "000005": "test", "000006": "test"}
    assert ds.counts() == {"person": 3, "car": 3, "bike": 0}


def test_voc_bad_input_is_listed_and_one_warning_sums_it_up(tmp_path: Path, rng) -> None:
    images, xml = tmp_path / "images", tmp_path / "xml"
    (tmp_path / "classes.txt").write_text("cat\ndog\n")
    ag.image(images / "ok.png", rng, (64, 48))
    ag.voc_xml(xml / "ok.xml", "ok.png", (64, 48), [
        ("cat", (50, 30, 80, 60), 0),   # reaches outside: clipped
        ("dog", (2, 3, 12, 13), 0)])
    ag.image(images / "lost.png", rng, (64, 48))  # objects lost: the image is left out
    ag.voc_xml(xml / "lost.xml", "lost.png", (64, 48), [
        ("cat", (70, 10, 90, 20), 0),   # entirely outside: nothing left
        ("cow", (1, 1, 5, 5), 0),       # not in classes.txt
        ("dog", (5, 5, 5, 9), 0),       # zero width
        ("dog", (2, 3, 12, 13), 0)])
    ag.voc_xml(xml / "ghost.xml", "ghost.jpg", (64, 48), [("cat", (1, 1, 9, 9), 0)])
    ag.image(images / "empty.png", rng, (64, 48))
    (xml / "empty.xml").write_text("")
    imagegen.write_truncated_jpeg(images / "broken.jpg", rng, (64, 48))
    ag.voc_xml(xml / "broken.xml", "broken.jpg", (64, 48), [("cat", (1, 1, 9, 9), 0)])
    ag.image(images / "lonely.png", rng, (64, 48))
    ag.voc_xml(xml / "size.xml", "size.png", (100, 100), [("dog", (1, 1, 9, 9), 0)])
    ag.image(images / "size.png", rng, (64, 48))
    ds, message = load_warned(str(tmp_path))
    assert sorted(by_name(ds)) == ["ok.png", "size.png"]
    assert by_name(ds)["ok.png"].target.boxes == ((50, 30, 64, 48), (2, 3, 12, 13))
    assert by_name(ds)["ok.png"].target.labels == ("cat", "dog")
    assert kinds(ds) == {
        "ok.xml": [P.BOX_CLIPPED],
        "lost.xml": [P.BOX_DROPPED, P.UNKNOWN_CLASS, P.BOX_DROPPED],
        "ghost.xml": [P.IMAGE_MISSING], "empty.xml": [P.BAD_ANNOTATION],
        "size.xml": [P.IMAGE_SIZE], "lonely.png": [P.NO_ANNOTATION],
        "broken.jpg": ["cannot decode"]}
    assert (str(xml / "ok.xml"), f"{P.BOX_CLIPPED}: cat [50, 30, 80, 60] outside the 64x48 "
            "image: clipped to [50, 30, 64, 48]") in ds.skipped
    assert (str(xml / "lost.xml"), f"{P.BOX_DROPPED}: dog [5, 5, 5, 9]: zero or negative "
            "width/height; image left out: lost.png") in ds.skipped
    # the empty XML is one problem that names its image, not a second "no annotation"
    assert (str(xml / "empty.xml"), f"{P.BAD_ANNOTATION}: empty file; image left out: "
            "empty.png") in ds.skipped
    assert f"{len(ds.skipped)} annotation or image problem(s)" in message
    assert "2 box dropped" in message and "1 no annotation" in message
    assert "DataSet.skipped" not in message and "edgetl data inspect" in message


def test_voc_without_usable_data_exits_2_with_one_line(tmp_path: Path, rng) -> None:
    ag.image(tmp_path / "a.png", rng, (64, 48))
    ag.voc_xml(tmp_path / "a.xml", "a.png", (64, 48), [("cat", (80, 80, 90, 90), 0)])
    result = run_cli("data", "inspect", str(tmp_path), "--task", "detection")
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[-1].startswith("error: ") and "no usable image" in lines[-1]
    assert "image left out: a.png" in lines[-1]
    assert "Traceback" not in result.stderr
    ag.voc_xml(tmp_path / "a.xml", "gone.png", (64, 48), [("cat", (1, 1, 9, 9), 0)])
    (tmp_path / "a.png").unlink()
    with pytest.raises(DataError, match="no usable image"), warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        load_detection(str(tmp_path), "detection")


# ---------------------------------------------------------------- COCO


def _coco_split(folder: Path, rng, names: list[str], boxes: list[list[dict]]) -> None:
    images = []
    anns = []
    for i, (name, objs) in enumerate(zip(names, boxes, strict=True), start=1):
        ag.image(folder / name, rng, (64, 48))
        images.append({"id": i, "file_name": name, "width": 64, "height": 48})
        anns += [{"id": len(anns) + 1, "image_id": i, **o} for o in objs]
    categories = [{"id": 0, "name": "animals", "supercategory": "none"},
                  {"id": 1, "name": "cat", "supercategory": "animals"},
                  {"id": 2, "name": "dog", "supercategory": "animals"}]
    ag.coco_json(folder / "_annotations.coco.json", images, anns, categories)


def test_coco_per_split_files_as_labelling_tools_export(tmp_path: Path, rng) -> None:
    cat = {"category_id": 1, "bbox": [4, 5, 26, 35], "iscrowd": 0, "area": 910}
    dog = {"category_id": 2, "bbox": [10.5, 10, 9.5, 10], "iscrowd": 1, "area": 95}
    _coco_split(tmp_path / "train", rng, ["t1.jpg", "t2.jpg"], [[cat, dog], []])
    _coco_split(tmp_path / "valid", rng, ["v1.jpg"], [[dog]])
    _coco_split(tmp_path / "test", rng, ["e1.jpg"], [[cat]])
    ds = quiet_load(str(tmp_path))
    assert ds.origin == f"coco:{tmp_path}" and ds.classes == ["cat", "dog"]
    assert any("'animals'" in n for n in ds.notes)  # the supercategory is no class
    s = by_name(ds)
    assert {k: v.split for k, v in s.items()} == {"t1.jpg": "train", "t2.jpg": "train",
                                                 "v1.jpg": "val", "e1.jpg": "test"}
    assert s["t1.jpg"].target == BoxTarget(boxes=((4, 5, 30, 40), (10.5, 10, 20, 20)),
                                           labels=("cat", "dog"), crowd=(False, True),
                                           image_size=(48, 64))
    assert s["v1.jpg"].label == NO_CLASS  # its only box is crowd
    assert s["t2.jpg"].target.boxes == ()


def test_coco_bad_references_are_listed(tmp_path: Path, rng) -> None:
    ag.image(tmp_path / "images" / "a.png", rng, (64, 48))
    ag.image(tmp_path / "images" / "b.png", rng, (64, 48))
    images = [{"id": 1, "file_name": "a.png", "width": 64, "height": 48},
              {"id": 2, "file_name": "missing.png", "width": 64, "height": 48},
              {"id": 3, "file_name": "b.png", "width": 64, "height": 48}]
    anns = [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [40, 30, 40, 30]},
            {"id": 2, "image_id": 99, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 3, "image_id": 3, "category_id": 7, "bbox": [1, 1, 5, 5]},
            {"id": 4, "image_id": 2, "category_id": 1, "bbox": [1, 1, 5, 5]},
            {"id": 5, "image_id": 3, "category_id": 1, "bbox": [20, 20, 9, 9]}]
    coco = ag.coco_json(tmp_path / "annotations" / "instances.json", images, anns,
                        [{"id": 1, "name": "cat"}])
    ds, message = load_warned(f"coco:{coco}")
    # found from annotations/..; b.png lost its category_id 7 object: left out, not kept
    # with its cat alone (the other object would be taught as background)
    assert [Path(s.path).name for s in ds.samples] == ["a.png"]
    assert ds.samples[0].target.boxes == ((40, 30, 64, 48),)
    got = sorted(P.kind_of(r) for _, r in ds.skipped)
    assert got == sorted([P.BOX_CLIPPED, P.IMAGE_MISSING, P.UNKNOWN_CLASS, P.UNKNOWN_IMAGE,
                          P.UNKNOWN_IMAGE])
    assert "image_id 99" in " ".join(r for _, r in ds.skipped)
    assert (f"{coco} annotation 3", f"{P.UNKNOWN_CLASS}: category_id 7 is not among the "
            "categories; image left out: b.png") in ds.skipped
    assert "5 annotation or image problem(s)" in message


def test_coco_empty_or_broken_file_is_a_data_error(tmp_path: Path) -> None:
    empty = tmp_path / "instances.json"
    empty.write_text("")
    with pytest.raises(DataError, match="empty file"):
        load_detection(f"coco:{empty}", "detection")
    empty.write_text('{"images": [], "annotations": [')
    with pytest.raises(DataError, match="not valid JSON"):
        load_detection(f"coco:{empty}", "detection")


def test_coco_malformed_fields_are_listed_or_one_error(tmp_path: Path, rng) -> None:
    ag.image(tmp_path / "a.png", rng, (64, 48))
    ag.image(tmp_path / "c.png", rng, (64, 48))
    cats = [{"id": 1, "name": "cat"}]
    coco = ag.coco_json(tmp_path / "odd.json", [{"id": [1], "file_name": "a.png"},
                                                {"id": 2, "file_name": "a.png"},
                                                {"id": 3, "file_name": "c.png"}], [
        {"id": 1, "image_id": [1], "category_id": 1, "bbox": [1, 1, 2, 2]},
        {"id": 2, "image_id": 3, "category_id": 1, "bbox": "1,2,3,4",
         "segmentation": {"size": "ab", "counts": "x"}},
        {"id": 3, "image_id": 2, "category_id": 1, "segmentation": [[1, 1, 30, 1, 30, 30]]}],
        cats)
    ds, _ = load_warned(str(coco))
    assert [Path(s.path).name for s in ds.samples] == ["a.png"]  # c.png lost its object
    assert ds.samples[0].target.boxes == ((1, 1, 30, 30),)  # from the polygon: no bbox
    assert [P.kind_of(r) for _, r in ds.skipped] == [P.BAD_ANNOTATION, P.UNKNOWN_IMAGE,
                                                     P.MASK_DROPPED]
    ag.coco_json(coco, [{"id": 1, "file_name": "a.png"}], [], [{"id": "one", "name": "cat"}])
    with pytest.raises(DataError, match="category id 'one' is not a whole number"):
        load_detection(str(coco), "detection")


def test_coco_split_in_file_names_under_annotations(tmp_path: Path, rng) -> None:
    for split in ("train", "val"):
        ag.image(tmp_path / f"{split}2017" / f"{split}.png", rng, (64, 48))
        ag.coco_json(tmp_path / "annotations" / f"instances_{split}2017.json",
                     [{"id": 5, "file_name": f"{split}.png"}],
                     [{"id": 1, "image_id": 5, "category_id": 3, "bbox": [1, 2, 3, 4]}],
                     [{"id": 3, "name": "fox"}])
    ds = quiet_load(str(tmp_path))
    assert {Path(s.path).name: s.split for s in ds.samples} == {"train.png": "train",
                                                               "val.png": "val"}
    assert ds.samples[0].target.boxes == ((1, 2, 4, 6),)


# ---------------------------------------------------------------- YOLO


def test_yolo_split_folders_and_normalised_boxes(tmp_path: Path, rng) -> None:
    (tmp_path / "data.yaml").write_text("names:\n  0: cat\n  1: dog\nnc: 2\n")
    for split in ("train", "valid"):
        ag.image(tmp_path / split / "images" / "a.jpg", rng, (64, 48))
        ag.yolo_txt(tmp_path / split / "labels" / "a.txt",
                    ["0 0.5 0.5 0.25 0.5", "1 0.125 0.25 0.25 0.5"])
    ag.image(tmp_path / "train" / "images" / "bare.jpg", rng, (64, 48))  # no label file
    ds = quiet_load(f"yolo:{tmp_path}")
    assert ds.classes == ["cat", "dog"]
    expected = BoxTarget(boxes=((24, 12, 40, 36), (0, 0, 16, 24)), labels=("cat", "dog"),
                         image_size=(48, 64))
    assert [(s.split, s.target) for s in ds.samples if Path(s.path).name == "a.jpg"] == \
        [("train", expected), ("val", expected)]
    bare = next(s for s in ds.samples if Path(s.path).name == "bare.jpg")
    assert bare.target.boxes == () and bare.split == "train"
    assert any("1 image(s) without a label file" in n for n in ds.notes)


def test_yolo_bad_lines_and_images_train_layout(tmp_path: Path, rng) -> None:
    (tmp_path / "classes.txt").write_text("cat\n")
    ag.image(tmp_path / "images" / "train" / "a.png", rng, (64, 48))
    ag.image(tmp_path / "images" / "val" / "b.png", rng, (64, 48))
    ag.image(tmp_path / "images" / "train" / "c.png", rng, (64, 48))
    ag.yolo_txt(tmp_path / "labels" / "train" / "a.txt", [
        "0 0.9 0.5 0.4 0.25"])     # reaches past the right edge: clipped
    ag.yolo_txt(tmp_path / "labels" / "train" / "c.txt", [
        "0 0.5 0.5 0.25",          # four fields
        "5 0.5 0.5 0.1 0.1",       # no class 5
        "0 0.5 0.5 0.1 0.1",
        "0 x 0.5 0.1 0.1"])        # not a number
    ag.yolo_txt(tmp_path / "labels" / "val" / "b.txt", ["0 0.5 0.5 0.5 0.5"])
    ds, _ = load_warned(str(tmp_path))
    assert sorted(by_name(ds)) == ["a.png", "b.png"]  # c.png lost objects: left out
    a, b = by_name(ds)["a.png"], by_name(ds)["b.png"]
    assert (a.split, b.split) == ("train", "val")
    assert a.target.boxes == (((0.9 - 0.2) * 64, 18, 64, 30),)
    assert b.target.boxes == ((16, 12, 48, 36),)
    assert [P.kind_of(r) for _, r in ds.skipped] == [
        P.BOX_CLIPPED, P.BAD_ANNOTATION, P.UNKNOWN_CLASS, P.BAD_ANNOTATION]
    assert "4 fields" in ds.skipped[1][1] and ds.skipped[1][0].endswith("c.txt line 1")
    assert ds.skipped[1][1].endswith("image left out: c.png")


def test_yolo_without_class_names_says_what_to_add(tmp_path: Path, rng) -> None:
    ag.image(tmp_path / "images" / "a.png", rng, (64, 48))
    ag.yolo_txt(tmp_path / "labels" / "a.txt", ["0 0.5 0.5 0.5 0.5"])
    with pytest.raises(DataError, match="need class names") as info:
        load_detection(str(tmp_path), "detection")
    assert "add data.yaml with `names: [...]` or classes.txt" in info.value.one_line()


# ---------------------------------------------------------------- box CSV


def test_box_csv_rows_groups_splits_and_problems(tmp_path: Path, rng) -> None:
    for name, size in (("a", (64, 48)), ("b", (64, 48)), ("c", (80, 60))):
        ag.image(tmp_path / "img" / f"{name}.png", rng, size)
    (tmp_path / "classes.txt").write_text("dog\ncat\n")
    csv_path = ag.csv_rows(
        tmp_path / "boxes.csv", ["path", "xmin", "ymin", "xmax", "ymax", "label", "difficult",
                                 "group", "split"],
        [["img/a.png", 4, 5, 30, 40, "cat", 0, "g1", "train"],
         ["img/a.png", 10, 10, 20, 20, "dog", 1, "g1", "train"],
         ["img/b.png", "", "", "", "", "", "", "g2", ""],
         ["img/c.png", 1.5, 2.5, 70, 50, "dog", 0, "", "test"],
         ["img/c.png", 1, 2, 3, "", "cat", 0, "", "test"],
         ["missing.png", 1, 1, 5, 5, "cat", 0, "", ""]])
    ds, _ = load_warned(str(csv_path))
    assert ds.origin == f"csv:{csv_path}" and ds.classes == ["dog", "cat"]
    s = by_name(ds)
    assert s["a.png"].target == BoxTarget(boxes=((4, 5, 30, 40), (10, 10, 20, 20)),
                                          labels=("cat", "dog"), crowd=(False, True),
                                          image_size=(48, 64))
    assert (s["a.png"].group, s["a.png"].split) == ("g1", "train")
    assert s["b.png"].target.boxes == () and (s["b.png"].group, s["b.png"].split) == ("g2", None)
    assert "c.png" not in s  # its second box is not four numbers: the image is left out
    assert sorted(P.kind_of(r) for _, r in ds.skipped) == [P.BAD_ANNOTATION, P.IMAGE_MISSING]
    assert (f"{csv_path} line 6", f"{P.BAD_ANNOTATION}: box ['1', '2', '3', ''] is not four "
            "numbers; image left out: c.png") in ds.skipped


def test_box_csv_conflicting_split_for_one_image_is_an_error(tmp_path: Path, rng) -> None:
    ag.image(tmp_path / "a.png", rng, (64, 48))
    csv_path = ag.csv_rows(tmp_path / "b.csv", ["path", "xmin", "ymin", "xmax", "ymax",
                                                "label", "split"],
                           [["a.png", 1, 1, 5, 5, "cat", "train"],
                            ["a.png", 2, 2, 6, 6, "cat", "test"]])
    with pytest.raises(DataError, match="group/split None/'test' here") as info:
        load_detection(str(csv_path), "detection")
    assert "give every row of an image the same group and split" in info.value.one_line()


# ---------------------------------------------------------------- sniffing and routing


def test_sniffing_prefixes_and_the_classification_hint(tmp_path: Path, rng) -> None:
    voc = tmp_path / "voc"
    ag.image(voc / "images" / "a.png", rng, (64, 48))
    ag.voc_xml(voc / "annotations" / "a.xml", "a.png", (64, 48), [("cat", (1, 1, 9, 9), 0)])
    found = sniff_task(voc)
    assert (found.fmt, found.task) == ("voc", "detection")
    assert sniff_task(tmp_path / "nothing") is None
    classes = tmp_path / "tree"
    imagegen.make_class_tree(classes, {"a": 1, "b": 1}, rng)
    assert sniff_task(classes) is None
    with pytest.raises(DataError, match="pass --task detection"):
        load_data(str(voc))  # classification cannot read it, and says what to pass
    assert load_data(str(voc), task="detection").origin == f"voc:{voc}"
    for name in (f"voc:{voc}", "neon-trees:512"):  # recorded origins need their task
        with pytest.raises(DataError, match="pass --task detection"):
            load_data(name)
    with pytest.raises(DataError, match="cannot tell the annotation format"):
        load_detection(str(classes), "detection")
    with pytest.raises(DataError, match="boxes only"):
        load_detection(f"voc:{voc}", "instance")


# ---------------------------------------------------------------- splits


def _multilabel_csv(root: Path, rng) -> Path:
    """60 images: 'car' on most, 'bike' on 12, 12 without any box, groups of 2 on 20."""
    rows = []
    for i in range(60):
        name = f"img/{i:02d}.png"
        ag.image(root / name, rng, (48, 40))
        group = f"g{i // 2}" if i < 20 else ""
        labels = ["car"] if i % 5 else []
        labels += ["bike"] if i % 5 == 1 or i % 10 == 2 else []
        if i % 5 == 0:
            labels = []
        rows += [[name, 2, 3, 20, 30, lab, 0, group] for lab in labels] or \
            [[name, "", "", "", "", "", "", group]]
    return ag.csv_rows(root / "multi.csv", ["path", "xmin", "ymin", "xmax", "ymax", "label",
                                            "difficult", "group"], rows)


def test_dense_split_stratifies_class_sets_and_keeps_groups(tmp_path: Path, rng) -> None:
    ds = quiet_load(str(_multilabel_csv(tmp_path, rng)))
    matrix, names = strata_matrix(ds)
    assert names == ["bike", "car", NO_CLASS] and matrix.sum(axis=0).tolist() == [18, 48, 12]
    result = make_splits(ds, 0.2, 0.2, seed=1)
    where: dict[str, set] = defaultdict(set)
    for s in result.samples:
        assert s.split is not None
        if s.group:
            where[s.group].add(s.split)
    assert len(where) == 10 and all(len(v) == 1 for v in where.values())
    for split in ("val", "test"):
        members = result.by_split(split)
        assert abs(len(members) - 12) <= 2
        per = {n: sum(n in s.classes or (n == NO_CLASS and not s.classes) for s in members)
               for n in names}
        assert abs(per["bike"] - 0.2 * 18) <= 1.5 and abs(per[NO_CLASS] - 0.2 * 12) <= 1.5
    assert leakage_report(result)["leak_free"]


def test_box_split_file_round_trips_exactly(tmp_path: Path, rng) -> None:
    (tmp_path / "data" / "classes.txt").parent.mkdir()
    (tmp_path / "data" / "classes.txt").write_text("zebra\nant\n")
    for i in range(8):
        ag.image(tmp_path / "data" / "images" / f"{i}.png", rng, (67, 53))
        ag.yolo_txt(tmp_path / "data" / "labels" / f"{i}.txt",
                    [f"{i % 2} 0.3{i} 0.41 0.17 0.23", "1 0.7 0.6 0.33 0.1"] if i else [])
    ds = make_splits(quiet_load(str(tmp_path / "data")), 0.25, 0.25, seed=0)
    out = write_split_file(ds, tmp_path / "run" / "split.csv")
    assert (tmp_path / "run" / "split.classes.txt").read_text() == "zebra\nant\n"
    back = quiet_load(str(out))
    assert back.classes == ds.classes == ["zebra", "ant"]
    assert back.samples == ds.samples  # paths, groups, splits, float boxes, sizes: all equal
    assert back.samples[3].target.boxes[0][0] == (0.33 - 0.085) * 67
    again = load_data(str(out), task="detection", check_images=False)
    assert again.samples == ds.samples


def test_cli_inspect_and_split_detection(tmp_path: Path, rng) -> None:
    data = tmp_path / "data"
    ag.image(data / "images" / "a.png", rng, (64, 48))
    ag.image(data / "images" / "b.png", rng, (64, 48))
    ag.image(data / "images" / "c.png", rng, (128, 96))
    ag.voc_xml(data / "xml" / "a.xml", "a.png", (64, 48),
               [("cat", (0, 0, 40, 40), 0), ("cat", (50, 40, 70, 50), 0)])
    ag.voc_xml(data / "xml" / "b.xml", "b.png", (64, 48), [("dog", (10, 10, 14, 13), 1)])
    ag.voc_xml(data / "xml" / "c.xml", "c.png", (128, 96), [])
    out = tmp_path / "r.json"
    result = run_cli("data", "inspect", str(data), "--task", "detection", "--input-size", "32",
                     "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["n_images"] == 3 and report["n_objects"] == 3
    assert report["classes"] == {"cat": {"images": 1, "objects": 2, "crowd": 0},
                                 "dog": {"images": 0, "objects": 0, "crowd": 1}}
    # boxes: 40x40 (1600: medium), 14x8 clipped (112: small), crowd 4x3 (12: small)
    assert report["box_sizes"]["original"] == {"small": 2, "medium": 1, "large": 0}
    # at input 32 the 64x48 images scale by 0.5: 20x20 (400), 7x4 (28), 2x1.5 (3)
    assert report["box_sizes"]["input"] == {"small": 3, "medium": 0, "large": 0}
    assert report["box_sizes"]["under_8px_at_input"] == 2
    assert report["objects_per_image"]["histogram"]["0"] == 1
    assert report["images_without_objects"]["paths"] == [str(data / "images" / "c.png")]
    assert [P.kind_of(e["reason"]) for e in report["invalid_boxes"]] == [P.BOX_CLIPPED]
    assert "class(es) without boxes: dog" in result.stderr
    assert "Invalid boxes" in result.stdout
    split = tmp_path / "split.csv"
    result = run_cli("data", "split", str(data), "--task", "detection", "--out", str(split),
                     "--val", "0.34", "--test", "0.34")
    assert result.returncode == 0, result.stderr
    assert "wrote" in result.stdout and "3 images" in result.stdout
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        back = load_detection(str(split), "detection")
    assert [Path(s.path).name for s in back.samples] == ["a.png", "b.png", "c.png"]
    assert all(s.split is not None for s in back.samples)
    assert back.samples[0].target.boxes == ((0, 0, 40, 40), (50, 40, 64, 48))
    bad = run_cli("data", "split", str(data), "--task", "instance", "--out", str(split))
    assert bad.returncode == 2 and "split.json" in bad.stderr


# ---------------------------------------------------------------- neon-trees (built in)

_HAS_DEEPFOREST = __import__("importlib").util.find_spec("deepforest") is not None


def test_neon_trees_without_the_wheel_says_how_to_install(monkeypatch) -> None:
    import importlib.abc

    class Hide(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name == "deepforest":
                raise ModuleNotFoundError(name)
            return None

    monkeypatch.setattr(sys, "meta_path", [Hide(), *sys.meta_path])
    with pytest.raises(DataError, match=r"pip install --no-deps deepforest==2\.1\.0"):
        load_data("neon-trees", task="detection")


@pytest.mark.slow
@pytest.mark.skipif(not _HAS_DEEPFOREST, reason="deepforest==2.1.0 is not installed "
                    "(pip install --no-deps deepforest==2.1.0)")
def test_neon_trees_tiles_grouped_and_cached(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("EDGETL_CACHE_DIR", str(tmp_path))
    ds = quiet_load("neon-trees:400")
    assert ds.origin == "neon-trees:400" and ds.classes == ["tree"]
    groups = defaultdict(int)
    for s in ds.samples:
        groups[s.group] += 1
        h, w = s.target.image_size
        assert (h, w) == (400, 400)
        assert all(0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h for x1, y1, x2, y2 in s.target.boxes)
    assert groups == {"2019_YELL_2_528000_4978000_image_crop2": 42,
                      "2019_YELL_2_541000_4977000_image_crop": 12, "OSBS_029": 1,
                      "SOAP_061": 1}
    single = {s.group: len(s.target.boxes) for s in ds.samples if groups[s.group] == 1}
    assert single == {"OSBS_029": 61, "SOAP_061": 37}  # whole images: every box kept
    csv_file = tmp_path / "neon-trees" / "400" / "annotations.csv"
    stamp = csv_file.stat().st_mtime_ns
    assert quiet_load("neon-trees").samples == ds.samples  # default tile 400, from the cache
    assert csv_file.stat().st_mtime_ns == stamp
    split = make_splits(ds, 0.2, 0.2, seed=0)
    assert leakage_report(split)["groups_across_splits"] == []


# ---------------------------------------------------------------- development sets (slow)


def _shared() -> Path:
    return Path(os.environ.get("EDGETL_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.mark.slow
@pytest.mark.skipif(not (_shared() / "raccoon").is_dir(),
                    reason="raccoon development set not found (set EDGETL_SHARED_DATASETS)")
def test_raccoon_known_counts() -> None:
    ds = quiet_load(str(_shared() / "raccoon"))
    assert len(ds.samples) == 200 and ds.classes == ["raccoon"]
    assert sum(len(s.target.boxes) for s in ds.samples) == 217
