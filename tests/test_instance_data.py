"""Instance-segmentation data: COCO polygons/RLE, VIA, YOLO segments, instance-id PNGs.

Real images and annotation files in each format; exact boxes (the masks' extents), masks,
classes and splits; the bad-input cases; the COCO split file's round trip; the CLI report.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import annotgen as ag
import numpy as np
import pytest
from PIL import Image
from pycocotools import mask as mask_utils

from edgetl.data.detection import load_detection
from edgetl.data.detection import problems as P
from edgetl.data.detection.masks import mask_array
from edgetl.data.detection.splitfile import write_split_file
from edgetl.data.samples import DataWarning
from edgetl.data.sources import load_data
from edgetl.data.split import make_splits
from edgetl.data.targets import BoxTarget, InstanceMask, InstanceTarget
from edgetl.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(99)


def load(source: str, task: str = "instance", warned: bool = False, **kwargs):
    """Load; with `warned`, expect exactly one DataWarning, else none."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        ds = load_detection(source, task, **kwargs)
    data = [w for w in caught if issubclass(w.category, DataWarning)]
    assert len(data) == (1 if warned else 0), [str(w.message) for w in data]
    return ds


def by_name(ds) -> dict:
    return {Path(s.path).name: s for s in ds.samples}


def problem_kinds(ds) -> list[str]:
    return [P.kind_of(r) for _, r in ds.skipped]


def _rle(rows: slice, cols: slice, size=(48, 64)) -> dict:
    mask = np.zeros(size, dtype=np.uint8)
    mask[rows, cols] = 1
    rle = mask_utils.encode(np.asfortranarray(mask))
    return {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode()}


def coco_instances(root: Path, rng) -> Path:
    """a.png (64x48) with polygons, RLE, uncompressed crowd RLE and a clipped polygon; b.png;
    c.png with broken masks (left out)."""
    for name in ("a", "b", "c"):
        ag.image(root / "images" / f"{name}.png", rng, (64, 48))
    anns = [
        (1, {"category_id": 1, "segmentation": [[10, 10, 30, 10, 30, 20, 10, 20]]}),
        (1, {"category_id": 2, "segmentation": _rle(slice(5, 10), slice(40, 50))}),
        (1, {"category_id": 2, "segmentation": {"size": [48, 64], "counts": [0, 10, 3062]},
             "iscrowd": 1}),
        (3, {"category_id": 1, "segmentation": [[1, 1, 5, 5]]}),                  # 2 points
        (1, {"category_id": 1, "segmentation": [[50, 30, 80, 30, 80, 60, 50, 60]]}),  # clipped
        (3, {"category_id": 1, "segmentation": [[70, 50, 90, 50, 90, 70]]}),       # outside
        (3, {"category_id": 2, "segmentation": {"size": [10, 10], "counts": [0, 5, 95]}}),
    ]
    anns = [{"id": i, "image_id": image, "bbox": [0, 0, 1, 1], **a}
            for i, (image, a) in enumerate(anns, 1)]
    anns.append({"id": 99, "image_id": 2, "category_id": 1,
                 "segmentation": [[2.5, 3.5, 20.25, 3.5, 11, 30.75]]})
    return ag.coco_json(root / "instances.json",
                        [{"id": k, "file_name": f"{n}.png", "width": 64, "height": 48}
                         for k, n in ((1, "a"), (2, "b"), (3, "c"))],
                        anns, [{"id": 1, "name": "cell"}, {"id": 2, "name": "blob"}])


def test_coco_polygons_and_rle_with_bad_masks(tmp_path: Path, rng) -> None:
    ds = load(str(coco_instances(tmp_path, rng)), warned=True)
    assert ds.task == "instance" and ds.classes == ["cell", "blob"]
    a = by_name(ds)["a.png"].target
    assert isinstance(a, InstanceTarget) and a.image_size == (48, 64)
    assert a.labels == ("cell", "blob", "blob", "cell")
    assert a.crowd == (False, False, True, False)
    assert a.boxes == ((10, 10, 30, 20), (40, 5, 50, 10), (0, 0, 1, 10), (50, 30, 64, 48))
    assert a.masks[0] == InstanceMask(polygons=((10, 10, 30, 10, 30, 20, 10, 20),))
    assert a.masks[1].rle == _rle(slice(5, 10), slice(40, 50))
    clipped = a.masks[3].polygons[0]
    assert sorted(zip(clipped[0::2], clipped[1::2], strict=True)) == \
        [(50, 30), (50, 48), (64, 30), (64, 48)]
    assert mask_array(a.masks[2], a.image_size).sum() == 10
    b = by_name(ds)["b.png"].target
    assert b.boxes == ((2.5, 3.5, 20.25, 30.75),)
    assert "c.png" not in by_name(ds)  # its masks cannot be used: left out, not kept empty
    assert problem_kinds(ds) == [P.POLYGON_CLIPPED, P.POLYGON_DROPPED, P.MASK_DROPPED,
                                 P.POLYGON_DROPPED, P.MASK_DROPPED, P.MASK_SIZE]
    assert "fewer than 3 points" in ds.skipped[1][1]
    assert ds.skipped[1][1].endswith("image left out: c.png")
    assert "RLE size 10x10, image 64x48" in ds.skipped[-1][1]
    boxes = load(str(tmp_path / "instances.json"), "detection")  # detection reads bbox
    assert by_name(boxes)["a.png"].target.boxes[0] == (0, 0, 1, 1)


