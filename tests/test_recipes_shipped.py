"""The recipes shipped in recipes/ validate, and say what their comments promise."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from reliability_common import edgetl

from edgetl.recipe import load_recipe

RECIPE_DIR = Path(__file__).parent.parent / "recipes"
TEMPLATES = sorted(RECIPE_DIR.glob("*.yaml"))
EXAMPLES = sorted((RECIPE_DIR / "examples").glob("*.yaml"))
RECIPES = TEMPLATES + EXAMPLES
ELPV = ("elpv-quickstart", "elpv-lite0", "elpv-lite0-augment")


def test_there_are_recipes() -> None:
    assert {p.stem for p in TEMPLATES} == {
        "classification-lite0-cpu", "classification-mobilenetv2", "detection-lite0",
        "detection-mobilenetv2", "semantic-lite0", "instance-mobilenetv2"}
    assert {p.stem for p in EXAMPLES} == set(ELPV)


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates_under_its_file_name(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    assert recipe.phases and recipe.phases[0].unfreeze == "head"


@pytest.mark.parametrize("path", TEMPLATES, ids=lambda p: p.stem)
def test_template_is_named_task_backbone_and_needs_data(path: Path) -> None:
    """`<task>-<backbone>[-cpu]`; no data source of its own (the user's --data), a header that
    says which keys to change first and which measured figure it stands on."""
    from edgetl.models.registry import list_backbones

    recipe = load_recipe(path)
    short = {"tf_efficientnet_lite0": "lite0", "mobilenetv2_100": "mobilenetv2"}
    assert path.stem in (f"{recipe.task}-{short[recipe.model.architecture]}",
                         f"{recipe.task}-{short[recipe.model.architecture]}-cpu")
    assert recipe.model.architecture in {b["name"] for b in list_backbones()}
    assert recipe.data.source is None
    header = path.read_text().split("\nname:")[0]
    assert "# Change first: data.source" in header
    assert re.search(r"^# Measured: .+", header, re.M)
    assert "issue" not in header.lower()


def test_elpv_examples_name_their_source() -> None:
    for name in ELPV:
        assert load_recipe(RECIPE_DIR / "examples" / f"{name}.yaml").data.source == "elpv"


def test_rgb_cpu_template_assumes_nothing_of_elpv() -> None:
    """The CPU template is the quickstart's method without grayscale or turned views."""
    cpu = load_recipe(RECIPE_DIR / "classification-lite0-cpu.yaml")
    quick = load_recipe(RECIPE_DIR / "examples" / "elpv-quickstart.yaml")
    assert cpu.preprocess.color_mode is None and quick.preprocess.color_mode == "grayscale3"
    assert set(cpu.phases[-1].cached_views) == {"identity", "hflip"}
    same = ("epochs", "unfreeze", "blocks", "lr", "augment", "freeze_bn", "ema_epochs")
    for mine, theirs in zip(cpu.phases, quick.phases, strict=True):
        assert {k: getattr(mine, k) for k in same} == {k: getattr(theirs, k) for k in same}


def test_elpv_recipes_keep_batch_norm_frozen_after_phase_a() -> None:
    """Batch statistics after phase A undid phase A on ELPV (recipe study, 2026-11-26)."""
    for name in ELPV:
        recipe = load_recipe(RECIPE_DIR / "examples" / f"{name}.yaml")
        assert all(phase.freeze_bn for phase in recipe.phases[1:]), name


def test_classification_template_imbalance_settings() -> None:
    """sqrt class weights, the selection default (macro-F1 on imbalanced data), batch norm in
    eval mode after phase A (see the recipe's comments and benchmarks/results/)."""
    recipe = load_recipe(RECIPE_DIR / "classification-mobilenetv2.yaml")
    assert recipe.loss.class_weights == "sqrt" and recipe.train.select_metric is None
    assert all(phase.freeze_bn for phase in recipe.phases[1:])
    assert recipe.phases[-1].early_stopping.metric is None  # follows the selection metric


def test_recipe_without_data_is_one_line_exit_2(tmp_path: Path) -> None:
    """No data source is an error naming both ways to give one, never a default data set."""
    proc = edgetl("finetune", RECIPE_DIR / "classification-lite0-cpu.yaml", "--out",
                  tmp_path / "run")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {RECIPE_DIR / 'classification-lite0-cpu.yaml'} names no data: give --data "
        "PATH or set data.source in the recipe"]
    assert not (tmp_path / "run").exists()
