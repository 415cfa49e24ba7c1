"""Issue 15 part 1: model selection that survives a saturated validation split.

The rule (edgetl/train/selection.py) by hand, the validation-size warning by hand, and a real
run through the CLI whose 9-image validation split is saturated from the first epoch of phase
A: the run keeps the later phase-B epoch whose validation loss is lower, and phase B's early
stopping, on the same rule, does not stop for a lack of progress accuracy cannot show.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_train import metrics_lines, run_cli, write_recipe

from edgetl.train.selection import is_better, one_image_step, rule_words, validation_size


# --------------------------------------------------------------------------- the rule
def test_a_tie_goes_to_the_lower_validation_loss() -> None:
    assert is_better("val_accuracy", 1.0, 1.0, loss=0.06, best_loss=0.14)
    assert not is_better("val_accuracy", 1.0, 1.0, loss=0.20, best_loss=0.14)
    assert not is_better("val_accuracy", 1.0, 1.0)  # no losses known: the earlier epoch stays
    # the metric still decides when it differs, whatever the loss says
    assert is_better("val_accuracy", 0.95, 0.90, loss=0.9, best_loss=0.1)
    assert not is_better("val_accuracy", 0.89, 0.90, loss=0.01, best_loss=0.1)
    # balanced accuracy is a mean of ratios: rounding differences are still a tie
    assert is_better("val_balanced_accuracy", 0.3, 0.1 + 0.2, loss=0.1, best_loss=0.2)
    assert not is_better("val_balanced_accuracy", 0.3, 0.1 + 0.2, loss=0.3, best_loss=0.2)
    # early stopping's min_delta widens the tie: better by less than it, the loss decides
    assert is_better("val_accuracy", 0.93, 0.90, 0.05, loss=0.1, best_loss=0.2)
    assert not is_better("val_accuracy", 0.93, 0.90, 0.05, loss=0.3, best_loss=0.2)
    assert is_better("val_accuracy", 0.96, 0.90, 0.05, loss=0.3, best_loss=0.2)
    # a loss metric: lower wins, min_delta applies as before
    assert is_better("val_loss", 0.1, 0.2) and not is_better("val_loss", 0.19, 0.2, 0.05)
    assert is_better("val_map", 0.5, None)
    assert "lower val_loss" in rule_words("val_accuracy") and rule_words("val_loss") == \
        "lowest val_loss"


def test_one_image_step_and_the_small_split_warning() -> None:
    labels = ["ok"] * 25 + ["scratch"] * 15  # 40 images, the smallest class 15
    assert one_image_step("val_accuracy", labels) == pytest.approx(1 / 40)
    assert one_image_step("val_balanced_accuracy", labels) == pytest.approx(1 / 30)
    assert one_image_step("val_map", labels) is None
    size = validation_size("val_balanced_accuracy", 40, labels)
    assert size.too_small and size.per_class == {"ok": 25, "scratch": 15}
    assert "40 images" in size.warning() and "0.033" in size.warning()
    assert size.to_dict()["one_image_step"] == pytest.approx(1 / 30, abs=1e-6)
    # 150 images: one moves accuracy by 0.0067 < 0.01: enough
    assert not validation_size("val_accuracy", 150, ["a"] * 75 + ["b"] * 75).too_small
    # a min_delta above the step already ignores one image
    assert not validation_size("val_accuracy", 40, labels, min_delta=0.05).too_small
    # not a count of images (detection): never too small, the count is still reported
    detection = validation_size("val_map", 12, None)
    assert not detection.too_small and detection.to_dict()["images"] == 12


# --------------------------------------------------------------------------- a real run
@pytest.fixture(scope="module")
def easy_manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three pattern classes any pretrained backbone separates: 9 validation images."""
    from fixtures_runs import make_image_list

    return make_image_list(tmp_path_factory.mktemp("easy"),
                               {"train": 8, "val": 3, "test": 3}, seed=5)


def test_saturated_validation_keeps_the_later_epoch_with_lower_loss(tmp_path: Path,
                                                                    easy_manifest: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", easy_manifest, [
        {"name": "A", "epochs": 2, "lr": 0.002, "augment": False},
        {"name": "B", "epochs": 4, "unfreeze": "last", "blocks": 1, "lr": 0.0003,
         "augment": False, "freeze_bn": True, "early_stopping": {"patience": 1}},
    ])
    run = tmp_path / "run"
    proc = run_cli("finetune", str(recipe), "--out", str(run))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(run)
    phase_a = [line for line in lines if line["phase"] == "A"]
    phase_b = [line for line in lines if line["phase"] == "B"]
    # what the test is about: accuracy saturated in phase A, phase B lowered the loss
    assert phase_a[0]["val_accuracy"] == 1.0
    assert all(line["val_accuracy"] == 1.0 for line in lines)
    assert phase_b[1]["val_loss"] < phase_b[0]["val_loss"] < phase_a[-1]["val_loss"]

    summary = json.loads((run / "summary.json").read_text())
    lowest = min(lines, key=lambda line: line["val_loss"])
    assert summary["best_epoch"] == lowest["epoch"] and lowest["phase"] == "B"
    assert summary["selection"]["best_val_loss"] == pytest.approx(lowest["val_loss"])
    assert lowest["val_loss"] < phase_a[0]["val_loss"]  # the epoch the old rule kept
    best = json.loads((run / "best" / "checkpoint.json").read_text())
    assert best["epoch"] == lowest["epoch"]
    # early stopping on the same rule: the old one stopped B after 2 epochs (ties)
    assert len(phase_b) > 2
    assert summary["selection"]["metric"] == "val_accuracy"
    assert "lower val_loss" in summary["selection"]["rule"]
    assert summary["validation"] == {"images": 9, "per_class": {"blobs": 3, "checks": 3,
                                                                "stripes": 3},
                                     "one_image_step": pytest.approx(1 / 9, abs=1e-6),
                                     "too_small": True}
    assert any("too small to tell models apart" in w for w in summary["warnings"])
    assert "warning: the validation split is too small" in proc.stderr
    assert "9 validation images" in proc.stdout
