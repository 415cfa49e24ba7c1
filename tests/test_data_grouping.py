"""Groups from file names (`--group-from-name`): the rule, the report, and splits that obey it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import imagegen
import numpy as np
import pytest

from edgetl.data.grouping import group_from_name, group_of_name, group_report
from edgetl.data.inspect import inspect_data
from edgetl.data.samples import DataSet, Sample
from edgetl.data.sources import load_data
from edgetl.errors import UsageError

ROOT = Path(__file__).resolve().parents[1]


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edgetl.cli.main", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


def dataset(names_splits: list[tuple[str, str | None]], groups: list[str | None] | None = None
            ) -> DataSet:
    groups = groups or [None] * len(names_splits)
    samples = [Sample(path=f"/data/{name}", label="a" if i % 2 else "b", group=g, split=split)
               for i, ((name, split), g) in enumerate(zip(names_splits, groups, strict=True))]
    return DataSet(name="d", classes=["a", "b"], samples=samples, origin="/data")


@pytest.mark.parametrize(("pattern", "name", "group"), [
    (r"^([^_]+)_", "0001TP_006690.png", "0001TP"),
    (r"^([^_]+)_", "Seq05VD_f00210.png", "Seq05VD"),
    (r"^([^_]+)_", "/some/dir/0016E5_0600.jpg", "0016E5"),  # the base name, not the folder
    (r"^[a-z]+", "cam7-0001.jpg", "cam"),  # no capture group: the whole match
    (r"patient(\d+)", "scan_patient12_b.png", "12"),  # searched, not anchored
    (r"^(a)?x", "x1.png", "x"),  # the capture group did not take part: the whole match
    (r"^([^_]+)_", "nounderscore.png", None),
])
def test_group_of_name(pattern: str, name: str, group: str | None) -> None:
    import re

    assert group_of_name(name, re.compile(pattern)) == group


def test_group_from_name_sets_groups_and_reports_crossings() -> None:
    ds = dataset([("v1_0.png", "train"), ("v1_1.png", "test"), ("v2_0.png", "train"),
                  ("v2_1.png", "train"), ("v3_0.png", "val"), ("odd.png", "val")])
    grouped = group_from_name(ds, r"^([^_]+)_")
    assert [s.group for s in grouped.samples] == ["v1", "v1", "v2", "v2", "v3", None]
    assert [s.group for s in ds.samples] == [None] * 6  # the input is not changed
    assert "3 group(s) over 5 image(s); 1 name(s) did not match" in grouped.notes[-1]
    report = group_report(grouped)
    assert report["n_groups"] == 3 and report["ungrouped"] == 1
    assert report["groups"] == {"v1": {"train": 1, "test": 1}, "v2": {"train": 2},
                                "v3": {"val": 1}}
    assert report["across_splits"] == [{"group": "v1", "splits": {"train": 1, "test": 1}}]


def test_group_from_name_replaces_given_groups_and_says_so() -> None:
    ds = dataset([("v1_0.png", None), ("v1_1.png", None)], groups=["p", "q"])
    grouped = group_from_name(ds, r"^([^_]+)_")
    assert {s.group for s in grouped.samples} == {"v1"}
    assert "2 group(s) given by the source replaced" in grouped.notes[-1]
    assert group_report(grouped)["across_splits"] == []  # nothing is split yet


def test_bad_rules_are_usage_errors() -> None:
    ds = dataset([("v1_0.png", None), ("v2_0.png", None)])
    with pytest.raises(UsageError, match="not a valid regular expression"):
        group_from_name(ds, r"^([^_]+_")
    with pytest.raises(UsageError, match=r"matches none of the 2 file names \(e.g. v1_0.png\)"):
        group_from_name(ds, r"^frame")


def video_tree(root: Path) -> None:
    """Class folders whose files are frames of 4 'videos' per class (3 frames each)."""
    rng = np.random.default_rng(11)
    for label in ("cat", "dog"):
        for video in range(4):
            for frame in range(3):
                imagegen.write_textured(root / label / f"{label}{video}_{frame:03d}.jpg", rng,
                                        (96, 96))


def test_split_keeps_each_video_in_one_split_on_a_class_tree(tmp_path: Path) -> None:
    data = tmp_path / "data"
    video_tree(data)
    out, report_path = tmp_path / "split.csv", tmp_path / "r.json"
    result = run_cli("data", "split", str(data), "--out", str(out), "--val", "0.25",
                     "--test", "0.25", "--group-from-name", r"^([a-z]+\d)_",
                     "--json", str(report_path))
    assert result.returncode == 0, result.stderr
    back = load_data(str(out))
    by_group: dict[str, set] = {}
    for s in back.samples:
        by_group.setdefault(s.group, set()).add(s.split)
    assert len(by_group) == 8 and all(len(splits) == 1 for splits in by_group.values())
    assert {split for splits in by_group.values() for split in splits} == {"train", "val", "test"}
    report = json.loads(report_path.read_text())
    assert report["n_groups"] == 8 and report["groups_across_splits"] == []


def test_inspect_lists_groups_that_cross_given_splits(tmp_path: Path) -> None:
    video_tree(tmp_path / "train")
    rng = np.random.default_rng(12)
    imagegen.write_textured(tmp_path / "test" / "cat" / "cat0_100.jpg", rng, (96, 96))
    imagegen.write_textured(tmp_path / "test" / "dog" / "dog9_000.jpg", rng, (96, 96))
    ds = group_from_name(load_data(str(tmp_path)), r"^([a-z]+\d)_")
    report = inspect_data(ds)
    assert report["groups"]["across_splits"] == [{"group": "cat0",
                                                  "splits": {"train": 3, "test": 1}}]
    assert any("1 group(s) cross the given splits" in w for w in report["warnings"])
    result = run_cli("data", "inspect", str(tmp_path), "--group-from-name", r"^([a-z]+\d)_")
    assert result.returncode == 0, result.stderr
    assert "Groups across splits" in result.stdout and "cat0" in result.stdout
    bad = run_cli("data", "inspect", str(tmp_path), "--group-from-name", "(")
    assert bad.returncode == 2 and bad.stderr.startswith("error: group rule")
    assert "Traceback" not in bad.stderr


def one_split_per_group(samples: list) -> dict[str, set]:
    by_group: dict[str, set] = {}
    for s in samples:
        by_group.setdefault(s.group, set()).add(s.split)
    return by_group


def test_finetune_group_from_name_keeps_each_video_in_one_split(tmp_path: Path) -> None:
    """finetune --group-from-name: the run's own split keeps every video on one side."""
    from reliability_common import tiny_recipe

    data = tmp_path / "data"
    video_tree(data)
    recipe = tiny_recipe(tmp_path / "r.yaml", "unused",
                         data={"val_fraction": 0.25, "test_fraction": 0.25})
    run = tmp_path / "run"
    result = run_cli("finetune", str(recipe), "--data", str(data), "--out", str(run),
                     "--group-from-name", r"^([a-z]+\d)_", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    back = load_data(str(run / "split.csv"))
    by_group = one_split_per_group(back.samples)
    assert len(by_group) == 8 and all(len(splits) == 1 for splits in by_group.values())
    assert {split for splits in by_group.values() for split in splits} == {"train", "val", "test"}
    bad = run_cli("finetune", str(recipe), "--data", str(data), "--out", str(tmp_path / "r2"),
                  "--group-from-name", "zzz")
    assert bad.returncode == 2 and "matches none of the 24 file names" in bad.stderr
    assert not (tmp_path / "r2" / "best").exists()


def test_recipe_group_rule_applies_to_a_dense_task(tmp_path: Path) -> None:
    """data.group_from_name (what --group-from-name sets) groups a semantic set's scenes."""
    from seggen import make_masks

    from edgetl.recipe import load_recipe
    from edgetl.train.rundata import make_split

    root = make_masks(tmp_path / "seg", 30)
    recipe = load_recipe(None, ["task=semantic", f"data.source={root}",
                                "data.val_fraction=0.2", "data.test_fraction=0.2",
                                r"data.group_from_name='-\d\d(\d)\.'"])
    split = make_split(recipe)
    by_group = one_split_per_group(split.data.samples)
    assert sorted(by_group) == [str(d) for d in range(10)]
    assert all(len(splits) == 1 for splits in by_group.values())
    assert split.leakage["groups_across_splits"] == []
