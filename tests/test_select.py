"""`edgetl select`: the rules by hand, and the real command on a tiny data set it makes.

The integration runs go through the console script on real images: untrained networks exported
by the ordinary exporters, timed by bench's runner (few calls), phase A on cached features,
validation scoring. Budgets are chosen with wide margins (a 64 px MobileNetV2 call is about
1-2 ms here on one thread, a 448 px one about 25 ms), and the checks recompute each verdict from the
figures the run itself measured, so machine load cannot make them pass or fail by chance.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from reliability_common import edgetl, last_line  # noqa: E402

from edgetl.errors import UsageError, WeightsError  # noqa: E402
from edgetl.select.rules import (  # noqa: E402
    Point,
    decide_start,
    deploy_precision,
    estimate_seconds,
    faster_within_interval,
    over_budget_words,
    pareto_front,
    pick,
)

FAST_BENCH = ("--iters", "10", "--warmup", "2")


# =========================================================================== rules by hand
def _lat(**p90s: float) -> dict[str, dict[str, float]]:
    return {p: {"p50_ms": v / 2, "p90_ms": v} for p, v in p90s.items()}


def test_deploy_precision_is_the_first_in_order_within_budget() -> None:
    both = _lat(fp32=6.0, int8=3.0)
    assert deploy_precision(both, ("fp32", "int8"), 5.0, "p90") == "int8"
    assert deploy_precision(both, ("fp32", "int8"), 6.0, "p90") == "fp32"  # <= budget fits
    assert deploy_precision(both, ("int8", "fp32"), 10.0, "p90") == "int8"  # order = preference
    assert deploy_precision(both, ("fp32", "int8"), 2.9, "p90") is None
    # p50 instead: 3.0 and 1.5
    assert deploy_precision(both, ("fp32", "int8"), 3.0, "p50") == "fp32"
    assert over_budget_words(both, 2.9, "p90") == "fp32 p90 6.00 ms, int8 p90 3.00 ms > 2.90 ms"


def test_pareto_front_and_pick_by_hand() -> None:
    points = [Point("a", 1.0, 0.80), Point("b", 2.0, 0.85), Point("c", 3.0, 0.84),
              Point("d", 4.0, 0.90), Point("e", 4.0, 0.90), Point("f", 0.5, 0.80)]
    # a is dominated by f (faster, same score); c by b; d and e tie with each other
    assert pareto_front(points) == ["f", "b", "d", "e"]
    assert pick(points) == "d"  # best score, equal latency: by name
    assert pick([Point("x", 3.0, 0.9), Point("y", 2.0, 0.9)]) == "y"  # equal score: faster
    assert pick([]) is None
    losses = [Point("a", 1.0, 0.50), Point("b", 2.0, 0.30), Point("c", 3.0, 0.40)]
    assert pareto_front(losses, higher_is_better=False) == ["a", "b"]
    assert pick(losses, higher_is_better=False) == "b"


def test_faster_candidates_inside_the_picks_interval() -> None:
    points = [Point("big", 9.0, 0.90), Point("mid", 5.0, 0.88), Point("small", 2.0, 0.84),
              Point("slow", 12.0, 0.89)]
    assert faster_within_interval(points, "big", (0.86, 0.94)) == ["mid"]
    assert faster_within_interval(points, "big", (0.80, 0.94)) == ["small", "mid"]


def test_time_estimate_from_the_candidates_done() -> None:
    assert estimate_seconds([], 5.0) is None
    assert estimate_seconds([(2.0, 10.0)], 6.0) == pytest.approx(30.0)  # proportional
    # t = 1 + 2 * cost through (1, 3) and (3, 7)
    assert estimate_seconds([(1.0, 3.0), (3.0, 7.0)], 5.0) == pytest.approx(11.0)
    # slower for the cheaper one (noise): no negative slope, the mean
    assert estimate_seconds([(1.0, 8.0), (3.0, 6.0)], 10.0) == pytest.approx(7.0)
    # a line with a negative intercept goes through the origin instead: sum(cs) / sum(cc)
    assert estimate_seconds([(1.0, 1.0), (2.0, 4.0)], 3.0) == pytest.approx(3.0 * 9.0 / 5.0)


def test_decide_start_stops_when_the_estimate_does_not_fit() -> None:
    assert decide_start(None, 100.0).start  # no time budget
    assert decide_start(5.0, None).start  # nothing done yet: the first always starts
    assert decide_start(5.0, 5.0).start
    assert not decide_start(5.0, 5.1).start
    assert not decide_start(0.0, None).start  # no time left at all
    assert not decide_start(-3.0, 1.0).start


def test_parse_duration_and_sizes() -> None:
    from edgetl.clock import parse_duration
    from edgetl.select.config import parse_sizes

    assert parse_duration("30m") == 1800.0
    assert parse_duration("1h30m") == 5400.0
    assert parse_duration("90s") == 90.0
    assert parse_duration("1.5h") == 5400.0
    assert parse_duration("45") == 45.0
    for bad in ("abc", "10x", "", "m", "0", "0s"):
        with pytest.raises(UsageError):
            parse_duration(bad)
    assert parse_sizes("160, 224,160") == (160, 224)
    with pytest.raises(UsageError):
        parse_sizes("160,big")


# =========================================================================== metric intervals
def _random_scores(n: int = 60, k: int = 3, seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k)) + 1.5 * np.eye(k)[y]
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return y, probs


def test_resampled_metrics_equal_scikit_learn_on_each_resample() -> None:
    from sklearn.metrics import balanced_accuracy_score, f1_score, log_loss

    from edgetl.metrics.classification import resampled_metric

    y, probs = _random_scores()
    idx = np.random.default_rng(0).integers(0, len(y), size=(15, len(y)))
    idx[0] = np.where(y != 2)[0][0]  # one resample of a single image: one class only
    pred = probs.argmax(axis=1)
    for name, reference in (
        ("accuracy", lambda t, p, q: float((t == p).mean())),
        ("balanced_accuracy", lambda t, p, q: balanced_accuracy_score(t, p)),
        ("macro_f1", lambda t, p, q: f1_score(t, p, average="macro", zero_division=0)),
        ("loss", lambda t, p, q: log_loss(t, q, labels=[0, 1, 2])),
    ):
        got = resampled_metric(y, probs, idx, name)
        with warnings.catch_warnings():  # scikit-learn's note on the one-class resample
            warnings.simplefilter("ignore")
            want = [reference(y[i], pred[i], probs[i]) for i in idx]
        np.testing.assert_allclose(got, want, atol=1e-9, err_msg=name)


def test_metric_interval_matches_the_validation_figure_and_brackets_it() -> None:
    from edgetl.metrics.classification import (
        bootstrap_accuracy_ci,
        metric_interval,
        quick_metrics,
    )

    y, probs = _random_scores(n=200)
    quick = quick_metrics(y, probs)
    for name in ("accuracy", "balanced_accuracy", "macro_f1", "loss"):
        found = metric_interval(y, probs, name)
        assert found["value"] == pytest.approx(quick[name])
        lo, hi = found["ci95"]
        assert lo < found["value"] < hi and hi - lo < 0.5
    correct = (probs.argmax(axis=1) == y).astype(float)
    assert metric_interval(y, probs, "accuracy")["ci95"] == list(bootstrap_accuracy_ci(correct))


# =========================================================================== recipes and seam
def test_training_phases_and_candidate_recipe() -> None:
    from edgetl.recipe import load_recipe
    from edgetl.select.accuracy import training_phases
    from edgetl.select.candidates import Candidate

    root = Path(__file__).resolve().parents[1]
    quick = load_recipe(root / "recipes" / "examples" / "elpv-quickstart.yaml")
    [phase_a] = training_phases(quick, "A")
    assert phase_a["name"] == "A" and phase_a["epochs"] == 12 and phase_a["augment"] is False
    assert phase_a["cache_frozen"] is True and phase_a["lr"] == quick.phases[0].lr
    assert [p["name"] for p in training_phases(quick, "all")] == ["A", "B"]
    only_b = quick.model_copy(update={"phases": [quick.phases[1]]})
    [default_a] = training_phases(only_b, "A")
    assert default_a["unfreeze"] == "head" and default_a["augment"] is False

    made = Candidate("mobilenetv2_100", None, 160).recipe(quick, training_phases(quick, "A"))
    assert (made.model.architecture, made.model.input_size) == ("mobilenetv2_100", 160)
    assert made.name == "elpv-quickstart-mobilenetv2_100-160"
    assert made.preprocess == quick.preprocess and made.data == quick.data
    assert len(made.phases) == 1


def test_candidates_are_backbones_with_offline_weights() -> None:
    from edgetl.models.registry import PACKAGED, weights_unavailable
    from edgetl.recipe import Recipe
    from edgetl.select.candidates import discover

    base = Recipe.model_validate({"model": {"architecture": "resnet18"}})
    found, notes = discover(base, (), (96, 128))
    offline = [name for name in PACKAGED if weights_unavailable(name) is None]
    assert [c.id for c in found] == [f"{a}@{s}" for a in offline for s in (96, 128)]
    if weights_unavailable("resnet18") is not None:  # not in this machine's timm cache
        assert any("resnet18" in note for note in notes)
        with pytest.raises(WeightsError, match="resnet18"):
            discover(base, ("resnet18",), (96,))
    chosen, _ = discover(base, ("mobilenetv2_100",), (64,))
    assert [c.id for c in chosen] == ["mobilenetv2_100@64"]


def test_the_task_seam_covers_every_task_and_refuses_metrics_without_an_interval() -> None:
    from edgetl.select.tasks import check_metric, task_for

    assert task_for("classification").sizes == (160, 224, 288)
    for dense in ("detection", "semantic", "instance"):
        assert task_for(dense).sizes == (256, 320, 384, 512)
    with pytest.raises(UsageError, match="does not support panoptic"):
        task_for("panoptic")
    check_metric(task_for("detection"), "detection", "val_map50")
    # a metric without an interval from the task's evaluator is refused before any work
    with pytest.raises(UsageError, match="cannot score detection candidates on val_loss"):
        check_metric(task_for("detection"), "detection", "val_loss")


def test_the_latency_probe_never_holds_test_images() -> None:
    from edgetl.data.samples import DataSet, Sample
    from edgetl.select.config import BENCH_IMAGES
    from edgetl.select.latency import probe_data
    from edgetl.spec import TaskRecord
    from edgetl.train.rundata import SplitData

    samples = [Sample(f"/d/{c}/{split}{i}.png", c, split=split)
               for c in ("a", "b") for split in ("train", "val", "test") for i in range(20)]
    data = DataSet("d", ["a", "b"], samples, origin="/d")
    probe = probe_data(SplitData(data, TaskRecord(("a", "b")), {}), calibration_images=6)
    assert {s.split for s in probe.samples} == {"train", "val"}
    train, val = probe.by_split("train"), probe.by_split("val")
    assert len(train) == 6 and len(val) == BENCH_IMAGES
    assert {s.label for s in train} == {s.label for s in val} == {"a", "b"}


def test_deployment_verdict_needs_the_search_met_and_the_budget() -> None:
    from edgetl.select.deploy import deployment_verdict

    ok = {"precision": "int8", "accuracy_search_met": True, "p50_ms": 3.0, "p90_ms": 4.0}
    assert deployment_verdict(ok, 4.0, "p90") == (True, None)
    missed = {**ok, "accuracy_search_met": False}
    verdict, why = deployment_verdict(missed, 10.0, "p90")
    assert not verdict and "agreement budget" in why
    slow = {**ok, "p90_ms": 4.5}
    verdict, why = deployment_verdict(slow, 4.0, "p90")
    assert not verdict and "p90 4.50 ms > 4.00 ms" in why
    assert deployment_verdict(slow, 4.0, "p50") == (True, None)  # p50 3.0 <= 4.0
    fp32 = {"precision": "fp32", "accuracy_search_met": None, "p50_ms": 3.0, "p90_ms": 4.0}
    assert deployment_verdict(fp32, 4.0, "p90") == (True, None)


def _row(**p90s: float) -> dict:
    measured = {p: {"format": f"fmt-{p}", "p50_ms": v / 2, "p90_ms": v} for p, v in p90s.items()}
    return {"id": "net@64", "architecture": "net", "weights": None, "input_size": 64,
            "latency": {"precisions": measured}, "status": "trained",
            "training": {"run": "/nowhere"}}


def test_an_undeployable_int8_falls_back_to_the_next_precision_within_budget(
        tmp_path: Path) -> None:
    """int8 first in the order; its trained export misses verify, so fp16 (within budget) is
    confirmed and deployed; fp32 (over budget) is never exported."""
    from edgetl.select.config import SelectConfig
    from edgetl.select.deploy import deployment_verdict
    from edgetl.select.run import _confirm

    config = SelectConfig(recipe=tmp_path / "r.yaml", budget_ms=5.0, out=tmp_path,
                          precisions=("int8", "fp16", "fp32"))
    row = _row(int8=2.0, fp16=4.0, fp32=8.0)
    row["deploy_precision"], row["deploy_format"] = "int8", "fmt-int8"
    row["deploy_latency_ms"] = {"p50": 1.0, "p90": 2.0}
    exported: list[str] = []

    def check(run: Path, precision: str, fmt: str, folder: Path, cfg: object) -> dict:
        exported.append(fmt)
        record = {"precision": precision, "format": fmt, "p50_ms": 2.0, "p90_ms": 4.5,
                  "accuracy_search_met": False if precision == "int8" else None,
                  "float_nodes": None}
        record["deployable"], record["reason"] = deployment_verdict(record, 5.0, "p90")
        return record

    assert _confirm(row, config, lambda _: None, check) is True
    assert exported == ["fmt-int8", "fmt-fp16"]
    assert row["deploy_precision"] == "fp16" and row["deploy_format"] == "fmt-fp16"
    assert row["deploy_latency_ms"] == {"p50": 2.0, "p90": 4.0}
    assert [d["deployable"] for d in row["deployment"]] == [False, True]

    row = _row(int8=2.0, fp32=8.0)  # nothing else within budget: the row is out, with reasons
    row["deploy_precision"], row["deploy_format"] = "int8", "fmt-int8"
    row["deploy_latency_ms"] = {"p50": 1.0, "p90": 2.0}
    exported.clear()
    assert _confirm(row, config, lambda _: None, check) is False
    assert exported == ["fmt-int8"]
    assert row["status"] == "not_deployable" and row["deploy_precision"] is None
    assert row["reason"].startswith("int8: its trained int8 export misses")


# =========================================================================== through the CLI
@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """36 real images of 3 classes in a class-per-folder tree, and a recipe for them."""
    from fixtures_runs import make_images

    root = tmp_path_factory.mktemp("select")
    make_images(root / "data", {"train": 12}, seed=1)
    recipe = root / "tiny.yaml"
    recipe.write_text(
        "name: tiny\n"
        f"data: {{source: {root / 'data'}, val_fraction: 0.25, test_fraction: 0.2}}\n"
        "train: {batch_size: 8, eval_batch_size: 8}\n"
        "phases:\n  - {name: A, epochs: 3, lr: 0.003, augment: false}\n")
    return {"root": root, "recipe": recipe, "data": root / "data"}


@pytest.fixture(scope="module")
def budget_run(tiny: dict[str, Path]) -> dict:
    """One MobileNetV2 at 64 and 96 px (1-2 ms a call on one thread) and at 448 px (about
    25 ms; 320 px once came in under a 15 ms budget), budget p90 <= 12 ms: two fit, one
    does not, with room for a busy machine."""
    out = tiny["root"] / "budget"
    done = edgetl("select", tiny["recipe"], "--budget-ms", "12", "--precision", "fp32",
                  "--backbones", "mobilenetv2_100", "--sizes", "64,96,448", *FAST_BENCH,
                  "--threads", "1",
                  "--out", out)
    assert done.returncode == 0, done.stderr
    return {"out": out, "stdout": done.stdout, "record": json.loads((out / "select.json")
                                                                    .read_text())}


def test_select_drops_what_is_over_budget_and_picks_within_it(budget_run: dict) -> None:
    from edgetl.recipe import load_recipe

    out, record = budget_run["out"], budget_run["record"]
    rows = {r["id"]: r for r in record["candidates"]}
    assert set(rows) == {"mobilenetv2_100@64", "mobilenetv2_100@96", "mobilenetv2_100@448"}
    for row in rows.values():
        fp32 = row["latency"]["precisions"]["fp32"]
        # the figures are bench's own: the row of the bench report kept for each precision
        bench = json.loads(Path(fp32["bench_report"]).read_text())
        assert bench["schema"] == "edgetl.bench/1"
        assert bench["rows"][0]["p90_ms"] == fp32["p90_ms"]
        assert bench["rows"][0]["iters"] == 10
        assert bench["artifact"]["precision"] == "fp32"
        fits = fp32["p90_ms"] <= 12.0
        assert row["status"] == ("trained" if fits else "over_budget"), row
        assert (out / "candidates" / row["id"].replace("@", "-")).is_dir() == fits
    assert rows["mobilenetv2_100@448"]["status"] == "over_budget"
    assert rows["mobilenetv2_100@64"]["status"] == "trained"
    dropped = rows["mobilenetv2_100@448"]
    assert f"{dropped['latency']['precisions']['fp32']['p90_ms']:.2f} ms > 12.00 ms" in \
        dropped["reason"]
    assert "dropped mobilenetv2_100@448" in " ".join(budget_run["stdout"].split())

    trained = [r for r in rows.values() if r["status"] == "trained"]
    for row in trained:
        t = row["training"]
        assert t["metric"] == "val_accuracy" and t["n"] == record["split"]["counts"]["val"]
        assert t["ci95"][0] <= t["value"] <= t["ci95"][1]
        # trained with the spec whose latency was measured, on the split select made once
        assert t["spec_fingerprint"] == row["latency"]["spec_fingerprint"]
        run = Path(t["run"])
        assert (run / "split.csv").read_text() == (out / "data" / "split.csv").read_text()
        assert not (run / "test_metrics.json").exists()  # select never scores the test split
    best = max(trained, key=lambda r: (r["training"]["value"],
                                       -r["deploy_latency_ms"]["p90"]))
    assert record["pick"]["id"] == best["id"]
    assert record["pick"]["id"] in record["pareto_front"]
    assert record["pick"]["format"] == "onnx"
    recipe = load_recipe(out / "recipe.yaml")
    assert (recipe.model.architecture, recipe.model.input_size) == \
        ("mobilenetv2_100", best["input_size"])
    assert (out / "select.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list(out.glob("latency/*/probe"))  # probes and their artifacts removed
    # the pick was confirmed: its trained network exported as deployed and timed in budget
    deployed = rows[record["pick"]["id"]]["deployment"][-1]
    assert deployed["deployable"] and deployed["precision"] == "fp32"
    assert Path(deployed["artifact"]).is_file()
    assert deployed["p90_ms"] <= 12.0
    assert record["pick"]["deployed_latency_ms"]["p90"] == deployed["p90_ms"]
    bench = json.loads(Path(deployed["bench_report"]).read_text())
    assert bench["artifact"]["sha256"] == __import__("hashlib").sha256(
        Path(deployed["artifact"]).read_bytes()).hexdigest()


def test_written_recipe_finetunes_as_is_on_the_same_split(budget_run: dict,
                                                          tiny: dict[str, Path]) -> None:
    out = budget_run["out"]
    run = tiny["root"] / "finetuned"
    done = edgetl("finetune", out / "recipe.yaml", "--out", run)
    assert done.returncode == 0, done.stderr
    assert (run / "split.csv").read_text() == (out / "data" / "split.csv").read_text()
    picked = Path(budget_run["record"]["pick"]["run"])

    def curve(folder: Path) -> list[tuple]:
        lines = [json.loads(x) for x in (folder / "metrics.jsonl").read_text().splitlines()]
        return [(r["epoch"], r["val_accuracy"], round(r["val_loss"], 5)) for r in lines]

    assert curve(run) == curve(picked)  # the same training the pick was scored with
    assert (run / "test_metrics.json").is_file()


def test_time_budget_stops_starting_candidates_and_says_what_it_skipped(
        tiny: dict[str, Path]) -> None:
    out = tiny["root"] / "timed"
    done = edgetl("select", tiny["recipe"], "--budget-ms", "1000", "--precision", "fp32,int8",
                  "--backbones", "mobilenetv2_100", "--sizes", "64,80", *FAST_BENCH,
                  "--time-budget", "0.1s", "--out", out)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "select.json").read_text())
    rows = record["candidates"]
    assert all(r["deploy_precision"] == "fp32" for r in rows)  # the first that fits
    for row in rows:  # int8 of the untrained network was exported and timed too
        int8 = row["latency"]["precisions"]["int8"]
        assert json.loads(Path(int8["bench_report"]).read_text())["artifact"]["precision"] \
            == "int8"
    cheapest = min(rows, key=lambda r: r["deploy_cost_ms"])
    other = next(r for r in rows if r is not cheapest)
    assert cheapest["status"] == "trained"  # the first one always starts
    assert other["status"] == "skipped_time" and other["training"] is None
    assert other["reason"].startswith("time budget:") and "0 s left" in other["reason"]
    assert [s["id"] for s in record["time_budget"]["skipped"]] == [other["id"]]
    assert not (out / "candidates" / other["id"].replace("@", "-")).exists()
    assert f"skipped {other['id']}: time budget" in " ".join(done.stdout.split())
    assert record["pick"]["id"] == cheapest["id"]


def test_no_candidate_within_budget_is_a_failed_gate_with_the_figures(
        tiny: dict[str, Path]) -> None:
    out = tiny["root"] / "none"
    done = edgetl("select", tiny["recipe"], "--budget-ms", "0.001", "--precision", "fp32",
                  "--backbones", "mobilenetv2_100", "--sizes", "64", *FAST_BENCH,
                  "--out", out)
    assert done.returncode == 1
    line = last_line(done.stderr)
    assert line.startswith("error: no candidate is within the budget: p90 <= 0.001 ms")
    assert "mobilenetv2_100@64" in line and len(done.stderr.strip().splitlines()) == 1
    record = json.loads((out / "select.json").read_text())
    assert record["pick"] is None and not (out / "recipe.yaml").exists()
    assert record["candidates"][0]["status"] == "over_budget"


@pytest.mark.parametrize(("args", "code", "words"), [
    (("--budget-ms", "0"), 2, "--budget-ms must be > 0"),
    (("--budget-ms", "-2"), 2, "--budget-ms must be > 0"),
    (("--budget-ms", "5", "--backend", "coreml"), 2, "unknown backend 'coreml'"),
    (("--budget-ms", "5", "--budget-on", "p99"), 2, "--budget-on 'p99'"),
    (("--budget-ms", "5", "--time-budget", "0"), 2, "--time-budget must be > 0"),
    (("--budget-ms", "5", "--time-budget", "soon"), 2, "is not a duration"),
    (("--budget-ms", "5", "--backend", "tensorrt", "--precision", "fp32"), 2,
     "--precision fp32 is not available on tensorrt"),
    (("--budget-ms", "5", "--data", "/no/such/data"), 2, "no such folder or file"),
])
def test_bad_input_is_one_line_and_the_documented_exit_code(
        tiny: dict[str, Path], args: tuple[str, ...], code: int, words: str) -> None:
    out = tiny["root"] / "bad"
    done = edgetl("select", tiny["recipe"], *args, "--out", out)
    assert done.returncode == code, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    assert done.stderr.startswith("error: ") and words in done.stderr
    assert not out.exists()  # refused before anything was written


def test_dense_recipe_and_missing_backend_are_refused_before_work(
        tiny: dict[str, Path]) -> None:
    import onnxruntime as ort

    root = Path(__file__).resolve().parents[1]
    done = edgetl("select", root / "recipes" / "semantic-lite0.yaml", "--budget-ms", "5",
                  "--set", "train.select_metric=val_loss", "--data", tiny["root"] / "masks",
                  "--out", tiny["root"] / "dense")
    assert done.returncode == 2 and "cannot score semantic candidates on val_loss" in \
        done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
    if "CUDAExecutionProvider" not in ort.get_available_providers():
        done = edgetl("select", tiny["recipe"], "--budget-ms", "5", "--backend", "ort-cuda",
                      "--out", tiny["root"] / "cuda")
        assert done.returncode == 3 and "CUDAExecutionProvider" in done.stderr
    full = tiny["root"] / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    done = edgetl("select", tiny["recipe"], "--budget-ms", "5", "--out", full)
    assert done.returncode == 2 and "already exists and is not empty" in done.stderr
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


# =========================================================================== detection
DET_RECIPE = """\
name: tiny-det
task: detection
data: {{source: {data}, val_fraction: 0.25, test_fraction: 0.2}}
model:
  architecture: mobilenetv2_100
  input_size: 128
  detector: {{fpn_channels: 32, head_convs: 1}}
