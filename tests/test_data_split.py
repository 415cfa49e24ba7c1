"""Leakage-safe splits: stratified, grouped, near-duplicates kept together, given splits kept."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import imagegen
import numpy as np
import pytest

from edgetl.data.samples import DataSet
from edgetl.data.sources import load_data
from edgetl.data.split import leakage_report, make_splits
from edgetl.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]
SIZES = ((96, 96), (128, 96), (96, 128), (160, 120))


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def tree_with_copies(root: Path, per_class: int = 16, copies_per_class: int = 2,
                     seed: int = 7) -> list[tuple[str, str]]:
    """Class tree where some images reappear resized and re-encoded under other names."""
    rng = np.random.default_rng(seed)
    made = imagegen.make_class_tree(root, {"ant": per_class, "bee": per_class,
                                           "fly": per_class}, rng, sizes=SIZES)
    pairs = []
    for label, paths in made.items():
        for k, src in enumerate(paths[:copies_per_class]):
            scale = (0.7, 1.4)[k % 2]
            dst = imagegen.resized_copy(src, root / label / f"zz_copy_{k}.jpg", scale, quality=80)
            pairs.append((str(src), str(dst)))
    return pairs


def splits_of(ds: DataSet) -> dict[str, str | None]:
    return {s.path: s.split for s in ds.samples}


def test_cli_split_keeps_resized_copies_in_one_split(tmp_path: Path) -> None:
    data = tmp_path / "data"
    pairs = tree_with_copies(data)
    out, report_path = tmp_path / "split.csv", tmp_path / "report.json"
    result = run_cli("data", "split", str(data), "--out", str(out), "--val", "0.2",
                     "--test", "0.2", "--seed", "3", "--json", str(report_path))
    assert result.returncode == 0, result.stderr
    back = load_data(str(out))  # the output is a valid manifest
    split = splits_of(back)
    assert len(split) == 3 * 16 + len(pairs)
    for original, copy in pairs:
        assert split[original] is not None and split[original] == split[copy]
    report = json.loads(report_path.read_text())
    clusters = [set(c["paths"]) for c in report["duplicate_clusters"]]
    for original, copy in pairs:
        assert {original, copy} in clusters
        assert Path(copy).name in result.stdout  # listed on screen too
    assert report["leak_free"] and report["clusters_across_splits"] == []
    n = len(split)
    for name, fraction in (("val", 0.2), ("test", 0.2)):
        assert abs(report["split_sizes"][name] - fraction * n) <= 3
        for label, count in report["splits"][name].items():
            assert abs(count - fraction * back.counts()[label]) <= 2  # stratified


def test_without_near_duplicate_handling_copies_would_leak(tmp_path: Path) -> None:
    """The same data and seed with near-duplicates off lets pairs cross: the test has teeth."""
    pairs = tree_with_copies(tmp_path)
    ds = load_data(str(tmp_path))
    naive = splits_of(make_splits(ds, 0.2, 0.2, 3, -1))
    assert any(naive[a] != naive[b] for a, b in pairs)
    safe = make_splits(ds, 0.2, 0.2, 3, 6)
    assert leakage_report(safe)["leak_free"]


def _grouped_manifest(path: Path, rng: np.random.Generator) -> Path:
    rows = [("path", "label", "site")]
    k = 0
    for g in range(30):
        label = ("red", "green", "blue")[g % 3]
        for _ in range(1 + g % 5):
            img = imagegen.write_textured(path.parent / "img" / f"{k:03d}.png", rng, (64, 64))
            rows.append((str(img.relative_to(path.parent)), label, f"site{g}"))
            k += 1
    with open(path, "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


def test_grouped_split_never_cuts_a_group(tmp_path: Path) -> None:
    manifest = _grouped_manifest(tmp_path / "m.csv", np.random.default_rng(5))
    result = run_cli("data", "split", str(manifest), "--group-column", "site", "--out",
                     str(tmp_path / "s.csv"), "--json", str(tmp_path / "r.json"))
    assert result.returncode == 0, result.stderr
    back = load_data(str(tmp_path / "s.csv"))
    where: dict[str, set] = defaultdict(set)
    for s in back.samples:
        where[s.group].add(s.split)
    assert len(where) == 30 and all(len(v) == 1 and None not in v for v in where.values())
    report = json.loads((tmp_path / "r.json").read_text())
    assert report["n_groups"] == 30 and report["groups_across_splits"] == []
    assert all(report["split_sizes"][name] > 0 for name in ("train", "val", "test"))


def test_given_test_split_is_kept_and_its_copies_held_out_of_train(tmp_path: Path) -> None:
    rng = np.random.default_rng(11)
    imagegen.make_class_tree(tmp_path / "train", {"u": 12, "v": 12}, rng, sizes=SIZES)
    test_imgs = imagegen.make_class_tree(tmp_path / "test", {"u": 4, "v": 4}, rng, sizes=SIZES)
    leak = imagegen.resized_copy(test_imgs["u"][0], tmp_path / "train" / "u" / "leak.jpg", 1.3)
    ds = load_data(str(tmp_path))
    result = make_splits(ds, val=0.2, test=0.5, seed=0, near_dup_threshold=6)
    before, after = splits_of(ds), splits_of(result)
    assert {p for p, s in after.items() if s == "test"} == {p for p, s in before.items()
                                                          if s == "test"}
    assert after[str(leak)] is None  # held out: a copy of a test image
    assert abs(len(result.by_split("val")) - 0.2 * len(ds.samples)) <= 2
    report = leakage_report(result)
    assert report["leak_free"] and report["held_out"] == [str(leak)]
    assert any("held out" in n for n in result.notes)


def test_splits_are_seeded_and_independent_of_row_order(tmp_path: Path) -> None:
    imagegen.make_class_tree(tmp_path, {"a": 20, "b": 10}, np.random.default_rng(2))
    ds = load_data(str(tmp_path))
    first = splits_of(make_splits(ds, 0.2, 0.2, 0, 6))
    assert first == splits_of(make_splits(ds.replace(samples=ds.samples[::-1]), 0.2, 0.2, 0, 6))
    assert first != splits_of(make_splits(ds, 0.2, 0.2, 1, 6))
    counts = defaultdict(int)
    for s in first.values():
        counts[s] += 1
    assert counts == {"train": 18, "val": 6, "test": 6}


def test_fractions_are_checked(tmp_path: Path) -> None:
    imagegen.make_class_tree(tmp_path, {"a": 2, "b": 2}, np.random.default_rng(0))
    ds = load_data(str(tmp_path))
    with pytest.raises(UsageError):
        make_splits(ds, 0.5, 0.5, 0, 6)
    with pytest.raises(UsageError):
        make_splits(ds, -0.1, 0.2, 0, 6)


def test_elpv_keeps_protocol_test_set_and_carves_val_from_train() -> None:
    ds = load_data("elpv")
    result = make_splits(ds, val=0.15, test=0.15, seed=0, near_dup_threshold=6)
    test_before = {s.path for s in ds.by_split("test")}
    assert {s.path for s in result.by_split("test")} == test_before
    assert abs(len(result.by_split("val")) - 0.15 * 2624) <= 1
    report = leakage_report(result)
    assert report["leak_free"]
    # Every held-out image sits in a duplicate cluster together with a test image.
    test_clusters = [set(c["paths"]) for c in report["duplicate_clusters"]
                     if set(c["paths"]) & test_before]
    assert all(any(p in c for c in test_clusters) for p in report["held_out"])
    assert len(result.by_split("train")) + len(report["held_out"]) + \
        len(result.by_split("val")) == 1968


def _pin_set(root: Path) -> Path:
    """36 images in 3 unbalanced classes, 4 groups of 3, two resized copies (PNG only)."""
    rng = np.random.default_rng(2024)
    rows = [("path", "label", "group")]
    k = 0
    for label, n in (("ant", 22), ("bee", 9), ("fly", 5)):
        for i in range(n):
            name = f"{label}_{i:02d}.png"
            imagegen.write_textured(root / name, rng, imagegen.SIZES[k % len(imagegen.SIZES)])
            rows.append((name, label, f"g{i // 3}" if label == "ant" and i < 12 else ""))
            k += 1
    for label, i in (("bee", 1), ("fly", 2)):
        copy = imagegen.resized_copy(root / f"{label}_{i:02d}.png", root / f"{label}_copy.png",
                                     1.3)
        rows.append((copy.name, label, ""))
    with open(root / "pin.csv", "w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return root / "pin.csv"


# Computed by the single-label splitter (commit 44a7605) before stratification moved to class
# sets: a classification split must not change when dense tasks share the code.
PINNED = {
    0: {"val": ["ant_09", "ant_10", "ant_11", "ant_13", "ant_21", "bee_03", "bee_05", "fly_01"],
        "test": ["ant_12", "ant_15", "ant_17", "ant_19", "bee_00", "bee_07", "fly_03"]},
    5: {"val": ["ant_09", "ant_10", "ant_11", "ant_12", "ant_16", "bee_04", "bee_08", "fly_03"],
        "test": ["ant_14", "ant_15", "ant_18", "ant_20", "bee_05", "bee_07", "fly_00"]},
}


@pytest.mark.parametrize("seed", sorted(PINNED))
def test_classification_split_is_pinned(tmp_path: Path, seed: int) -> None:
    ds = load_data(str(_pin_set(tmp_path)))
    result = make_splits(ds, 0.2, 0.2, seed, 6)
    for name, stems in PINNED[seed].items():
        assert sorted(Path(s.path).stem for s in result.by_split(name)) == stems
    assert len(result.by_split("train")) == 38 - 15
    assert all(s.split is not None for s in result.samples)
