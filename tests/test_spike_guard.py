"""Issue 15 part 5: the guard on the spike when a phase unfreezes layers.

The rule (edgetl/train/spike.py) by hand, then real runs through the CLI on a data set made for
it: phases A and B saturate validation on three pattern classes, phase C unfreezes everything at
a learning rate of 0.3 (AdamW: every weight moves by about that much a step), which sends
validation accuracy to chance in its first epoch. The guard rolls back and retries at 0.1x
(`lower_lr`, the default, with a weight average in C), or rolls back and ends the phase
(`revert`); a run killed inside the retried phase resumes it at the lowered rate.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from test_train import finetune_killed_when, metrics_lines, run_cli, state_of, write_recipe

from edgetl.recipe import load_recipe
from edgetl.train.spike import decide, spike_reason, window


# --------------------------------------------------------------------------- the rule
def test_spike_rule_by_hand() -> None:
    start = {"epoch": 4, "val_balanced_accuracy": 0.75, "val_loss": 0.60}
    # the defect tree: 0.75 -> 0.50 in the first epoch of C
    assert spike_reason("val_balanced_accuracy", start,
                        {"val_balanced_accuracy": 0.50, "val_loss": 0.9}) == \
        "val_balanced_accuracy fell from 0.7500 to 0.5000"
    # ELPV's quickstart entering phase B (make demo, 2026-12-02): no spike
    assert spike_reason("val_accuracy", {"val_accuracy": 0.8499, "val_loss": 0.3690},
                        {"val_accuracy": 0.8117, "val_loss": 0.4664}) is None
    # just over and just under 20% lower
    assert spike_reason("val_accuracy", {"val_accuracy": 0.80, "val_loss": 0.4},
                        {"val_accuracy": 0.639, "val_loss": 0.4}) is not None
    assert spike_reason("val_accuracy", {"val_accuracy": 0.80, "val_loss": 0.4},
                        {"val_accuracy": 0.641, "val_loss": 0.4}) is None
    # a small metric: 40% lower but by 0.02 only (detection mAP early on)
    assert spike_reason("val_map", {"val_map": 0.05, "val_loss": 2.0},
                        {"val_map": 0.03, "val_loss": 2.1}) is None
    # the loss: more than twice and by more than 0.5
    assert spike_reason("val_balanced_accuracy", start,
                        {"val_balanced_accuracy": 0.75, "val_loss": 1.15}) is None  # 1.9x
    assert spike_reason("val_balanced_accuracy", {"val_balanced_accuracy": 0.9, "val_loss": 0.2},
                        {"val_balanced_accuracy": 0.9, "val_loss": 0.5}) is None  # +0.3
    assert spike_reason("val_balanced_accuracy", start,
                        {"val_balanced_accuracy": 0.74, "val_loss": 1.21}) == \
        "val_loss rose from 0.6000 to 1.2100"
    assert spike_reason("val_loss", {"val_loss": 0.05}, {"val_loss": 0.4}) is None  # +0.35
    assert spike_reason("val_loss", {"val_loss": 0.3}, {"val_loss": 0.9}) is not None
    assert [window(w) for w in (0, 0.5, 1, 1.5)] == [1, 2, 2, 3]
    assert decide("lower_lr", 0, 1) == "lower_lr" and decide("lower_lr", 1, 1) == "revert"
    assert decide("revert", 0, 1) == "revert" and decide("continue", 0, 1) == "continue"
    recipe = load_recipe(None)
    assert (recipe.train.on_spike, recipe.train.spike_retries, recipe.train.spike_lr_factor) \
        == ("lower_lr", 1, 0.1)


# --------------------------------------------------------------------------- real runs
@pytest.fixture(scope="module")
def easy_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures_runs import make_image_list

    return make_image_list(tmp_path_factory.mktemp("spiky"),
                               {"train": 8, "val": 3, "test": 3}, seed=5)


def spiky_recipe(path: Path, manifest: Path, on_spike: str, c_epochs: int = 2,
                 ema: bool = False) -> Path:
    phase_c = {"name": "C", "epochs": c_epochs, "unfreeze": "all", "lr": 0.3, "augment": False}
    if ema:
        phase_c["ema_epochs"] = 1.0
    recipe = write_recipe(path, manifest, [
        {"name": "A", "epochs": 2, "lr": 0.002, "augment": False},
        {"name": "B", "epochs": 2, "unfreeze": "last", "blocks": 1, "lr": 0.0003,
         "augment": False, "freeze_bn": True},
        phase_c,
    ])
    recipe.write_text(recipe.read_text().replace(
        "num_threads: 1", f"num_threads: 1\n  on_spike: {on_spike}"))
    return recipe


def test_spike_in_phase_c_rolls_back_and_retries_at_a_lower_rate(tmp_path: Path,
                                                                 easy_manifest: Path) -> None:
    run = tmp_path / "run"
    proc = run_cli("finetune", str(spiky_recipe(tmp_path / "r.yaml", easy_manifest,
                                                "lower_lr", ema=True)), "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(run)
    assert [line["phase"] for line in lines] == ["A", "A", "B", "B", "C", "C", "C"]
    phase_b, spiked, retried = lines[2:4], lines[4], lines[5:]
    b_best = max(line["val_accuracy"] for line in phase_b)
    # the data set spikes: C's first epoch at lr 0.3 fell to chance
    assert spiked["val_accuracy"] < 0.5 * b_best
    event = spiked["spike"]
    assert event["action"] == "lower_lr" and event["lr_scale"] == pytest.approx(0.1)
    assert event["start"]["epoch"] == 4 and event["phase_epoch"] == 1
    assert event["reason"].startswith("val_accuracy fell from 1.0000")
    # the retry starts the phase again (epoch 1 of C) at 0.1x every group's learning rate
    assert [line["phase_epoch"] for line in retried] == [1, 2]
    for block, lr in spiked["lr"].items():
        assert retried[0]["lr"][block] == pytest.approx(0.1 * lr)
    assert "spike" not in retried[0] and "spike" not in retried[1]
    # the run ends no worse than its phase-B best, on validation and in what it keeps
    summary = json.loads((run / "summary.json").read_text())
    assert summary["val_accuracy"] >= b_best and retried[-1]["val_accuracy"] >= b_best
    assert summary["spikes"] == [event] and summary["on_spike"] == "lower_lr"
    assert "rolled back to the phase's starting weights; retrying phase C at 0.1x" in proc.stderr
    assert not (run / "phase_start.safetensors").exists()


def test_revert_rolls_back_and_skips_the_phase(tmp_path: Path, easy_manifest: Path) -> None:
    run = tmp_path / "run"
    proc = run_cli("finetune", str(spiky_recipe(tmp_path / "r.yaml", easy_manifest, "revert",
                                                c_epochs=3)), "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(run)
    assert [line["phase"] for line in lines] == ["A", "A", "B", "B", "C"]
    assert lines[-1]["spike"]["action"] == "revert"
    summary = json.loads((run / "summary.json").read_text())
    # B's last epoch is the best one (lowest loss at a saturated accuracy): the run ends with
    # exactly those weights, the ones phase C started from
    assert summary["best_epoch"] == 4
    kept, best = state_of(run, "last"), state_of(run, "best")
    assert kept.keys() == best.keys()
    for key, value in best.items():
        assert torch.equal(kept[key], value), key
    assert summary["spikes"][0]["action"] == "revert"


def test_continue_only_reports(tmp_path: Path, easy_manifest: Path) -> None:
    run = tmp_path / "run"
    proc = run_cli("finetune", str(spiky_recipe(tmp_path / "r.yaml", easy_manifest, "continue",
                                                c_epochs=1)), "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(run)
    assert [line["phase"] for line in lines] == ["A", "A", "B", "B", "C"]
    assert lines[-1]["spike"]["action"] == "continue"
    assert lines[-1]["val_accuracy"] < 0.5  # nothing was rolled back
    assert "continuing (train.on_spike: continue)" in proc.stderr


@pytest.mark.slow
def test_a_run_killed_in_the_retried_phase_resumes_at_the_lowered_rate(
        tmp_path: Path, easy_manifest: Path) -> None:
    recipe = spiky_recipe(tmp_path / "r.yaml", easy_manifest, "lower_lr", c_epochs=3, ema=True)
    whole = tmp_path / "whole"
    assert run_cli("finetune", str(recipe), "--out", str(whole)).returncode == 0
    straight = metrics_lines(whole)

    cut = tmp_path / "cut"

    def retrying() -> bool:  # last/ saved after the roll-back: the retry is what resumes
        try:
            return json.loads((cut / "last" / "train_state.json").read_text())[
                "spike_retries"] == 1
        except (OSError, ValueError, KeyError):
            return False

    finetune_killed_when(recipe, cut, retrying, "the roll-back")
    assert len(metrics_lines(cut)) < len(straight), "the kill should land in phase C"
    saved = json.loads((cut / "last" / "train_state.json").read_text())
    assert saved["lr_scale"] == pytest.approx(0.1) and saved["phase_index"] == 2
    assert (cut / "phase_start.safetensors").is_file()
    done = run_cli("finetune", str(recipe), "--out", str(cut), "--resume")
    assert done.returncode == 0, done.stderr
    resumed = metrics_lines(cut)
    assert [(line["phase"], line["phase_epoch"]) for line in resumed] == \
        [(line["phase"], line["phase_epoch"]) for line in straight]
    for mine, theirs in zip(resumed, straight, strict=True):
        assert mine["lr"] == pytest.approx(theirs["lr"])  # the retry's lowered rate too
        assert ("spike" in mine) == ("spike" in theirs)
    assert [line["val_loss"] for line in resumed] == pytest.approx(
        [line["val_loss"] for line in straight], abs=1e-5)
    for key, value in state_of(whole, "last").items():
        assert torch.allclose(state_of(cut, "last")[key], value, atol=1e-5), key