def test_via_balloon_layout_with_splits(tmp_path: Path, rng) -> None:
    (tmp_path / "classes.txt").write_text("balloon\n")
    for split, names in (("train", ["t1.jpg", "t2.jpg", "t3.jpg"]), ("val", ["v1.jpg", "v2.jpg"])):
        for name in names:
            ag.image(tmp_path / split / name, rng, (64, 48))
    square = [(10, 10), (20, 10), (20, 30), (10, 30)]
    ag.via_json(tmp_path / "train" / "via_region_data.json", {
        "t1.jpg": [ag.via_region(square),
                   ag.via_region(shape={"name": "rect", "x": 30, "y": 5, "width": 10,
                                        "height": 8}, attributes={"name": "balloon"})],
        "t2.jpg": [],
        "t3.jpg": [ag.via_region(square),
                   ag.via_region(shape={"name": "circle", "cx": 5, "cy": 5, "r": 3}),
                   ag.via_region([(1, 1), (4, 4)])]})
    ag.via_json(tmp_path / "val" / "via_region_data.json",
                {"v1.jpg": [], "v2.jpg": [ag.via_region([(60, 40), (70, 40), (70, 50)],
                                                         attributes={"label": "kite"})]})
    ds = load(str(tmp_path), warned=True)
    assert ds.origin == f"via:{tmp_path}" and ds.classes == ["balloon"]
    s = by_name(ds)
    assert {k: v.split for k, v in s.items()} == {"t1.jpg": "train", "t2.jpg": "train",
                                                 "v1.jpg": "val"}  # t3, v2 left out
    t1 = s["t1.jpg"].target
    assert t1.boxes == ((10, 10, 20, 30), (30, 5, 40, 13))
    assert t1.masks[1].polygons == ((30, 5, 40, 5, 40, 13, 30, 13),)
    assert s["v1.jpg"].target.boxes == () and s["t2.jpg"].target.boxes == ()
    assert problem_kinds(ds) == [P.BAD_ANNOTATION, P.POLYGON_DROPPED, P.UNKNOWN_CLASS]
    assert "shape 'circle' is not supported" in ds.skipped[0][1]
    det = load(str(tmp_path), "detection", warned=True)  # the same polygons as boxes
    assert det.task == "detection"
    assert by_name(det)["t1.jpg"].target == BoxTarget(boxes=t1.boxes, labels=t1.labels,
                                                      image_size=(48, 64))


def test_yolo_segments_instance_and_detection(tmp_path: Path, rng) -> None:
    (tmp_path / "classes.txt").write_text("leaf\n")
    ag.image(tmp_path / "images" / "a.png", rng, (64, 48))
    ag.image(tmp_path / "images" / "b.png", rng, (64, 48))
    ag.image(tmp_path / "images" / "c.png", rng, (64, 48))
    ag.yolo_txt(tmp_path / "labels" / "a.txt", ["0 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75"])
    ag.yolo_txt(tmp_path / "labels" / "b.txt", ["0 0.5 0.5 0.2 0.2"])  # a box: no instance
    ag.yolo_txt(tmp_path / "labels" / "c.txt", ["0 0.25 0.25 0.75 0.25 0.75 0.75 0.25 0.75",
                                                "0 0.1 0.1 0.2 0.2 0.3"])  # six fields
    instances = load(str(tmp_path), warned=True)
    assert sorted(by_name(instances)) == ["a.png"]
    inst = by_name(instances)["a.png"].target
    assert inst.boxes == ((16, 12, 48, 36),)
    assert inst.masks[0].polygons == ((16, 12, 48, 12, 48, 36, 16, 36),)
    det = load(str(tmp_path), "detection", warned=True)
    assert sorted(by_name(det)) == ["a.png", "b.png"]
    assert by_name(det)["a.png"].target.boxes == ((16, 12, 48, 36),)
    assert by_name(det)["b.png"].target.boxes == (
        ((0.5 - 0.1) * 64, (0.5 - 0.1) * 48, (0.5 + 0.1) * 64, (0.5 + 0.1) * 48),)
    assert problem_kinds(det) == [P.BAD_ANNOTATION]