train: {{batch_size: 8, eval_batch_size: 8, num_threads: 2}}
phases:
  - {{name: A, epochs: 2, unfreeze: head, lr: 5.0e-3}}
"""


def _scored_as_evaluate_does(training: dict, key: str, tmp_path: Path) -> None:
    """select's validation score and interval equal `edgetl evaluate --split val`'s."""
    report = tmp_path / "val.json"
    done = edgetl("evaluate", training["run"], "--split", "val", "--json", report)
    assert done.returncode == 0, done.stderr
    evaluated = json.loads(report.read_text())
    assert training["value"] == pytest.approx(evaluated[key], abs=1e-9)
    assert training["ci95"] == pytest.approx(evaluated[f"{key}_ci95"], abs=1e-9)


def test_select_detection_budget_validation_map_and_recipe(tmp_path: Path) -> None:
    """A detector at 96 px and at 640 px, budget p90 <= 20 ms: far enough from both that a busy
    machine (the 96 px one slower) or a quiet one (the 640 px int8 one faster) does not move
    either across it. The 640 px one is dropped in both precisions; the 96 px one trains phase A
    and is scored on validation mAP with its interval, the figure `edgetl evaluate --split val`
    gives for the same checkpoint."""
    import detgen

    from edgetl.recipe import load_recipe

    data = detgen.make_voc(tmp_path / "voc", 40, seed=3)
    recipe = tmp_path / "det.yaml"
    recipe.write_text(DET_RECIPE.format(data=data))
    out = tmp_path / "sel"
    done = edgetl("select", recipe, "--budget-ms", "20", "--backbones", "mobilenetv2_100",
                  "--sizes", "96,640", "--precision", "fp32,int8", *FAST_BENCH, "--threads",
                  "1", "--out", out)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "select.json").read_text())
    assert record["task"] == "detection" and record["metric"] == "val_map"
    rows = {r["id"]: r for r in record["candidates"]}
    big, small = rows["mobilenetv2_100@640"], rows["mobilenetv2_100@96"]
    # both precisions were exported and timed, the int8 probe unjudged (untrained network)
    for row in (big, small):
        assert set(row["latency"]["precisions"]) == {"fp32", "int8"}
    over = min(p["p90_ms"] for p in big["latency"]["precisions"].values()) > 20.0
    assert big["status"] == ("over_budget" if over else "trained")
    assert over, "the 640 px detector came in under 20 ms: the budget no longer separates"
    assert not (out / "candidates" / "mobilenetv2_100-640").exists()
    assert small["status"] == "trained" and record["pick"]["id"] == "mobilenetv2_100@96"
    t = small["training"]
    assert t["metric"] == "val_map" and t["n"] == record["split"]["counts"]["val"]
    assert t["ci95"][0] <= t["value"] <= t["ci95"][1]
    assert t["spec_fingerprint"] == small["latency"]["spec_fingerprint"]
    _scored_as_evaluate_does(t, "map", tmp_path)
    # deployed in the first precision within budget (fp32), confirmed trained and timed
    deployed = small["deployment"][-1]
    assert deployed["precision"] == small["deploy_precision"]
    assert deployed["deployable"] and deployed["p90_ms"] <= 20.0
    written = load_recipe(out / "recipe.yaml")
    assert (written.task, written.model.architecture, written.model.input_size) == \
        ("detection", "mobilenetv2_100", 96)
    assert (written.model.detector.fpn_channels, written.model.detector.head_convs) == (32, 1)
    assert written.description.startswith("tiny-det with mobilenetv2_100 at 96 px")


def test_the_dense_probe_head_sends_nothing_to_nms() -> None:
    """Untrained, FCOS's prior and centre-ness score every position about 0.07, above the 0.05
    threshold: the output is full. Quieted, nothing passes, whatever the image."""
    import torch

    from edgetl.models.deployable import deployable
    from edgetl.models.detector import DetectorSettings, build_detector
    from edgetl.select.dense import background_head

    settings = DetectorSettings.from_dict({"fpn_channels": 32, "head_convs": 1})
    torch.manual_seed(0)
    model, _ = build_detector("mobilenetv2_100", 2, settings, (96, 96), None)
    outputs = deployable(model.eval(), "detection")[0].eval()
    images = torch.randn(2, 3, 96, 96)
    with torch.inference_mode():
        before = outputs(images)["num_detections"].tolist()
    assert before == [settings.max_detections] * 2
    assert background_head(model) == 1
    with torch.inference_mode():
        after = outputs(images)
    assert after["num_detections"].tolist() == [0, 0]
    assert float(after["scores"].max()) == 0.0


SEG_RECIPE = """\
name: tiny-seg
task: semantic
data: {{source: {data}, val_fraction: 0.25, test_fraction: 0.2}}
model:
  architecture: mobilenetv2_100
  input_size: 128
  segmenter: {{inter_channels: 32}}
