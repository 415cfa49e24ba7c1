"""Issue 15 part 6: imbalance handling that does not give the majority class away.

Class-weight formulas against hand-computed values, the report's warning rule (majority-class
baseline, collapsed precision) on hand-made confusion matrices, the selection default for
imbalanced data, and a real run on an imbalanced inspection-like tree made by the test.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgetl.errors import RecipeError
from edgetl.metrics.imbalance import (
    collapsed_classes,
    default_select_metric,
    imbalance_checks,
    imbalance_ratio,
    majority_baseline,
)
from edgetl.recipe import LossConfig, load_recipe
from edgetl.train.losses import (
    balanced_class_weights,
    build_loss,
    class_weights_for,
    effective_number_weights,
    sqrt_class_weights,
)


# --------------------------------------------------------------------------- weights
def test_class_weight_formulas_by_hand() -> None:
    # balanced (unchanged): n / (k n_c) = 100/(2*80), 100/(2*20)
    assert np.allclose(balanced_class_weights([80, 20]), [0.625, 2.5])
    # sqrt: w_c = N / (sqrt(n_c) * sum_j sqrt(n_j)) = 100 / (sqrt(80) * (sqrt(80) + sqrt(20)))
    # = 100 / (80 + 40) = 5/6 and 100 / (40 + 20) = 5/3; their ratio is sqrt(80/20) = 2
    assert np.allclose(sqrt_class_weights([80, 20]), [5 / 6, 5 / 3])
    # effective number, beta 0.9, counts 2 and 1: E = (1 - 0.81)/0.1 = 1.9 and 1;
    # w proportional to 1/E, scaled so 2 w_0 + 1 w_1 = 3: w = (10/13, 19/13)
    assert np.allclose(effective_number_weights([2, 1], 0.9), [10 / 13, 19 / 13])
    # every rule keeps the mean weight per training image at 1
    counts = np.array([940, 250, 80, 32])
    for weights in (balanced_class_weights(counts), sqrt_class_weights(counts),
                    effective_number_weights(counts, 0.99)):
        assert (weights * counts).sum() == pytest.approx(counts.sum())
    # at a 30:1 ratio: raw inverse frequency 30x, sqrt 5.5x, effective (0.99) 3.6x
    ratio = {name: rule[1] / rule[0] for name, rule in (
        ("balanced", balanced_class_weights([960, 32])),
        ("sqrt", sqrt_class_weights([960, 32])),
        ("effective", effective_number_weights([960, 32], 0.99)))}
    assert ratio["balanced"] == pytest.approx(30)
    assert ratio["sqrt"] == pytest.approx(30 ** 0.5)
    assert ratio["effective"] == pytest.approx((1 - 0.99 ** 960) / (1 - 0.99 ** 32))


def test_recipe_values_pick_their_rule() -> None:
    counts = [30, 10]
    assert class_weights_for(LossConfig(), counts) is None
    assert class_weights_for(LossConfig(class_weights="balanced"), counts) == \
        pytest.approx([40 / 60, 40 / 20])  # what existing recipes computed, unchanged
    assert class_weights_for(LossConfig(class_weights="sqrt"), counts) == \
        pytest.approx(sqrt_class_weights(counts))
    beta = LossConfig(class_weights="effective", effective_beta=0.9)
    assert class_weights_for(beta, counts) == pytest.approx(effective_number_weights(counts, 0.9))
    _, weights = build_loss(LossConfig(class_weights="sqrt", type="focal"), counts)
    assert weights == pytest.approx(list(sqrt_class_weights(counts)))
    with pytest.raises(RecipeError, match="at least one training image per class"):
        sqrt_class_weights([5, 0])
    with pytest.raises(RecipeError, match="2 values for 3 classes"):
        class_weights_for(LossConfig(class_weights=[1.0, 2.0]), [1, 2, 3])
    with pytest.raises(RecipeError, match="applies to classification"):
        load_recipe(None, ["task=semantic", "loss.class_weights=sqrt"])


# --------------------------------------------------------------------------- the warnings
def test_the_issue_defect_tree_report_warns_twice_over() -> None:
    """The issue's test split (n = 201): 91 of 143 defect-free images called defective."""
    names = ["defect-free", "crack", "fray"]
    confusion = [[52, 37, 54],  # rows: true class; columns: predicted
                 [0, 30, 0],
                 [0, 0, 28]]
    checks = imbalance_checks(confusion, names)
    assert checks["majority_baseline"] == {"class": "defect-free",
                                           "accuracy": pytest.approx(143 / 201)}
    notes = checks["warnings"]
    assert len(notes) == 3
    assert notes[0] == ("accuracy 54.7% is below the majority-class baseline 71.1% (always "
                        "answering 'defect-free')")
    # crack: predicted 67 times (33% of 201), 30 right: 44.8%; fray: 82 times, 28 right
    assert notes[1].startswith("class 'crack' is predicted for 67 of 201 images but only 44.8%")
    assert "37 false alarms" in notes[1]
    assert notes[2].startswith("class 'fray' is predicted for 82 of 201 images but only 34.1%")
    assert [row["class"] for row in collapsed_classes(confusion, names)] == ["crack", "fray"]