def id_mask_set(root: Path, rng) -> None:
    """a (8-bit ids, own mapping), b (16-bit ids, folder mapping) and four broken images."""
    for name in "abcdef":
        ag.image(root / "images" / f"{name}.png", rng, (64, 48) if name != "b" else (40, 30))
    a = np.zeros((48, 64), dtype=np.int64)
    a[2:6, 3:10] = 1
    a[10:20, 20:30] = 2
    ag.id_png(root / "masks" / "a.png", a)
    (root / "masks" / "a.json").write_text('{"1": "cat", "2": "dog"}')
    b = np.zeros((30, 40), dtype=np.int64)
    b[0:5, 0:5] = 300
    b[10:15, 30:40] = 1000
    ag.id_png(root / "masks" / "b.png", b)
    (root / "masks" / "instances.json").write_text('{"b": {"300": "dog", "1000": "cat"}, '
                                                   '"f": {"1": "cat"}}')
    ag.id_png(root / "masks" / "c.png", np.ones((32, 32), dtype=np.int64))   # wrong size
    Image.new("RGB", (64, 48)).save(root / "masks" / "e.png")                # colour mask
    f = np.zeros((48, 64), dtype=np.int64)
    f[0:4, 0:4] = 1
    f[5:9, 5:9] = 3                                                          # no class for 3
    ag.id_png(root / "masks" / "f.png", f)


def test_instance_id_pngs_8_and_16_bit_with_mappings(tmp_path: Path, rng) -> None:
    id_mask_set(tmp_path, rng)
    ds = load(str(tmp_path), warned=True)
    assert ds.origin == f"masks:{tmp_path}" and ds.classes == ["cat", "dog"]
    s = by_name(ds)
    assert sorted(s) == ["a.png", "b.png"]  # f.png: instance 3 has no class, left out
    a, b = s["a.png"].target, s["b.png"].target
    assert a.boxes == ((3, 2, 10, 6), (20, 10, 30, 20)) and a.labels == ("cat", "dog")
    assert a.masks[1] == InstanceMask(id_png=str(tmp_path / "masks" / "a.png"), id_value=2)
    assert b.boxes == ((0, 0, 5, 5), (30, 10, 40, 15)) and b.labels == ("dog", "cat")
    assert b.image_size == (30, 40) and b.masks[1].id_value == 1000
    assert mask_array(b.masks[0], b.image_size).sum() == 25
    got = {Path(p).name: P.kind_of(r) for p, r in ds.skipped}
    assert got == {"c.png": P.MASK_SIZE, "d.png": P.NO_ANNOTATION, "e.png": P.BAD_ANNOTATION,
                   "f.png": P.UNKNOWN_CLASS}
    assert "mask 32x32, image 64x48" in dict(ds.skipped)[str(tmp_path / "masks" / "c.png")]


def test_binary_instance_masks_that_overlap(tmp_path: Path, rng) -> None:
    (tmp_path / "classes.txt").write_text("nucleus\n")
    for image, masks in (("g", (("1", slice(0, 10), slice(0, 10)),
                                ("2", slice(5, 15), slice(5, 15)))),
                         ("k", (("0", slice(6, 8), slice(6, 8)),
                                ("1", slice(0, 10), slice(0, 10))))):
        ag.image(tmp_path / "images" / f"{image}.png", rng, (32, 24))
        folder = tmp_path / "masks" / image  # one binary PNG per instance, in name order
        folder.mkdir(parents=True)
        for name, rows, cols in masks:
            mask = np.zeros((24, 32), dtype=np.uint8)
            mask[rows, cols] = 255
            Image.fromarray(mask, mode="L").save(folder / f"{name}.png")
    ds = load(str(tmp_path), warned=True)
    assert [Path(s.path).name for s in ds.samples] == ["g.png"]  # k lost instance 0
    g = ds.samples[0].target
    assert g.labels == ("nucleus", "nucleus") and g.boxes == ((0, 0, 10, 10), (5, 5, 15, 15))
    assert [int(mask_array(m, (24, 32)).sum()) for m in g.masks] == [75, 100]
    assert problem_kinds(ds) == [P.MASK_OVERLAP, P.MASK_OVERLAP, P.MASK_DROPPED]
    assert "shares 25 pixel(s) with 1" in ds.skipped[0][1]
    assert "shares 4 pixel(s) with 0" in ds.skipped[1][1]
    assert ds.skipped[2][1].endswith("image left out: k.png")


