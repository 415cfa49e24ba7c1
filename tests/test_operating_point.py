"""Operating points: thresholds chosen on validation by hand-checkable rules, recorded in the
artifact at export, applied by predict (without torch), evaluate ARTIFACT and verify."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from edgetl.decision import OperatingPoint, Target, decide
from edgetl.errors import RecipeError, UsageError
from edgetl.metrics.operating_point import (
    binary_figures,
    choose,
    choose_threshold,
    figures_with_intervals,
    pr_curves,
)

REPO = Path(__file__).resolve().parents[1]
CLI = [sys.executable, "-m", "edgetl.cli.main"]

# Nine validation images of one class against the rest, scores sorted for reading:
#   score     0.9 0.8 0.7 0.6 0.55 0.4 0.3 0.2 0.1
#   positive   1   1   0   1   0    1   0   0   1
SCORES = np.array([0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1])
POSITIVE = np.array([1, 1, 0, 1, 0, 1, 0, 0, 1], dtype=bool)


# --------------------------------------------------------------------------- by hand
@pytest.mark.parametrize(("target", "expected"), [
    (1.0, 0.1),  # all 5 positives: the lowest positive score
    (0.8, 0.4),  # ceil(0.8 * 5) = 4 positives: the 4th highest positive score
    (0.6, 0.6),  # 3 positives
    (0.5, 0.6),  # ceil(2.5) = 3 positives, not 2
    (0.2, 0.9),  # 1 positive
])
def test_recall_threshold_by_hand(target: float, expected: float) -> None:
    assert choose_threshold(POSITIVE, SCORES, "recall", target) == expected
    caught = POSITIVE[np.greater_equal(SCORES, expected)].sum() / POSITIVE.sum()
    assert caught >= target


@pytest.mark.parametrize(("target", "expected"), [
    (1.0, 0.8),   # 0.8: 2/2; 0.7 would be 2/3
    (0.75, 0.6),  # 0.6: 3/4 = 0.75 (the lowest threshold that reaches it)
    (0.6, 0.4),   # 0.4: 4/6 = 0.67; 0.3 would be 4/7 = 0.57
    (0.5, 0.1),   # every image: 5/9 = 0.56
])
def test_precision_threshold_by_hand(target: float, expected: float) -> None:
    assert choose_threshold(POSITIVE, SCORES, "precision", target) == expected


def test_unreachable_targets() -> None:
    top_negative = np.array([False, True, True])
    scores = np.array([0.9, 0.5, 0.4])
    assert choose_threshold(top_negative, scores, "precision", 1.0) is None
    assert choose_threshold(np.zeros(3, bool), scores, "recall", 0.5) is None


def test_decision_rule_by_hand() -> None:
    probs = np.array([[0.50, 0.30, 0.20],
                      [0.20, 0.35, 0.45],
                      [0.60, 0.10, 0.30]])
    # class 1 at 0.3: rows 0 and 1 reach it; row 2 goes to the larger of the others (0)
    assert decide(probs, 1, 0.30).tolist() == [1, 1, 0]
    # at 0.4 none reaches it: each row's most probable other class
    assert decide(probs, 1, 0.40).tolist() == [0, 2, 0]
    # a threshold of 0 always picks the class; argmax is never consulted
    assert decide(probs, 2, 0.0).tolist() == [2, 2, 2]


def test_figures_by_hand_and_intervals() -> None:
    predicted = SCORES >= 0.4
    figures = binary_figures(POSITIVE, predicted)
    assert (figures["tp"], figures["fp"], figures["fn"], figures["tn"]) == (4, 2, 1, 2)
    assert figures["recall"] == pytest.approx(4 / 5)
    assert figures["precision"] == pytest.approx(4 / 6)
    assert figures["false_alarm_rate"] == pytest.approx(2 / 4)
    again = figures_with_intervals(POSITIVE, predicted)
    assert again == figures_with_intervals(POSITIVE, predicted)  # seeded
    for key in ("recall", "precision", "false_alarm_rate"):
        lo, hi = again[f"{key}_ci95"]
        assert 0.0 <= lo <= again[key] <= hi <= 1.0 and lo < hi


def test_average_precision_is_sklearns() -> None:
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 3, 60)
    probs = rng.dirichlet([1, 1, 1], 60)
    curves = pr_curves(y, probs, ["a", "b", "c"])
    for index, name in enumerate("abc"):
        assert curves[name]["average_precision"] == pytest.approx(
            average_precision_score(y == index, probs[:, index]))
        assert curves[name]["recall"][-1] == 1.0


def test_choose_records_validation_figures() -> None:
    y = np.where(POSITIVE, 1, 0)
    probs = np.stack([1 - SCORES, SCORES], axis=1)
    point = choose(Target.parse("defect:recall=0.8"), ["ok", "defect"], y, probs)
    assert point is not None and point.threshold == 0.4 and point.class_index == 1
    assert point.chosen_on["recall"] == pytest.approx(0.8)
    assert point.chosen_on["false_alarm_rate"] == pytest.approx(0.5)
    again = OperatingPoint.from_dict(json.loads(point.to_json()), ("ok", "defect"))
    assert again == point
    with pytest.raises(ValueError, match="does not match"):
        OperatingPoint.from_dict(point.to_dict(), ("defect", "ok"))


@pytest.mark.parametrize("text", ["defect:recal=0.9", "defect:recall=0", "defect:recall=1.5",
                                  "defect:recall=abc", "recall=0.9"])
def test_bad_targets_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="operating point"):
        Target.parse(text)


def test_unknown_class_names_the_classes() -> None:
    with pytest.raises(UsageError, match=r"'crack' is not one of .*'ok', 'defect'"):
        Target.parse("crack:precision=0.9").index_in(("ok", "defect"))


def test_recipe_key() -> None:
    from edgetl.recipe import load_recipe

    recipe = load_recipe(None, ["operating_point=defective:recall=0.950"])
    assert recipe.operating_point == "defective:recall=0.95"
    with pytest.raises(RecipeError, match="operating_point"):
        load_recipe(None, ["operating_point=defective:recall=2"])
    with pytest.raises(RecipeError, match="applies to classification"):
        load_recipe(None, ["task=detection", "operating_point=car:recall=0.9"])


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def op_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny trained run whose recipe asks for checks:recall=1.0 (64 px, 2 epochs)."""
    import yaml
    from fixtures_runs import make_image_list

    root = tmp_path_factory.mktemp("op_run")
    data = make_image_list(root, {"train": 14, "val": 6, "test": 6}, seed=3)
    recipe = root / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "op", "data": {"source": str(data)},
        "model": {"architecture": "tf_efficientnet_lite0", "input_size": 64},
        "train": {"batch_size": 8, "eval_batch_size": 32, "num_threads": 1},
        "phases": [{"name": "A", "epochs": 2, "lr": 0.01, "augment": False}],
        "operating_point": "checks:recall=1.0"}))
    run = root / "run"
    proc = subprocess.run([*CLI, "finetune", str(recipe), "--out", str(run)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "operating point checks:recall=1: threshold" in proc.stdout
    return run


def _validation_scores(run: Path, class_name: str) -> tuple[np.ndarray, np.ndarray]:
    """P(class) of the best checkpoint on the run's validation images, and which are it."""
    from edgetl.models.inference import torch_probs
    from edgetl.models.loading import load_model
    from edgetl.runfolder import RunFolder

    model, info = load_model(run)
    samples = RunFolder(run).samples("val")
    probs = torch_probs(model, info.spec, [s.path for s in samples])
    index = info.task_record.index(class_name)
    return probs[:, index], np.array([s.label == class_name for s in samples])


def test_finetune_reports_and_export_records_the_recipes_point(op_run: Path,
                                                                tmp_path: Path) -> None:
    report = json.loads((op_run / "test_metrics.json").read_text())
    (entry,) = report["operating_points"]
    scores, positive = _validation_scores(op_run, "checks")
    by_hand = scores[positive].min()  # recall 1.0: the lowest validation score of a check
    assert entry["threshold"] == pytest.approx(by_hand, abs=1e-6)
    assert entry["chosen_on"]["recall"] == 1.0
    test = entry["test"]
    assert test["images"] == 18 and test["positives"] == 6
    for key in ("recall", "precision", "false_alarm_rate"):
        lo, hi = test[f"{key}_ci95"]
        assert lo <= test[key] <= hi
    assert set(report["pr_curves"]) == {"blobs", "checks", "stripes"}

    from edgetl.artifact.manifest import read_artifact
    from edgetl.export import export_run

    export_run(op_run, "onnx", tmp_path / "model.onnx")  # no option: the recipe's point

    info = read_artifact(tmp_path / "model.onnx")
    assert info.decision is not None
    assert info.decision.threshold == pytest.approx(entry["threshold"], abs=1e-6)
    assert info.manifest["decision"]["target"] == "checks:recall=1"

    # evaluate ARTIFACT decides by it: its confusion matrix is the rule's, not argmax's
    from edgetl.evaluate.artifact_eval import evaluate_artifact
    from edgetl.predict import predict_artifact_on_samples
    from edgetl.runfolder import RunFolder

    evaluated = evaluate_artifact(tmp_path / "model.onnx")
    samples = RunFolder(op_run).samples("test")
    probs, _ = predict_artifact_on_samples(tmp_path / "model.onnx", samples)
    y = np.array([info.task_record.index(s.label) for s in samples])
    decided = decide(probs, info.decision.class_index, info.decision.threshold)
    expected = np.zeros((3, 3), int)
    np.add.at(expected, (y, decided), 1)
    assert evaluated["confusion_matrix"] == expected.tolist()
    assert evaluated["decision"]["rule"] == "operating_point"
    assert evaluated["operating_points"][0]["test"]["recall"] == pytest.approx(
        float((decided[y == 1] == 1).mean()))

    # verify judges the decisions on both sides, and passes
    from edgetl.verify import verify_artifact

    verified = verify_artifact(tmp_path / "model.onnx", op_run)
    assert verified.passed, verified.failure_line()
    assert verified.check("parity").details["decision"]["rule"] == "operating_point"
    assert verified.check("accuracy").details["artifact_accuracy"] == pytest.approx(
        float((decided == y).mean()))


def test_predict_applies_the_recorded_threshold_without_torch(op_run: Path,
                                                               tmp_path: Path) -> None:
    """An artifact whose threshold sits at the median P(checks) of the test images, so both
    sides of the rule decide some image and some decisions differ from argmax."""
    import onnx
    from test_predict import torch_blocked_env

    from edgetl.artifact.manifest import META_DECISION, set_onnx_metadata
    from edgetl.export import ExportOptions, export_run
    from edgetl.predict import predict_artifact_on_samples
    from edgetl.runfolder import RunFolder

    path = export_run(op_run, "onnx", tmp_path / "model.onnx",
                      ExportOptions(operating_point="checks:recall=0.5")).path
    samples = RunFolder(op_run).samples("test")
    probs, _ = predict_artifact_on_samples(path, samples)
    threshold = float(np.median(probs[:, 1]))
    model = onnx.load(str(path))
    record = json.loads({p.key: p.value for p in model.metadata_props}[META_DECISION])
    set_onnx_metadata(model, {META_DECISION: json.dumps({**record, "threshold": threshold})})
    onnx.save(model, str(path))

    proc = subprocess.run([*CLI, "predict", str(path), *[s.path for s in samples], "--top-k",
                           "3", "--json", "-"], env=torch_blocked_env(tmp_path), cwd=REPO,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    predictions = json.loads(proc.stdout)["predictions"]
    flipped = 0
    for pred in predictions:
        p = {row["label"]: row["probability"] for row in pred["top"]}
        argmax = max(p, key=p.get)
        others = {k: v for k, v in p.items() if k != "checks"}
        expected = "checks" if p["checks"] >= threshold else max(others, key=others.get)
        decision = pred["decision"]
        assert decision["rule"] == "operating_point" and decision["label"] == expected
        assert decision["threshold"] == pytest.approx(threshold)
        assert (">=" in decision["why"]) == (p["checks"] >= threshold)
        flipped += expected != argmax
    assert flipped >= 1


def test_export_refuses_a_class_the_run_lacks(op_run: Path, tmp_path: Path) -> None:
    from edgetl.export import ExportOptions, export_run

    with pytest.raises(UsageError, match="'crack' is not one of"):
        export_run(op_run, "onnx", tmp_path / "m.onnx",
                   ExportOptions(operating_point="crack:recall=0.9"))
    assert not (tmp_path / "m.onnx").exists()