def test_no_warning_for_a_healthy_report_and_each_rule_alone() -> None:
    # ELPV-like: 87.7% against a 68.8% baseline, 'defective' precision 0.83
    assert imbalance_checks([[420, 31], [50, 155]], ["functional", "defective"])["warnings"] \
        == []
    # below the baseline (93% < 98%) but the rare class is predicted for 7% of the images only
    rare = imbalance_checks([[92, 6], [1, 1]], ["ok", "defect"])["warnings"]
    assert len(rare) == 1 and rare[0].startswith("accuracy 93.0% is below")
    # above the baseline (86% > 80%) but 'scratch' is right in 8 of its 22 calls (36.4%);
    # (with two classes the two rules coincide: above the baseline means precision > 0.5)
    collapsed = imbalance_checks([[70, 10, 0], [0, 8, 0], [0, 4, 8]],
                                 ["ok", "scratch", "dent"])["warnings"]
    assert collapsed == ["class 'scratch' is predicted for 22 of 100 images but only 36.4% of "
                         "them are right (14 false alarms; 8 images of the class): its precision "
                         "collapsed"]
    assert majority_baseline([0, 0], ["a", "b"])["accuracy"] == 0.0
    # a tiny split: 'b' called twice, both wrong, is 50% of the calls but only 2 images
    tiny = imbalance_checks([[2, 2], [0, 0]], ["a", "b"])["warnings"]
    assert len(tiny) == 1 and tiny[0].startswith("accuracy 50.0% is below")


def test_macro_f1_selects_when_the_training_classes_are_imbalanced() -> None:
    assert imbalance_ratio([940, 32]) == pytest.approx(29.375)
    assert default_select_metric([30, 10]) == "val_macro_f1"  # 3:1 counts as imbalanced
    assert default_select_metric([29, 10]) is None
    assert default_select_metric([1057, 492]) is None  # ELPV quickstart training split, 2.1:1


# --------------------------------------------------------------------------- a real run
@pytest.fixture(scope="module")
def defect_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from clsgen import make_defect_tree

    return make_defect_tree(tmp_path_factory.mktemp("defects"),
                            {"train": (120, 8), "val": (40, 6), "test": (80, 12)}, seed=2)


TEMPLATE = Path(__file__).parent.parent / "recipes" / "classification-mobilenetv2.yaml"
SMALL = ["--set", "model.input_size=64", "--set", "train.num_threads=1"]
# What the template did before issue 15 (class weights, selection, batch norm, no guard)
OLD_TEMPLATE = ["loss.class_weights=balanced", "train.select_metric=val_balanced_accuracy",
                "phases.C.early_stopping.metric=val_balanced_accuracy",
                "phases.B.freeze_bn=false", "phases.C.freeze_bn=false", "train.on_spike=continue"]


def test_the_folder_template_keeps_the_majority_class(tmp_path: Path, defect_tree: Path) -> None:
    """Test split 80 ok : 12 defect (baseline 87.0%); training 120 : 8. The template as shipped
    stays above the baseline and its minority recall above chance (1/2 for two classes)."""
    from test_train import run_cli

    run = tmp_path / "run"
    proc = run_cli("finetune", str(TEMPLATE), "--data", str(defect_tree), "--out", str(run),
                   *SMALL)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((run / "summary.json").read_text())
    report = json.loads((run / "test_metrics.json").read_text())
    assert summary["selection"]["metric"] == "val_macro_f1"
    assert summary["selection"]["chosen_by"].startswith("training classes 15.0:1, imbalanced")
    assert summary["class_weights"] == pytest.approx(list(sqrt_class_weights([8, 120])))
    assert report["majority_baseline"] == {"class": "ok", "accuracy": pytest.approx(80 / 92)}
    assert report["accuracy"] > report["majority_baseline"]["accuracy"]
    assert report["per_class"]["defect"]["recall"] > 0.5
    assert report["warnings"] == [] and summary["test_majority_baseline"]["class"] == "ok"


def test_the_old_template_is_warned_about(tmp_path: Path, defect_tree: Path) -> None:
    """The same tree with the template's pre-issue-15 settings: the issue's failure (accuracy
    below the majority baseline, 'defect' predicted for many ok images), now said in
    finetune's warnings, summary.json and `edgetl evaluate`."""
    from test_train import run_cli

    run = tmp_path / "run"
    proc = run_cli("finetune", str(TEMPLATE), "--data", str(defect_tree), "--out", str(run),
                   *SMALL, *[arg for item in OLD_TEMPLATE for arg in ("--set", item)])
    assert proc.returncode == 0, proc.stderr
    report = json.loads((run / "test_metrics.json").read_text())
    cm = np.array(report["confusion_matrix"])  # rows true, columns predicted: defect, ok
    names = report["class_names"]
    defect = names.index("defect")
    assert report["accuracy"] < 80 / 92  # the failure this rule is for
    assert cm[:, defect].sum() >= 0.1 * cm.sum() and report["per_class"]["defect"][
        "precision"] < 0.5
    summary = json.loads((run / "summary.json").read_text())
    test_notes = [n for n in summary["warnings"] if n.startswith("test split: ")]
    assert test_notes == [f"test split: {note}" for note in report["warnings"]]
    assert len(test_notes) == 2 and "below the majority-class baseline 87.0%" in test_notes[0]
    assert "warning: test split: class 'defect' is predicted for" in proc.stderr
    evaluated = run_cli("evaluate", str(run), "--json", str(tmp_path / "e.json"))
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads((tmp_path / "e.json").read_text())["warnings"] == report["warnings"]
    assert evaluated.stderr.count("warning: test split: ") == 2
    assert "majority-class baseline 87.0" in evaluated.stdout
