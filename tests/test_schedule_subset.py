"""benchmarks/schedule_subset.py: the subset keeps validation and test, cuts training by seed."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import schedule_subset  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


def _box_csv(path: Path) -> None:
    rows = [{"path": f"/d/{split}{i}.jpg", "xmin": 1, "ymin": 1, "xmax": 5, "ymax": 5,
             "label": "a", "difficult": 0, "group": "", "split": split, "width": 9,
             "height": 9}
            for split, n in (("train", 60), ("val", 7), ("test", 9)) for i in range(n)
            for _box in range(2)]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def test_csv_cut_keeps_val_and_test_and_is_seeded(tmp_path: Path) -> None:
    full = tmp_path / "full.csv"
    _box_csv(full)
    sizes = schedule_subset.cut_csv(full, tmp_path / "a.csv", 35, 0)
    assert sizes == {"test": 9, "train": 35, "val": 7}
    schedule_subset.cut_csv(full, tmp_path / "b.csv", 35, 0)
    schedule_subset.cut_csv(full, tmp_path / "c.csv", 35, 1)
    assert (tmp_path / "a.csv").read_text() == (tmp_path / "b.csv").read_text()
    assert (tmp_path / "a.csv").read_text() != (tmp_path / "c.csv").read_text()
    rows = list(csv.DictReader((tmp_path / "a.csv").open()))
    assert len(rows) == 2 * (35 + 7 + 9)


def test_coco_cut_drops_the_annotations_of_dropped_images(tmp_path: Path) -> None:
    images = [{"id": i, "file_name": f"{i}.png", "split": s, "group": None}
              for i, s in enumerate(["train"] * 50 + ["val"] * 5 + ["test"] * 6)]
    annotations = [{"id": 10 * im["id"] + k, "image_id": im["id"]}
                   for im in images for k in range(3)]
    full = tmp_path / "full.json"
    full.write_text(json.dumps({"images": images, "annotations": annotations}))
    assert schedule_subset.cut_coco(full, tmp_path / "a.json", 35, 0) == {
        "test": 6, "train": 35, "val": 5}
    cut = json.loads((tmp_path / "a.json").read_text())
    assert len(cut["annotations"]) == 3 * 46
    assert {a["image_id"] for a in cut["annotations"]} == {im["id"] for im in cut["images"]}


def test_four_times_and_full_set_steps_of_a_shipped_recipe() -> None:
    recipe = yaml.safe_load((REPO / "recipes" / "detection-lite0.yaml").read_text())
    sets = schedule_subset.longer(recipe, 4)
    epochs = {p["name"]: p["epochs"] for p in recipe["phases"]}
    for name, n in epochs.items():
        assert f"phases.{name}.epochs={4 * n}" in sets
    steps = schedule_subset.full_set_steps(recipe, 140)
    assert [row["steps"] for row in steps] == [18 * n for n in epochs.values()]