loss: {{type: ce_dice}}
train: {{batch_size: 8, eval_batch_size: 8, num_threads: 2}}
phases:
  - {{name: A, epochs: 2, unfreeze: head, lr: 5.0e-3}}
"""


def test_select_semantic_scores_validation_miou_as_evaluate_does(tmp_path: Path) -> None:
    """A segmenter at 96 px (about 3 ms a call here) and at 512 px (about 45 ms), fp32,
    budget p90 <= 20 ms: the 512 px one is dropped, the 96 px one trained and scored on
    validation mIoU with its interval, the figures `edgetl evaluate --split val` gives."""
    import seggen

    data = seggen.make_masks(tmp_path / "data", 30, seed=1)
    recipe = tmp_path / "seg.yaml"
    recipe.write_text(SEG_RECIPE.format(data=data))
    out = tmp_path / "sel"
    done = edgetl("select", recipe, "--budget-ms", "20", "--backbones", "mobilenetv2_100",
                  "--sizes", "96,512", "--precision", "fp32", *FAST_BENCH, "--threads", "1",
                  "--out", out)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "select.json").read_text())
    rows = {r["id"]: r for r in record["candidates"]}
    big, small = rows["mobilenetv2_100@512"], rows["mobilenetv2_100@96"]
    assert big["latency"]["precisions"]["fp32"]["p90_ms"] > 20.0, "the budget no longer separates"
    assert big["status"] == "over_budget" and small["status"] == "trained"
    t = small["training"]
    assert t["metric"] == "val_miou" and t["n"] == record["split"]["counts"]["val"]
    _scored_as_evaluate_does(t, "miou", tmp_path)
    assert record["pick"]["id"] == "mobilenetv2_100@96"


# =========================================================================== OpenVINO (ov-cpu)
def test_select_on_ov_cpu_times_and_confirms_openvino_artifacts(tiny: dict[str, Path]) -> None:
    """`--backend ov-cpu`: the probe exports openvino / openvino-int8 and bench times them on
    ov-cpu (its float32 latency hints recorded); the pick is confirmed as an IR on ov-cpu."""
    pytest.importorskip("openvino")
    pytest.importorskip("nncf")
    out = tiny["root"] / "ov"
    done = edgetl("select", tiny["recipe"], "--budget-ms", "1000", "--backend", "ov-cpu",
                  "--precision", "int8,fp32", "--backbones", "mobilenetv2_100", "--sizes", "64",
                  *FAST_BENCH, "--threads", "1", "--out", out)
    assert done.returncode == 0, done.stderr
    record = json.loads((out / "select.json").read_text())
    assert record["config"]["backend"] == "ov-cpu"
    row = record["candidates"][0]
    for precision, fmt in (("int8", "openvino-int8"), ("fp32", "openvino")):
        entry = row["latency"]["precisions"][precision]
        assert entry["format"] == fmt
        bench = json.loads(Path(entry["bench_report"]).read_text())
        timed = bench["rows"][0]
        assert (timed["backend"], timed["precision"], timed["iters"]) == ("ov-cpu", precision, 10)
        assert timed["p90_ms"] == entry["p90_ms"]
        assert timed["details"]["runner"]["hints"] == {
            "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32",
            "INFERENCE_NUM_THREADS": "1"}
        assert bench["env"]["runtimes"]["ov-cpu"]["runtime"] == "openvino"
    # int8 comes first and fits: the trained network is exported as openvino-int8 and timed;
    # should the trained int8 miss verify's agreement budget, fp32 (openvino) is confirmed next
    deployed = row["deployment"]
    assert deployed[0]["precision"] == "int8" and deployed[0]["format"] == "openvino-int8"
    assert deployed[0]["accuracy_search_met"] is not None  # NNCF's search verdict was read
    last = deployed[-1]
    assert last["deployable"] and Path(last["artifact"]).suffix == ".xml"
    assert record["pick"]["format"] == last["format"] == \
        {"int8": "openvino-int8", "fp32": "openvino"}[last["precision"]]
    bench = json.loads(Path(last["bench_report"]).read_text())
    assert bench["rows"][0]["backend"] == "ov-cpu"
    assert f"--format {last['format']}" in " ".join(done.stdout.split())
