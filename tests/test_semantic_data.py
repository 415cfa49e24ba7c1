"""Semantic segmentation data: readers, mask decoding, inspection, bad input, split-file round trip.

Every test writes real images and masks (PIL) in a temporary folder and checks exact class
indices and counts worked out by hand. The CamVid test is slow and needs the shared data sets.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from pathlib import Path

import imagegen
import numpy as np
import pytest
from PIL import Image

from edgetl.data.grouping import group_from_name
from edgetl.data.samples import DataWarning, Sample
from edgetl.data.semantic import (
    MaskError,
    inspect_semantic,
    load_semantic,
    print_semantic_report,
    read_mask,
    write_split_file,
)
from edgetl.data.semantic.record import MaskRecord
from edgetl.data.semantic.splitfile import sidecar_path
from edgetl.data.targets import MaskTarget
from edgetl.errors import DataError

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(5)


def write_image(path: Path, width: int, height: int, seed: int = 0) -> Path:
    return imagegen.save(imagegen.textured_image(np.random.default_rng(seed), (width, height)),
                         path)


def write_mask(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(array.astype(np.uint16)).save(path)
    elif mode == "P":
        img = Image.fromarray(array.astype(np.uint8), mode="P")
        img.putpalette([0, 0, 0, 200, 0, 0, 0, 200, 0, 0, 0, 200] + [255] * (252 * 3))
        img.save(path)
    else:
        Image.fromarray(array).save(path)
    return path


def stripes(height: int, width: int, values: list[int], dtype: type = np.uint8) -> np.ndarray:
    """Rows split into len(values) horizontal bands of equal height (height divisible)."""
    band = height // len(values)
    return np.repeat(np.array(values, dtype=dtype), band)[:, None].repeat(width, axis=1)


def load_quiet(source: str, **kwargs: object):
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # these sources must load cleanly
        return load_semantic(source, **kwargs)


# ---------------------------------------------------------------- encodings


def test_index_masks_decode_to_exact_class_indices(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("background\nroad\ncar\n")
    a = np.zeros((24, 32), dtype=np.uint8)
    a[4:10, 5:20] = 1
    a[12:16, 0:4] = 2
    a[20:, :] = 255  # the ignore index in a file: ignored, never a class
    write_image(tmp_path / "images" / "a.jpg", 32, 24)
    write_mask(tmp_path / "masks" / "a.png", a)
    write_image(tmp_path / "images" / "b.png", 32, 24, seed=1)
    write_mask(tmp_path / "masks" / "b.png", np.zeros((24, 32), dtype=np.uint8))
    ds = load_quiet(str(tmp_path))
    assert ds.task == "semantic" and ds.classes == ["background", "road", "car"]
    assert ds.record.encoding == "index" and ds.record.ignore_index == 255
    first, second = ds.samples
    assert first.target == MaskTarget(str(tmp_path / "masks" / "a.png"), "index",
                                      ("background", "car", "road"))
    assert first.label == "background+car+road" and second.label == "background"
    assert first.split is None and first.group is None
    decoded = read_mask(first.target, ds.record)
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, a)


def test_sixteen_bit_masks_and_a_large_class_list(tmp_path: Path) -> None:
    names = [f"c{i}" for i in range(300)]
    (tmp_path / "classes.txt").write_text("\n".join(names) + "\n")
    a = stripes(30, 8, [0, 299, 256], dtype=np.uint16)
    write_image(tmp_path / "images" / "x.png", 8, 30)
    write_mask(tmp_path / "masks" / "x.png", a, mode="I;16")
    with pytest.raises(DataError, match="stored as pixel value 255, the ignore index"):
        load_semantic(str(tmp_path))
    ds = load_quiet(str(tmp_path), ignore_index=1000)
    assert len(ds.classes) == 300 and ds.samples[0].target.present == ("c0", "c256", "c299")
    decoded = read_mask(ds.samples[0].target, ds.record)
    assert decoded.dtype == np.int64 and np.array_equal(decoded, a)


def test_sixteen_bit_masks_of_few_classes_decode_to_uint8(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("sea\nland\n")
    a = stripes(20, 10, [1, 0, 255, 1], dtype=np.uint16)
    write_image(tmp_path / "images" / "x.png", 10, 20)
    write_mask(tmp_path / "masks" / "x.png", a, mode="I;16")
    ds = load_quiet(str(tmp_path))
    decoded = read_mask(ds.samples[0].target, ds.record)
    assert decoded.dtype == np.uint8 and np.array_equal(decoded, a)


def test_numbered_classes_with_a_void_class_map_it_to_the_ignore_index(tmp_path: Path) -> None:
    """CamVid's format: '11 void (ignore)' is not an output class; its pixels become 255."""
    (tmp_path / "classes.txt").write_text("0 sky\n1 road\n2 car\n3 void (ignore)\n")
    raw = stripes(16, 6, [0, 1, 2, 3])
    write_image(tmp_path / "train" / "images" / "s_1.jpg", 6, 16)
    write_mask(tmp_path / "train" / "labels" / "s_1.png", raw)
    ds = load_quiet(str(tmp_path))
    assert ds.classes == ["sky", "road", "car"] and ds.record.void == ("void",)
    assert ds.record.value_map() == {0: 0, 1: 1, 2: 2, 3: 255, 255: 255}
    expected = stripes(16, 6, [0, 1, 2, 255])
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record), expected)
    assert ds.samples[0].split == "train"
    # the recipe's class list may mark the void class too; a void class first shifts the rest
    (tmp_path / "classes.txt").unlink()
    ds = load_quiet(str(tmp_path), classes=["void", "sky", "road", "car"])
    assert ds.classes == ["sky", "road", "car"]
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record),
                          stripes(16, 6, [255, 0, 1, 2]))


