"""Data sources: built-in ELPV, folder trees, CSV manifests, and their errors (real files)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import imagegen
import numpy as np
import pytest

from edgetl.data.image_list import write_image_list
from edgetl.data.samples import DataWarning
from edgetl.data.sources import load_data
from edgetl.errors import DataError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def test_elpv_two_classes_counts_and_protocol_split() -> None:
    ds = load_data("elpv")
    assert ds.origin == "elpv"
    assert ds.classes == ["functional", "defective"]
    assert len(ds.samples) == 2624
    assert ds.counts() == {"functional": 1803, "defective": 821}
    assert len(ds.by_split("train")) == 1968 and len(ds.by_split("test")) == 656
    test = ds.counts("test")
    assert test == {"functional": 451, "defective": 205}  # stratified: 25% of each class
    assert all(os.path.isabs(s.path) and s.group is None for s in ds.samples)
    assert len({s.path for s in ds.samples}) == 2624


def test_elpv_four_classes_share_the_test_images() -> None:
    four = load_data("elpv:4class")
    two = load_data("elpv")
    assert four.origin == "elpv:4class"
    assert four.classes == ["p0", "p33", "p67", "p100"]
    assert four.counts() == {"p0": 1508, "p33": 295, "p67": 106, "p100": 715}
    assert len(four.by_split("train")) == 1968 and len(four.by_split("test")) == 656
    for label, n in four.counts("test").items():
        assert abs(n - four.counts()[label] * 656 / 2624) < 1.0  # stratified on 4 classes
    assert {s.path for s in four.by_split("test")} == {s.path for s in two.by_split("test")}


def test_folder_tree_skips_undecodable_files_with_a_warning(tmp_path: Path, rng) -> None:
    made = imagegen.make_class_tree(tmp_path, {"cat": 4, "dog": 3}, rng)
    truncated = imagegen.write_truncated_jpeg(tmp_path / "cat" / "broken.jpg", rng)
    text = imagegen.write_text_as_image(tmp_path / "dog" / "notes.JPG")
    (tmp_path / "dog" / "readme.txt").write_text("ignored: not an image extension")
    imagegen.write_textured(tmp_path / "dog" / "nested" / "deep.PNG", rng)
    with pytest.warns(DataWarning, match="unreadable"):
        ds = load_data(str(tmp_path))
    assert ds.origin == str(tmp_path) and ds.classes == ["cat", "dog"]
    assert ds.counts() == {"cat": 4, "dog": 4}  # nested image found, upper-case ext accepted
    reasons = dict(ds.skipped)
    assert set(reasons) == {str(truncated), str(text)}
    assert all(r.startswith("cannot decode") for r in reasons.values())
    assert {s.path for s in ds.samples} >= {str(p) for p in made["cat"]}


def test_folder_tree_without_check_keeps_every_image_file(tmp_path: Path, rng) -> None:
    imagegen.make_class_tree(tmp_path, {"a": 2, "b": 2}, rng)
    imagegen.write_text_as_image(tmp_path / "a" / "fake.png")
    assert len(load_data(str(tmp_path), check_images=False).samples) == 5


def test_cli_empty_class_folder_exits_2_with_one_line(tmp_path: Path, rng) -> None:
    imagegen.make_class_tree(tmp_path, {"good": 3, "other": 2}, rng)
    (tmp_path / "empty_class").mkdir()
    result = run_cli("data", "inspect", str(tmp_path))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "empty_class" in lines[0]


def test_cli_missing_path_exits_2_naming_it(tmp_path: Path) -> None:
    missing = tmp_path / "no_such_folder"
    result = run_cli("data", "split", str(missing), "--out", str(tmp_path / "s.csv"))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(missing) in lines[0]
    assert not (tmp_path / "s.csv").exists()


def test_single_class_and_unknown_names_are_data_errors(tmp_path: Path, rng) -> None:
    imagegen.make_class_tree(tmp_path, {"only": 3}, rng)
    with pytest.raises(DataError, match="at least 2"):
        load_data(str(tmp_path))
    with pytest.raises(DataError, match="elpv:4class"):
        load_data("elpv:9class")
    not_csv = tmp_path / "data.txt"
    not_csv.write_text("x")
    with pytest.raises(DataError, match="neither a folder nor a .csv"):
        load_data(str(not_csv))


def test_class_with_only_unreadable_files_is_an_error(tmp_path: Path, rng) -> None:
    imagegen.make_class_tree(tmp_path, {"fine": 2}, rng)
    imagegen.write_text_as_image(tmp_path / "broken" / "a.jpg")
    with pytest.warns(DataWarning), pytest.raises(DataError, match="'broken'"):
        load_data(str(tmp_path))


def test_split_folders_train_val_becomes_test(tmp_path: Path, rng) -> None:
    imagegen.make_class_tree(tmp_path / "train", {"x": 4, "y": 3}, rng)
    imagegen.make_class_tree(tmp_path / "val", {"x": 2, "y": 2}, rng)
    ds = load_data(str(tmp_path))
    assert ds.has_splits and ds.classes == ["x", "y"]
    assert len(ds.by_split("train")) == 7 and len(ds.by_split("test")) == 4
    assert ds.by_split("val") == []
    assert any("val/ is used as the test split" in n for n in ds.notes)


def test_split_folders_train_val_test_used_as_given(tmp_path: Path, rng) -> None:
    for split, n in (("train", 3), ("val", 2), ("test", 1)):
        imagegen.make_class_tree(tmp_path / split, {"x": n, "y": n}, rng)
    ds = load_data(str(tmp_path))
    assert ds.split_counts() == {"train": {"x": 3, "y": 3}, "val": {"x": 2, "y": 2},
                                 "test": {"x": 1, "y": 1}}


def test_csv_manifest_round_trip(tmp_path: Path, rng) -> None:
    imagegen.make_class_tree(tmp_path / "imgs", {"b": 3, "a": 2}, rng)
    ds = load_data(str(tmp_path / "imgs"))
    out = write_image_list(ds, tmp_path / "manifest.csv")
    back = load_data(str(out))
    assert back.origin == str(out) and back.classes == ["a", "b"]
    assert [(s.path, s.label, s.group, s.split) for s in back.samples] == \
        [(s.path, s.label, s.group, s.split) for s in ds.samples]


def test_csv_manifest_relative_paths_groups_and_splits(tmp_path: Path, rng) -> None:
    made = imagegen.make_class_tree(tmp_path / "imgs", {"a": 2, "b": 2}, rng)
    rows = ["path,label,group,split,extra"]
    for i, p in enumerate(made["a"] + made["b"]):
        rows.append(f"{p.relative_to(tmp_path)},{p.parent.name},g{i // 2},"
                    f"{'test' if i == 0 else ''},x")
    rows.append("imgs/missing.png,a,g9,")
    (tmp_path / "m.csv").write_text("\n".join(rows) + "\n")
    with pytest.warns(DataWarning, match="skipped"):
        ds = load_data(str(tmp_path / "m.csv"))
    assert len(ds.samples) == 4 and ds.skipped[0][1] == "file not found"
    assert ds.samples[0].path == str(made["a"][0]) and ds.samples[0].split == "test"
    assert [s.group for s in ds.samples] == ["g0", "g0", "g1", "g1"]
    assert [s.split for s in ds.samples[1:]] == [None, None, None]
    with pytest.warns(DataWarning):
        by_extra = load_data(str(tmp_path / "m.csv"), group_column="extra", check_images=False)
    assert {s.group for s in by_extra.samples} == {"x"}


@pytest.mark.parametrize(
    ("text", "match"),
    [("file,label\nx.png,a\n", "lacks column"), ("path,label,split\nx.png,a,holdout\n",
                                                  "not one of")],
)
def test_csv_manifest_errors(tmp_path: Path, text: str, match: str) -> None:
    (tmp_path / "bad.csv").write_text(text)
    with pytest.raises(DataError, match=match):
        load_data(str(tmp_path / "bad.csv"))


def test_elpv_missing_package_exits_2_with_install_hint() -> None:
    """sys.modules[name] = None is Python's own way to make a package unimportable."""
    code = ("import sys; sys.modules['elpv_dataset'] = None; "
            "sys.argv = ['edgetl', 'data', 'inspect', 'elpv']; "
            "from edgetl.cli.main import run; run()")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'edgetl[demo]'" in lines[0]
