"""The task seam's records: spec geometry, task record, recipe rules per task, run folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgetl.errors import RecipeError, SpecError
from edgetl.models.registry import PACKAGED
from edgetl.recipe import load_recipe
from edgetl.spec import PreprocessSpec, TaskRecord

LITE0 = PACKAGED["tf_efficientnet_lite0"].spec


def test_a_classification_spec_keeps_its_json_and_fingerprint() -> None:
    data = LITE0.to_dict()
    assert "geometry" not in data and "fill" not in data  # written only off their old default
    old = {k: v for k, v in data.items()}
    again = PreprocessSpec.from_dict(old)
    assert again.fingerprint() == LITE0.fingerprint() and again.geometry == "crop"


def test_letterbox_spec_records_its_geometry_and_fill() -> None:
    spec = LITE0.for_dense((320, 320))
    data = json.loads(spec.canonical_json())
    assert data["geometry"] == "letterbox" and data["fill"] == [114, 114, 114]
    assert data["crop_size"] is None and data["input_size"] == [320, 320]
    assert spec.fingerprint() != LITE0.fingerprint()
    assert spec.with_overrides(fill=(0, 0, 0)).fingerprint() != spec.fingerprint()
    assert "pad to 320x320 with [114, 114, 114]" in spec.describe()
    with pytest.raises(SpecError, match="needs resize_mode exact"):
        spec.with_overrides(crop_size=(300, 300))


def test_task_record_rules() -> None:
    record = TaskRecord(("cat", "dog"))
    assert record.to_dict() == {"names": ["cat", "dog"], "task": "classification",
                                "schema": "edgetl.labels/1"}
    assert TaskRecord(("raccoon",), task="detection").num_classes == 1
    with pytest.raises(SpecError, match="at least 2"):
        TaskRecord(("raccoon",))
    with pytest.raises(SpecError, match="ignore index 1 is a class index"):
        TaskRecord(("road", "car"), task="semantic", ignore_index=1)
    with pytest.raises(SpecError, match="one RGB colour"):
        TaskRecord(("road", "car"), task="semantic", palette=((0, 0, 0),))
    semantic = TaskRecord(("road", "car"), task="semantic", ignore_index=255,
                          palette=((128, 64, 128), (64, 0, 128)))
    assert TaskRecord.from_dict(json.loads(json.dumps(semantic.to_dict()))) == semantic


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "r.yaml"
    path.write_text(text)
    return path


def test_recipe_metrics_and_settings_belong_to_their_task(tmp_path: Path) -> None:
    detect = load_recipe(write(tmp_path, "task: detection\n"))
    assert detect.selection_metric == "val_map"
    assert load_recipe(None).selection_metric == "val_accuracy"
    with pytest.raises(RecipeError, match="val_accuracy does not apply to detection"):
        load_recipe(write(tmp_path, "task: detection\ntrain: {select_metric: val_accuracy}\n"))
    with pytest.raises(RecipeError, match="loss settings apply to classification"):
        load_recipe(write(tmp_path, "task: detection\nloss: {type: focal}\n"))
    stopped = load_recipe(write(tmp_path, "task: detection\nphases:\n"
                                "  - {name: A, epochs: 2, early_stopping: {patience: 2}}\n"))
    assert stopped.stopping_metric(stopped.phases[0]) == "val_map"


def test_dense_spec_from_a_recipe(tmp_path: Path) -> None:
    from edgetl.models.specs import resolve_spec

    recipe = load_recipe(write(tmp_path, "task: detection\nmodel: {input_size: 256}\n"
                                         "preprocess: {fill: [0, 0, 0]}\n"))
    spec = resolve_spec(recipe, LITE0)
    assert spec.geometry == "letterbox" and spec.input_size == (256, 256)
    assert spec.fill == (0, 0, 0) and spec.mean == LITE0.mean
    assert "geometry=letterbox" in spec.source
    with pytest.raises(RecipeError, match="crop_pct crops the image"):
        resolve_spec(load_recipe(write(tmp_path, "task: detection\n"
                                                 "preprocess: {crop_pct: 0.9}\n")), LITE0)


def test_run_folder_reads_back_what_it_wrote(tmp_path: Path) -> None:
    from edgetl.data.samples import DataSet, Sample
    from edgetl.data.targets import BoxTarget
    from edgetl.errors import UsageError
    from edgetl.runfolder import RunFolder

    image = tmp_path / "a.png"
    from PIL import Image

    Image.new("RGB", (40, 30)).save(image)
    target = BoxTarget(boxes=[(1, 2, 20, 25)], labels=["cat"], image_size=(30, 40))
    data = DataSet("d", ["cat"], [Sample(str(image), "cat", "g1", "test", target)],
                   origin=str(tmp_path), task="detection")
    run = RunFolder(tmp_path / "run")
    record = TaskRecord(("cat",), task="detection")
    run.start(load_recipe(write(tmp_path, "task: detection\n")), resume=False)
    run.write_split(data, record, {"leak_free": True})
    assert run.task_record() == record
    back = run.samples("test")
    assert [s.target for s in back] == [target] and back[0].group == "g1"
    with pytest.raises(UsageError, match="unknown split"):
        run.samples("foo")
