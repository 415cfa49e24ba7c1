"""A phase's length in optimiser steps (issue 27, part 1): epochs x steps per epoch clamped into
[min_steps, max_steps], or `steps` with a partial last epoch; why the phase ended; the recipe
refusals; and one real `finetune` counted in steps."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from edgetl.errors import EXIT_USAGE, RecipeError
from edgetl.recipe import PhaseConfig, load_recipe
from edgetl.train.length import (
    CEILING,
    EARLY_STOP,
    FLOOR,
    PLANNED,
    REVERTED,
    ended_by,
    phase_length,
)

CLI = [sys.executable, "-m", "edgetl.cli.main"]


# --------------------------------------------------------------------------- arithmetic
def test_epochs_alone_are_epochs_times_steps_per_epoch() -> None:
    length = phase_length(PhaseConfig(name="A", epochs=4), 7)
    assert (length.steps, length.epochs, length.reason) == (28, 4, PLANNED)
    assert [length.steps_in_epoch(e) for e in range(4)] == [7, 7, 7, 7]


def test_floor_raises_and_ends_with_a_partial_epoch() -> None:
    length = phase_length(PhaseConfig(name="A", epochs=2, min_steps=17), 5)
    assert (length.steps, length.epochs, length.reason) == (17, 4, FLOOR)
    assert [length.steps_in_epoch(e) for e in range(4)] == [5, 5, 5, 2]


def test_ceiling_cuts_mid_epoch() -> None:
    length = phase_length(PhaseConfig(name="A", epochs=10, min_steps=3, max_steps=23), 10)
    assert (length.steps, length.epochs, length.reason) == (23, 3, CEILING)
    assert [length.steps_in_epoch(e) for e in range(3)] == [10, 10, 3]


def test_bounds_that_do_not_bite_leave_the_plan() -> None:
    length = phase_length(PhaseConfig(name="A", epochs=3, min_steps=10, max_steps=40), 10)
    assert (length.steps, length.epochs, length.reason) == (30, 3, PLANNED)


def test_steps_give_whole_epochs_and_a_partial_last_one() -> None:
    length = phase_length(PhaseConfig(name="B", steps=7), 3)
    assert (length.steps, length.epochs, length.reason) == (7, 3, PLANNED)
    assert [length.steps_in_epoch(e) for e in range(3)] == [3, 3, 1]
    short = phase_length(PhaseConfig(name="B", steps=2), 30)  # less than one epoch
    assert (short.steps, short.epochs, short.steps_in_epoch(0)) == (2, 1, 2)


def test_zero_epochs_stay_skipped_whatever_the_floor() -> None:
    length = phase_length(PhaseConfig(name="C", epochs=0, min_steps=50), 4)
    assert (length.steps, length.epochs) == (0, 0)


def test_why_a_phase_ended() -> None:
    floor = phase_length(PhaseConfig(name="A", epochs=1, min_steps=9), 4)
    assert ended_by(floor, early_stopped=False, reverted=False) == FLOOR
    assert ended_by(floor, early_stopped=True, reverted=False) == EARLY_STOP
    assert ended_by(floor, early_stopped=False, reverted=True) == REVERTED


# --------------------------------------------------------------------------- recipe
@pytest.mark.parametrize(("overrides", "words"), [
    (["phases=[{name: A, epochs: 2, steps: 5}]"], "both epochs (2) and steps (5)"),
    (["phases=[{name: A, steps: 0}]"], "greater than or equal to 1"),
    (["phases=[{name: A, epochs: 2, min_steps: 9, max_steps: 4}]"],
     "min_steps 9 is above max_steps 4"),
    (["phases=[{name: A, lr: 0.1}]"], "needs its length: epochs or steps"),
    (["phases=[{name: A, epochs: 2, step: 5}]"], "did you mean 'phases.0.steps'"),
    (["phases=[{name: A, epochs: 2}]", "phases.A.steps=3", "phases.A.epochs=1"],
     "both epochs (1) and steps (3)"),
])
def test_bad_lengths_are_refused_at_load(overrides: list[str], words: str) -> None:
    with pytest.raises(RecipeError) as caught:
        load_recipe(None, overrides)
    line = caught.value.one_line()
    assert words in line and "\n" not in line
    assert caught.value.exit_code == EXIT_USAGE


def test_set_steps_replaces_the_files_epochs_and_back() -> None:
    recipe = load_recipe(None, ["phases=[{name: A, epochs: 2}, {name: B, steps: 9}]",
                                "phases.A.steps=5", "phases.B.epochs=1"])
    assert (recipe.phases[0].epochs, recipe.phases[0].steps) == (None, 5)
    assert (recipe.phases[1].epochs, recipe.phases[1].steps) == (1, None)


def test_shipped_recipes_keep_epochs(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[1] / "recipes"
    for path in sorted(root.glob("*.yaml")):
        for phase in load_recipe(path).phases:
            assert phase.steps is None and phase.min_steps is None and phase.max_steps is None


# --------------------------------------------------------------------------- a real run
def test_finetune_counts_phase_a_in_steps(tmp_path: Path) -> None:
    """15 training images (5 per class) at batch 4: 4 steps an epoch; steps=6 is one whole
    epoch and a partial one of 2 steps, each validated; phase B is cut by its ceiling."""
    import yaml
    from fixtures_runs import make_image_list

    manifest = make_image_list(tmp_path / "data", {"train": 5, "val": 2, "test": 2}, seed=3)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "t", "data": {"source": str(manifest)},
        "model": {"architecture": "tf_efficientnet_lite0", "input_size": 64},
        "augment": {"preset": "light"},
        "train": {"batch_size": 4, "eval_batch_size": 32, "num_threads": 1},
        "phases": [{"name": "A", "epochs": 1, "lr": 0.01, "augment": False,
                    "warmup_epochs": 0.5},
                   {"name": "B", "epochs": 2, "max_steps": 3, "unfreeze": "last", "blocks": 1,
                    "lr": 0.001}]}))
    run = tmp_path / "run"
    proc = subprocess.run([*CLI, "finetune", str(recipe), "--out", str(run),
                           "--set", "phases.A.steps=6"], capture_output=True, text=True,
                          timeout=600, env={**os.environ})
    assert proc.returncode == 0, proc.stderr
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [(x["phase"], x["phase_epoch"], x["phase_steps"]) for x in lines] == [
        ("A", 1, 4), ("A", 2, 6), ("B", 1, 3)]
    assert all("val_loss" in x for x in lines)  # the partial epochs validate too
    summary = json.loads((run / "summary.json").read_text())
    assert summary["phases"] == [
        {"phase": "A", "steps": 6, "epochs": 2, "steps_per_epoch": 4, "planned_steps": 6,
         "ended_by": "planned"},
        {"phase": "B", "steps": 3, "epochs": 1, "steps_per_epoch": 4, "planned_steps": 3,
         "ended_by": "ceiling"}]
    assert lines[1]["phase_end"] == summary["phases"][0]
    assert "phase A: 6 optimiser step(s), 2 epoch(s) (4 steps each), ended: planned" \
        in proc.stdout
    # the warm-up (half an epoch: 2 steps) then cosine over 6 steps to min_lr_ratio 0.01
    factor = 0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * 3 / 4))  # step 5: (5 - 2) / 4
    assert lines[1]["lr"]["head"] == pytest.approx(0.01 * factor, rel=1e-6)