def test_coco_split_file_round_trips(tmp_path: Path, rng) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ds = load_detection(str(coco_instances(tmp_path / "coco", rng)), "instance")
    split = make_splits(ds.replace(samples=[s.__class__(s.path, s.label, "g1", None, s.target)
                                            for s in ds.samples]), 0.2, 0.2, seed=0)
    out = write_split_file(split, tmp_path / "run" / "split.json")
    back = load(str(out))
    assert back.classes == split.classes and back.samples == split.samples
    assert {s.group for s in back.samples} == {"g1"}
    with pytest.raises(Exception, match="written as JSON"):
        write_split_file(split, tmp_path / "run" / "split.csv")

    id_mask_set(tmp_path / "ids", rng)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        ids = make_splits(load_detection(str(tmp_path / "ids"), "instance"), 0.3, 0.3, seed=2)
    again = load(str(write_split_file(ids, tmp_path / "ids.json")))
    assert again.classes == ids.classes
    for old, new in zip(ids.samples, again.samples, strict=True):
        assert (new.path, new.split, new.label) == (old.path, old.split, old.label)
        assert (new.target.boxes, new.target.labels) == (old.target.boxes, old.target.labels)
        for m_old, m_new in zip(old.target.masks, new.target.masks, strict=True):
            assert m_new.rle is not None  # id PNGs become RLE of the same pixels
            size = old.target.image_size
            assert np.array_equal(mask_array(m_old, size), mask_array(m_new, size))


def test_instance_task_on_a_box_only_format_and_classification_warning(tmp_path: Path,
                                                                       rng) -> None:
    ag.image(tmp_path / "voc" / "a.png", rng, (64, 48))
    ag.voc_xml(tmp_path / "voc" / "a.xml", "a.png", (64, 48), [("cat", (1, 1, 9, 9), 0)])
    with pytest.raises(DataError, match="boxes only"):
        load_data(str(tmp_path / "voc"), task="instance")
    id_mask_set(tmp_path / "ids", rng)
    with pytest.warns(DataWarning, match="pass --task instance"):
        ds = load_data(str(tmp_path / "ids"), check_images=False)  # images/ and masks/ read
    assert ds.classes == ["images", "masks"]  # as classes: what the warning is for


def test_cli_inspect_instance_json(tmp_path: Path, rng) -> None:
    coco_instances(tmp_path, rng)
    out = tmp_path / "r.json"
    result = run_cli("data", "inspect", f"coco:{tmp_path / 'instances.json'}", "--task",
                     "instance", "--input-size", "160", "--json", str(out))
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["objects"] == "instances" and report["n_objects"] == 5
    assert report["classes"] == {"cell": {"images": 2, "objects": 3, "crowd": 0},
                                 "blob": {"images": 1, "objects": 1, "crowd": 1}}
    areas = report["instance_areas"]
    assert areas["forms"] == {"polygons": 3, "rle": 2}
    # mask pixels 200, 50, 10 (crowd), 252 (clipped) and 229; at 160 px they scale by 2.5²
    assert areas["area"]["min"] == 10 and areas["area"]["max"] == 252
    assert areas["original"] == {"small": 5, "medium": 0, "large": 0}
    assert areas["input"] == {"small": 2, "medium": 3, "large": 0}
    assert [P.kind_of(e["reason"]) for e in report["degenerate_polygons"]] == [
        P.POLYGON_CLIPPED, P.POLYGON_DROPPED, P.POLYGON_DROPPED]
    assert len(report["mask_size_mismatches"]) == 1
    assert report["objects_per_image"]["max"] == 4
    assert "Degenerate polygons" in result.stdout and "instances per image" in result.stdout


def _shared() -> Path:
    return Path(os.environ.get("EDGETL_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.mark.slow
@pytest.mark.skipif(not (_shared() / "nuclei").is_dir(),
                    reason="nuclei development set not found (set EDGETL_SHARED_DATASETS)")
def test_nuclei_known_counts() -> None:
    ds = load(str(_shared() / "nuclei"))
    assert len(ds.samples) == 664 and ds.classes == ["object"]
    counts = [len(s.target.boxes) for s in ds.samples]
    assert sum(counts) == 28986 and min(counts) == 1 and max(counts) == 375