def test_palette_masks_with_a_class_map(tmp_path: Path) -> None:
    (tmp_path / "class_dict.csv").write_text(
        "name,r,g,b\nbackground,0,0,0\nroad,128,64,128\nsign,192,128,128\nvoid,255,255,255\n")
    rgb = np.zeros((12, 9, 3), dtype=np.uint8)
    rgb[0:3] = (128, 64, 128)
    rgb[3:6, 0:2] = (192, 128, 128)
    rgb[9:] = (255, 255, 255)
    write_image(tmp_path / "images" / "p.jpg", 9, 12)
    write_mask(tmp_path / "masks" / "p.png", rgb)
    ds = load_quiet(str(tmp_path))
    assert ds.record.encoding == "palette" and ds.classes == ["background", "road", "sign"]
    assert ds.record.class_colours() == [(0, 0, 0), (128, 64, 128), (192, 128, 128)]
    expected = np.zeros((12, 9), dtype=np.uint8)
    expected[0:3] = 1
    expected[3:6, 0:2] = 2
    expected[9:] = 255
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record), expected)
    assert ds.samples[0].target.encoding == "palette"


def test_palette_mode_png_with_a_class_map_reads_colours(tmp_path: Path) -> None:
    (tmp_path / "class_dict.csv").write_text("bg,0,0,0\nred,200,0,0\ngreen,0,200,0\n")
    idx = stripes(9, 4, [2, 0, 1])
    write_image(tmp_path / "images" / "p.png", 4, 9)
    write_mask(tmp_path / "masks" / "p.png", idx, mode="P")
    ds = load_quiet(str(tmp_path))
    assert ds.record.encoding == "palette"
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record), idx)


def test_palette_mode_png_without_a_class_map_is_read_as_indices(tmp_path: Path) -> None:
    """Pascal VOC stores class indices in palette-mode PNGs."""
    (tmp_path / "classes.txt").write_text("bg\nred\ngreen\nblue\n")
    idx = stripes(8, 4, [3, 0, 1, 2])
    write_image(tmp_path / "images" / "p.png", 4, 8)
    write_mask(tmp_path / "masks" / "p.png", idx, mode="P")
    ds = load_quiet(str(tmp_path))
    assert ds.record.encoding == "index"
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record), idx)


