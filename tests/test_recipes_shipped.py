"""The recipes shipped in recipes/ validate, and say what their comments promise."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgetl.recipe import load_recipe

RECIPE_DIR = Path(__file__).parent.parent / "recipes"
RECIPES = sorted(RECIPE_DIR.glob("*.yaml"))


def test_there_are_recipes() -> None:
    assert {p.stem for p in RECIPES} >= {"elpv-quickstart", "elpv-lite0", "elpv-lite0-augment"}


@pytest.mark.parametrize("path", RECIPES, ids=lambda p: p.stem)
def test_recipe_validates_under_its_file_name(path: Path) -> None:
    recipe = load_recipe(path)
    assert recipe.name == path.stem
    assert recipe.phases and recipe.phases[0].unfreeze == "head"


def test_elpv_recipes_keep_batch_norm_frozen_after_phase_a() -> None:
    """Batch statistics after phase A undid phase A on ELPV (recipe study, 2026-11-26)."""
    for name in ("elpv-quickstart", "elpv-lite0", "elpv-lite0-augment"):
        recipe = load_recipe(RECIPE_DIR / f"{name}.yaml")
        assert all(phase.freeze_bn for phase in recipe.phases[1:]), name


def test_folder_template_settings_of_issue_15() -> None:
    """sqrt class weights, the selection default (macro-F1 on imbalanced data), batch norm in
    eval mode after phase A (see the recipe's comments and benchmarks/results/)."""
    recipe = load_recipe(RECIPE_DIR / "folder-mobilenetv2.yaml")
    assert recipe.loss.class_weights == "sqrt" and recipe.train.select_metric is None
    assert all(phase.freeze_bn for phase in recipe.phases[1:])
    assert recipe.phases[-1].early_stopping.metric is None  # follows the selection metric