@pytest.mark.parametrize("foreground", [255, 1])
def test_binary_masks(tmp_path: Path, foreground: int) -> None:
    m = np.zeros((10, 10), dtype=np.uint8)
    m[2:5, 3:9] = foreground
    write_image(tmp_path / "images" / "b.jpg", 10, 10)
    write_mask(tmp_path / "masks" / "b.png", m)
    write_image(tmp_path / "images" / "c.jpg", 10, 10, seed=2)
    write_mask(tmp_path / "masks" / "c.png", np.zeros((10, 10), dtype=np.uint8))
    ds = load_quiet(str(tmp_path))
    assert ds.record.encoding == "binary" and ds.classes == ["background", "foreground"]
    decoded = read_mask(ds.samples[0].target, ds.record)
    assert np.array_equal(decoded, (m > 0).astype(np.uint8))
    assert ds.samples[0].label == "background+foreground"
    assert ds.samples[1].label == "background"


def test_bilevel_png_and_named_binary_classes(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("soil\nleaf\n")
    m = np.zeros((6, 8), dtype=bool)
    m[1:3] = True
    write_image(tmp_path / "images" / "b.png", 8, 6)
    (tmp_path / "masks").mkdir()
    Image.fromarray(m).convert("1").save(tmp_path / "masks" / "b.png")
    ds = load_quiet(str(tmp_path))
    assert ds.record.encoding == "binary" and ds.classes == ["soil", "leaf"]
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record), m.astype(np.uint8))


def test_index_masks_without_names_are_named_by_value(tmp_path: Path) -> None:
    write_image(tmp_path / "images" / "a.png", 4, 6)
    write_mask(tmp_path / "masks" / "a.png", stripes(6, 4, [0, 3, 255]))
    ds = load_quiet(str(tmp_path))
    assert ds.classes == ["class_0", "class_1", "class_2", "class_3"]
    assert any("classes named by pixel value" in n for n in ds.notes)


def test_grey_rgb_index_masks_are_accepted(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("a\nb\nc\n")
    idx = stripes(6, 5, [2, 0, 1])
    write_image(tmp_path / "images" / "g.png", 5, 6)
    write_mask(tmp_path / "masks" / "g.png", np.stack([idx] * 3, axis=-1))
    ds = load_quiet(str(tmp_path))
    assert np.array_equal(read_mask(ds.samples[0].target, ds.record), idx)


def test_read_mask_lists_values_outside_the_record(tmp_path: Path) -> None:
    path = write_mask(tmp_path / "m.png", stripes(8, 2, [0, 1, 7, 9]))
    record = MaskRecord(classes=("a", "b"), encoding="index", values=((0, 0), (1, 1)))
    with pytest.raises(MaskError, match=r"values outside the class list: 7, 9") as info:
        read_mask(MaskTarget(str(path), "index"), record)
    assert info.value.kind == "values_outside" and info.value.found == [7, 9]
    with pytest.raises(DataError, match="cannot be read with a palette record"):
        read_mask(MaskTarget(str(path), "index"),
                  MaskRecord(classes=("a", "b"), encoding="palette"))


def test_thirty_two_bit_values_are_listed_not_tabled(tmp_path: Path) -> None:
    """An 'I' mode mask with a huge value: no 2**31-entry table, the value is named."""
    path = tmp_path / "m.tif"  # PNG has no 32-bit grey mode; TIFF does
    arr = stripes(4, 3, [0, 1], dtype=np.int32)
    arr[0, 0] = 2_000_000_000
    Image.fromarray(arr, mode="I").save(path)
    record = MaskRecord(classes=("a", "b"), encoding="index", values=((0, 0), (1, 1)))
    with pytest.raises(MaskError, match="values outside the class list: 2000000000"):
        read_mask(MaskTarget(str(path), "index"), record)
    Image.fromarray(stripes(4, 3, [1, 0], dtype=np.int32), mode="I").save(path)
    assert np.array_equal(read_mask(MaskTarget(str(path), "index"), record), stripes(4, 3, [1, 0]))


def test_mask_record_round_trips_and_rejects_a_clashing_ignore_index() -> None:
    record = MaskRecord(classes=("a", "b"), encoding="palette",
                        colours=((1, 2, 3, 0), (4, 5, 6, 1), (0, 0, 0, 255)), void=("void",))
    assert MaskRecord.from_dict(json.loads(json.dumps(record.to_dict()))) == record
    with pytest.raises(DataError, match="ignore index 1 is also the index of class 'b'"):
        MaskRecord(classes=("a", "b"), encoding="index", ignore_index=1)


# ---------------------------------------------------------------- layouts


def test_layouts_split_folders_valid_and_suffixed_masks(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("a\nb\n")
    m = stripes(4, 4, [0, 1])
    for split, stem in (("train", "t1"), ("valid", "v1")):
        write_image(tmp_path / split / "images" / f"{stem}.jpg", 4, 4)
        write_mask(tmp_path / split / "annotations" / f"{stem}_mask.png", m)
    ds = load_quiet(str(tmp_path))
    # train/ + valid/ without test/: the classification rule, valid/ becomes the test split
    assert {s.path.split(os.sep)[-1]: s.split for s in ds.samples} == {"t1.jpg": "train",
                                                                      "v1.jpg": "test"}
    assert any("valid/ is used as the test split" in n for n in ds.notes)


def test_nested_split_folders_inside_images_and_masks(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("a\nb\n")
    m = stripes(4, 4, [1, 0])
    for split in ("train", "val", "test"):
        write_image(tmp_path / "images" / split / "city" / f"{split}.png", 4, 4)
        write_mask(tmp_path / "labels" / split / "city" / f"{split}.png", m)
    ds = load_quiet(str(tmp_path))
    assert [(Path(s.path).stem, s.split) for s in ds.samples] == [
        ("train", "train"), ("val", "val"), ("test", "test")]


def test_unknown_layout_is_one_actionable_line(tmp_path: Path) -> None:
    write_image(tmp_path / "pics" / "a.jpg", 4, 4)
    with pytest.raises(DataError) as info:
        load_semantic(str(tmp_path))
    line = info.value.one_line()
    assert "holds no image and mask folders" in line and "\n" not in line
    assert info.value.exit_code == 2
    with pytest.raises(DataError, match="no such folder or file"):
        load_semantic(str(tmp_path / "nope"))
    with pytest.raises(DataError, match="is not a folder"):
        load_semantic("masks:" + str(write_image(tmp_path / "x.png", 4, 4)))


def test_colour_masks_without_a_class_map_are_one_line(tmp_path: Path) -> None:
    rgb = np.zeros((4, 4, 3), dtype=np.uint8)
    rgb[:2] = (10, 200, 30)
    write_image(tmp_path / "images" / "a.png", 4, 4)
    write_mask(tmp_path / "masks" / "a.png", rgb)
    with pytest.raises(DataError, match="colour .RGB. images and there is no class_dict.csv"):
        load_semantic(str(tmp_path))


# ---------------------------------------------------------------- bad input


def bad_set(root: Path) -> dict[str, Path]:
    """Two good pairs and one of each problem; returns the files by problem."""
    (root / "classes.txt").write_text("bg\nroad\ncar\n")
    good = stripes(8, 6, [0, 1, 2, 0])
    files: dict[str, Path] = {}
    for stem in ("good1", "good2"):
        write_image(root / "images" / f"{stem}.jpg", 6, 8, seed=hash(stem) % 100)
        write_mask(root / "masks" / f"{stem}.png", good)
    files["missing_mask"] = write_image(root / "images" / "lonely.jpg", 6, 8, seed=3)
    files["orphan_mask"] = write_mask(root / "masks" / "ghost.png", good)
    files["size_mismatch"] = write_image(root / "images" / "big.jpg", 12, 8, seed=4)
    write_mask(root / "masks" / "big.png", good)
    files["values_outside"] = write_image(root / "images" / "odd.jpg", 6, 8, seed=5)
    write_mask(root / "masks" / "odd.png", stripes(8, 6, [0, 1, 7, 40]))
    files["unreadable_image"] = imagegen.write_truncated_jpeg(root / "images" / "cut.jpg", RNG,
                                                              (6, 8))
    write_mask(root / "masks" / "cut.png", good)
    files["unreadable_mask"] = write_image(root / "images" / "textmask.jpg", 6, 8, seed=6)
    imagegen.write_text_as_image(root / "masks" / "textmask.png")
    files["lossy_mask"] = write_image(root / "images" / "jpgmask.png", 6, 8, seed=7)
    Image.fromarray(good).save(root / "masks" / "jpgmask.jpg", quality=95)
    return files


def test_bad_pairs_are_listed_and_skipped_with_one_warning(tmp_path: Path) -> None:
    files = bad_set(tmp_path)
    with pytest.warns(DataWarning) as caught:
        ds = load_semantic(str(tmp_path))
    assert len([w for w in caught if w.category is DataWarning]) == 1
    assert "skipped 7 file(s)" in str(caught[0].message)
    assert [Path(s.path).stem for s in ds.samples] == ["good1", "good2"]
    kinds = {p.kind: p for p in ds.problems}
    assert {k: str(p.path) for k, p in kinds.items()} == {k: str(v) for k, v in files.items()}
    assert kinds["values_outside"].found == (7, 40)
    assert "values outside the class list: 7, 40" in kinds["values_outside"].detail
    assert "is 6x8, the image 12x8" in kinds["size_mismatch"].detail
    assert "JPEG" in kinds["lossy_mask"].detail
    assert sorted(ds.skipped) == sorted((p.path, p.detail) for p in ds.problems)


def test_palette_colours_not_in_the_map_are_listed_per_file(tmp_path: Path) -> None:
    (tmp_path / "class_dict.csv").write_text("name,r,g,b\nbg,0,0,0\nroad,128,64,128\n")
    ok = np.zeros((4, 4, 3), dtype=np.uint8)
    ok[:2] = (128, 64, 128)
    bad = ok.copy()
    bad[3, 3] = (1, 2, 3)
    bad[0, 0] = (250, 0, 0)
    for stem, arr in (("ok", ok), ("bad", bad)):
        write_image(tmp_path / "images" / f"{stem}.png", 4, 4)
        write_mask(tmp_path / "masks" / f"{stem}.png", arr)
    with pytest.warns(DataWarning, match="colours not in the class map"):
        ds = load_semantic(str(tmp_path))
    assert [Path(s.path).stem for s in ds.samples] == ["ok"]
    (problem,) = ds.problems
    assert problem.kind == "palette_unknown" and problem.found == ((1, 2, 3), (250, 0, 0))
    report = inspect_semantic(ds)
    assert report["palette_unknown"][0]["found"] == [[1, 2, 3], [250, 0, 0]]


def test_nothing_usable_is_one_line_exit_2(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("bg\nroad\n")
    write_image(tmp_path / "images" / "a.jpg", 6, 8)
    write_mask(tmp_path / "masks" / "a.png", stripes(8, 6, [0, 9]))
    write_image(tmp_path / "images" / "b.jpg", 6, 8)
    with warnings.catch_warnings():
        warnings.simplefilter("error", DataWarning)  # no warning before the error
        with pytest.raises(DataError) as info:
            load_semantic(str(tmp_path))
    line = info.value.one_line()
    assert info.value.exit_code == 2 and "\n" not in line
    assert line.startswith(f"no usable image/mask pair in {tmp_path} (1 images without a mask, "
                           "1 masks with values outside the class list); first: ")


# ---------------------------------------------------------------- inspection


def test_inspect_counts_pixels_and_images_by_hand(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("0 bg\n1 road\n2 car\n3 void\n")
    h, w = 48, 64
    n = h * w  # pixels per image
    # train: a (top half bg, bottom road), b (half road, a quarter car, a quarter void);
    # test: c (all bg) and a re-encoded copy of a under another name and video
    masks = {("train", "a"): stripes(h, w, [0, 1]), ("train", "b"): stripes(h, w, [1, 1, 2, 3]),
             ("test", "c"): np.zeros((h, w), dtype=np.uint8)}
    for seed, ((split, stem), m) in enumerate(masks.items()):
        write_image(tmp_path / split / "images" / f"v1_{stem}.jpg", w, h, seed=10 + seed)
        write_mask(tmp_path / split / "masks" / f"v1_{stem}.png", m)
    copy = imagegen.resized_copy(tmp_path / "train" / "images" / "v1_a.jpg",
                                 tmp_path / "test" / "images" / "v2_a.jpg", 1.0, quality=90)
    write_mask(tmp_path / "test" / "masks" / "v2_a.png", masks[("train", "a")])
    ds = group_from_name(load_quiet(str(tmp_path)), r"^([^_]+)_")
    report = inspect_semantic(ds)
    train = report["pixels"]["train"]
    labelled = n // 2 + n // 2 + n // 2 + n // 4  # a: bg + road; b: road + car
    assert (train["images"], train["labelled_pixels"], train["ignored_pixels"]) == \
        (2, labelled, n // 4)
    assert train["classes"] == {
        "bg": {"pixels": n // 2, "share": (n // 2) / labelled, "images": 1},
        "road": {"pixels": n, "share": n / labelled, "images": 2},
        "car": {"pixels": n // 4, "share": (n // 4) / labelled, "images": 1}}
    everything = report["pixels"]["all"]
    assert everything["labelled_pixels"] == labelled + 2 * n
    assert everything["classes"]["bg"] == {"pixels": n // 2 + n + n // 2,
                                           "share": (2 * n) / (labelled + 2 * n), "images": 3}
    assert everything["ignored_pixels"] == n // 4 and everything["ignored_share"] == 1 / 16
    assert report["pixels"]["test"]["classes"]["car"]["pixels"] == 0
    assert "the test split has no pixels of car" in " ".join(report["warnings"])
    assert [set(c["paths"]) for c in report["cross_split_duplicates"]] == [
        {str(tmp_path / "train" / "images" / "v1_a.jpg"), str(copy)}]
    assert report["groups"]["across_splits"] == [{"group": "v1",
                                                  "splits": {"train": 2, "test": 1}}]
    assert json.loads(json.dumps(report)) == report  # JSON-ready


def test_inspect_lists_every_problem_kind(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    files = bad_set(tmp_path)
    with pytest.warns(DataWarning):
        ds = load_semantic(str(tmp_path))
    report = inspect_semantic(ds)
    assert [e["path"] for e in report["missing_masks"]] == [str(files["missing_mask"])]
    assert [e["path"] for e in report["orphan_masks"]] == [str(files["orphan_mask"])]
    assert [e["path"] for e in report["size_mismatch"]] == [str(files["size_mismatch"])]
    assert [(e["path"], e["found"]) for e in report["values_outside"]] == [
        (str(files["values_outside"]), [7, 40])]
    assert {e["path"] for e in report["unreadable"]} == {str(files["unreadable_image"]),
                                                         str(files["unreadable_mask"])}
    assert [e["kind"] for e in report["other_problems"]] == ["lossy_mask"]
    assert report["n_images"] == 2 and report["n_files"] == 9
    print_semantic_report(report)
    out = capsys.readouterr()
    assert "Masks with values outside the class list (1)" in out.out
    assert "odd.jpg" in out.out and "7 file(s) not usable" in out.err


def test_read_mask_agrees_with_the_inspected_counts(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("a\nb\nc\nvoid\n")
    rng = np.random.default_rng(1)
    for i in range(3):
        write_image(tmp_path / "images" / f"{i}.png", 7, 5, seed=i)
        write_mask(tmp_path / "masks" / f"{i}.png",
                   rng.integers(0, 4, size=(5, 7)).astype(np.uint8))
    ds = load_quiet(str(tmp_path))
    totals = sum(np.bincount(read_mask(s.target, ds.record).ravel(), minlength=256)
                 for s in ds.samples)
    table = inspect_semantic(ds)["pixels"]["all"]
    assert [table["classes"][c]["pixels"] for c in ds.classes] == totals[:3].tolist()
    assert table["ignored_pixels"] == totals[255]


# ---------------------------------------------------------------- split file


def camvid_like(root: Path) -> None:
    root.mkdir(parents=True)
    (root / "classes.txt").write_text("0 sky\n1 road\n2 car\n3 void (ignore)\n")
    k = 0
    for split, videos in (("train", ("vA", "vB", "vC")), ("test", ("vA", "vD"))):
        for video in videos:
            for frame in range(3):
                k += 1
                stem = f"{video}_{split}{frame:03d}"
                write_image(root / split / "images" / f"{stem}.jpg", 12, 8, seed=100 + k)
                write_mask(root / split / "labels" / f"{stem}.png",
                           stripes(8, 12, [0, (k % 2) + 1, 2, 3]))


def test_split_file_round_trip(tmp_path: Path) -> None:
    data = tmp_path / "camvid"
    camvid_like(data)
    ds = group_from_name(load_quiet(str(data)), r"^([^_]+)_")
    # what a run's splitter does (make_splits stratifies by class name, not yet by strata):
    # video vC becomes validation, vA's train frames are held out (vA is in the given test)
    def assign(sample: Sample) -> str | None:
        if sample.group == "vC":
            return "val"
        return None if sample.group == "vA" and sample.split == "train" else sample.split

    result = ds.replace(samples=[s.with_split(assign(s)) for s in ds.samples])
    assert result.record == ds.record and result.task == "semantic"
    assert {s.split for s in result.samples} == {"train", "val", "test", None}
    out = write_split_file(result, tmp_path / "run" / "split.csv")
    with open(out, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["path", "mask", "group", "split"] and len(rows) == 1 + len(result.samples)
    side = json.loads(sidecar_path(out).read_text())
    assert side["record"]["values"] == [[0, 0], [1, 1], [2, 2], [3, 255], [255, 255]]
    back = load_quiet(str(out))
    assert back.samples == result.samples
    assert back.classes == result.classes and back.record == result.record
    assert back.origin == str(out)


def test_split_file_sidecar_must_match_its_csv(tmp_path: Path) -> None:
    data = tmp_path / "d"
    camvid_like(data)
    out = write_split_file(load_quiet(str(data)), tmp_path / "split.csv")
    out.write_text(out.read_text().replace(",train", ",test", 1))
    with pytest.raises(DataError, match="was written for another version of split.csv"):
        load_semantic(str(out))


def test_hand_written_csv_without_sidecar(tmp_path: Path) -> None:
    (tmp_path / "classes.txt").write_text("bg\nfg\nother\n")
    write_image(tmp_path / "img" / "a.png", 4, 4)
    write_mask(tmp_path / "lab" / "a.png", stripes(4, 4, [0, 2]))
    (tmp_path / "list.csv").write_text("path,mask,split\nimg/a.png,lab/a.png,val\n")
    ds = load_quiet("csv:" + str(tmp_path / "list.csv"))
    assert ds.classes == ["bg", "fg", "other"] and ds.samples[0].split == "val"
    assert ds.samples[0].target.present == ("bg", "other")
    with pytest.raises(DataError, match="lacks column"):
        (tmp_path / "bad.csv").write_text("path,label\nimg/a.png,x\n")
        load_semantic(str(tmp_path / "bad.csv"))


# ---------------------------------------------------------------- COCO


def coco_doc() -> dict:
    square = [10, 10, 30, 10, 30, 20, 10, 20]  # pycocotools paints x 10..29, y 10..19
    return {
        "images": [{"id": 1, "file_name": "one.png", "width": 50, "height": 40},
                   {"id": 2, "file_name": "two.png", "width": 50, "height": 40},
                   {"id": 3, "file_name": "gone.png", "width": 50, "height": 40},
                   {"id": 4, "file_name": "wrong.png", "width": 50, "height": 40}],
        "categories": [{"id": 7, "name": "cat"}, {"id": 3, "name": "dog"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "segmentation": [square], "iscrowd": 0},
            {"id": 2, "image_id": 1, "category_id": 7, "iscrowd": 0,
             "segmentation": [[25, 15, 45, 15, 45, 35, 25, 35]]},  # overlaps dog at x25-29
            {"id": 3, "image_id": 1, "category_id": 3, "iscrowd": 0,
             "segmentation": [[10, 15, 20, 15, 20, 25, 10, 25]]},  # overlaps dog: still dog
            {"id": 4, "image_id": 2, "category_id": 9, "segmentation": [square], "iscrowd": 0},
            {"id": 5, "image_id": 99, "category_id": 3, "segmentation": [square], "iscrowd": 0},
        ],
    }


def test_coco_polygons_rasterised_once_into_the_cache(tmp_path: Path) -> None:
    folder = tmp_path / "coco"
    write_image(folder / "images" / "one.png", 50, 40)
    write_image(folder / "images" / "two.png", 50, 40, seed=2)
    write_image(folder / "images" / "wrong.png", 40, 40, seed=3)
    (folder / "ann.json").write_text(json.dumps(coco_doc()))
    cache = tmp_path / "cache"
    with pytest.warns(DataWarning, match="skipped 4 file"):
        ds = load_semantic(str(folder / "ann.json"), cache_dir=cache)
    assert ds.classes == ["background", "dog", "cat"]  # categories by id: dog 3, cat 7
    assert {p.kind for p in ds.problems} == {"annotation", "unreadable_image", "size_mismatch"}
    (sample,) = ds.samples
    mask = read_mask(sample.target, ds.record)
    expected = np.zeros((40, 50), dtype=np.uint8)
    expected[10:20, 10:30] = 1
    expected[15:25, 10:20] = 1
    expected[15:35, 25:45] = 2
    expected[15:20, 25:30] = 255  # dog and cat overlap
    assert np.array_equal(mask, expected)
    assert Path(sample.target.mask_path).parent.parent == cache / "semantic-masks"
    stamp = os.stat(sample.target.mask_path).st_mtime_ns
    with pytest.warns(DataWarning):
        again = load_semantic("coco:" + str(folder / "ann.json"), cache_dir=cache)
    assert again.samples == ds.samples and os.stat(sample.target.mask_path).st_mtime_ns == stamp
    assert any("0 new, 1 reused" in n for n in again.notes)
    # the split file names the JSON: a deleted cache is painted again on read
    out = write_split_file(ds, tmp_path / "split.csv")
    os.unlink(sample.target.mask_path)
    back = load_quiet(str(out))
    assert back.samples == ds.samples and back.rasterised_from == str(folder / "ann.json")
    assert np.array_equal(read_mask(back.samples[0].target, back.record), expected)


# ---------------------------------------------------------------- CamVid (shared data)


def shared_datasets() -> Path:
    return Path(os.environ.get("EDGETL_SHARED_DATASETS", ROOT.parent / "shared" / "datasets"))


@pytest.mark.slow
def test_camvid_standard_split_leaks_sequences() -> None:
    root = shared_datasets() / "camvid"
    if not (root / "classes.txt").is_file():
        pytest.skip(f"CamVid not found at {root} (set EDGETL_SHARED_DATASETS)")
    ds = group_from_name(load_quiet(str(root)), r"^([^_]+)_")
    assert len(ds.classes) == 11 and ds.record.void == ("void",)
    assert {n: len(ds.by_split(n)) for n in ("train", "val", "test")} == {
        "train": 367, "val": 101, "test": 233}
    report = inspect_semantic(ds)
    assert report["groups"]["groups"] == {"0001TP": {"train": 62, "test": 62},
                                          "0006R0": {"train": 101},
                                          "0016E5": {"train": 204, "val": 101},
                                          "Seq05VD": {"test": 171}}
    assert [g["group"] for g in report["groups"]["across_splits"]] == ["0001TP", "0016E5"]
    assert report["n_images"] == 701 and not report["unreadable"]
    assert report["pixels"]["all"]["ignored_pixels"] == 4344649
    assert report["pixels"]["all"]["classes"]["road"]["pixels"] == 35520717
