"""`finetune --time-budget` and the warnings that say what to do next (issue 27, parts 2-3):
the duration words, the sizing rule on numbers, a real run the budget ends early, the
still-improving rule and its summary entry, and small objects in `finetune` and `data inspect`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from edgetl.clock import Deadline, parse_duration
from edgetl.errors import EXIT_USAGE, UsageError
from edgetl.train.advice import metric_words, still_improving
from edgetl.train.budget import resize
from edgetl.train.length import PLANNED, TIME_BUDGET, PhaseLength

CLI = [sys.executable, "-m", "edgetl.cli.main"]
REPO = Path(__file__).resolve().parents[1]
QUICKSTART = REPO / "recipes" / "examples" / "elpv-quickstart.yaml"


def cli(*args: object, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True, cwd=REPO,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


# --------------------------------------------------------------------------- durations
@pytest.mark.parametrize(("text", "seconds"), [("5m", 300.0), ("300s", 300.0), ("1h", 3600.0),
                                               ("90", 90.0), ("1h30m", 5400.0), (" 2.5M ", 150.0)])
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "5x", "m", "0", "0s", "-5m"])
def test_bad_durations_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        parse_duration(text)
    assert "--time-budget" in caught.value.one_line()


def test_bad_time_budget_on_the_command_line(tmp_path: Path) -> None:
    done = cli("finetune", QUICKSTART, "--time-budget", "5x", "--out", tmp_path / "run")
    assert done.returncode == EXIT_USAGE
    lines = [x for x in done.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and "--time-budget '5x' is not a duration" in lines[0]
    assert not (tmp_path / "run").exists()


def test_deadline_counts_down() -> None:
    deadline = Deadline(10.0, time.perf_counter() - 4.0)
    assert 5.9 < deadline.remaining() <= 6.0
    assert deadline.fits(5.0) and not deadline.fits(7.0) and deadline.fits(None)
    assert Deadline(None).remaining() is None and Deadline(None).fits(1e9)


# --------------------------------------------------------------------------- the sizing rule
def test_last_phase_takes_the_time_left_in_whole_epochs() -> None:
    plan = PhaseLength(40, 10, PLANNED)  # 4 epochs of 10 steps; 1 done
    longer = resize(plan, 10, 1, left=95.0, rate=1.0, later_steps=[])
    assert (longer.steps, longer.epochs, longer.reason) == (100, 10, TIME_BUDGET)
    shorter = resize(plan, 10, 1, left=15.0, rate=1.0, later_steps=[])
    assert (shorter.steps, shorter.reason) == (20, TIME_BUDGET)
    none_left = resize(plan, 10, 1, left=-3.0, rate=1.0, later_steps=[])
    assert (none_left.steps, none_left.epochs) == (10, 1)  # never fewer than it ran
    exact = resize(plan, 10, 1, left=30.0, rate=1.0, later_steps=[])
    assert exact == plan


def test_earlier_phase_keeps_its_plan_when_it_fits_else_its_share() -> None:
    plan = PhaseLength(40, 10, PLANNED)
    assert resize(plan, 10, 1, left=1000.0, rate=1.0, later_steps=[60]) == plan  # 90 s fit
    # 30 steps left of A, 90 planned after it, 60 s left at 1 s a step: A gets 60 * 30/120
    # = 15 more steps, rounded down to whole epochs: 2 epochs in all
    share = resize(plan, 10, 1, left=60.0, rate=1.0, later_steps=[90])
    assert (share.steps, share.epochs, share.reason) == (20, 2, TIME_BUDGET)


# --------------------------------------------------------------------------- still improving
def test_still_improving_rule() -> None:
    assert still_improving([0.1, 0.2, 0.3, 0.35], lower_is_better=False) == \
        pytest.approx((0.25, 3))
    assert still_improving([0.3, 0.2], lower_is_better=True) == pytest.approx((0.1, 1))
    assert still_improving([0.5], lower_is_better=False) is None  # one epoch: no trend
    assert still_improving([0.1, 0.4, 0.3, 0.35], lower_is_better=False) is None  # not its best
    assert still_improving([0.4, 0.4, 0.4, 0.4005], lower_is_better=False) is None  # a plateau
    assert still_improving([0.2, 0.3, 0.4], lower_is_better=True) is None  # a loss rising
    assert still_improving([0.1, 0.2, 0.3], False, min_rise=0.5) is None  # within min_delta
    assert metric_words("val_mask_map") == "mask mAP" and metric_words("val_miou") == "mIoU"


# --------------------------------------------------------------------------- real runs
def _classification_recipe(tmp_path: Path, phases: list[dict], **train: object) -> Path:
    from fixtures_runs import make_image_list

    manifest = make_image_list(tmp_path / "data", {"train": 5, "val": 3, "test": 2}, seed=5)
    recipe = tmp_path / "r.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "t", "data": {"source": str(manifest)},
        "model": {"architecture": "tf_efficientnet_lite0", "input_size": 64},
        "augment": {"preset": "light"},
        "train": {"batch_size": 4, "eval_batch_size": 32, "num_threads": 1, **train},
        "phases": phases}))
    return recipe


def test_time_budget_ends_the_run_early_with_a_best_checkpoint(tmp_path: Path) -> None:
    """Phases planned far beyond 8 s: A is cut to its share, B takes what is left and stops
    at an epoch boundary; the best checkpoint and the test report are there, the summary
    says how long each phase ran and why."""
    budget = 8.0
    recipe = _classification_recipe(tmp_path, [
        {"name": "A", "epochs": 400, "lr": 0.01, "augment": False},
        {"name": "B", "epochs": 400, "unfreeze": "last", "blocks": 1, "lr": 0.001},
        {"name": "C", "epochs": 400, "unfreeze": "all", "lr": 0.0005}])
    run = tmp_path / "run"
    done = cli("finetune", recipe, "--out", run, "--time-budget", f"{budget:g}s")
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    phases = summary["phases"]
    assert [p["phase"] for p in phases] == ["A", "B", "C"]
    assert all(p["ended_by"] == "time budget" for p in phases)
    for record in phases:  # honest: the steps and epochs metrics.jsonl holds
        ran = [x for x in lines if x["phase"] == record["phase"]]
        assert record["epochs"] == len(ran)
        assert record["steps"] == (ran[-1]["phase_steps"] if ran else 0)
        assert record["steps"] < record["planned_steps"]
    assert phases[0]["epochs"] >= 1
    record = summary["time_budget"]
    assert record["seconds"] == budget and record["on_resume"].startswith("the whole budget")
    epoch_s = max(b["wall_seconds"] - a["wall_seconds"] for a, b in zip(lines, lines[1:],
                                                                          strict=False)) \
        if len(lines) > 1 else budget
    assert record["used_s"] <= budget + epoch_s  # at most one epoch's estimate overshoots
    assert (run / "best").is_dir() and (run / "test_metrics.json").is_file()
    assert summary["best_epoch"] is not None
    assert "time budget 8 s" in done.stdout and "ended: time budget" in done.stdout


def test_still_improving_warning_in_summary_and_log(tmp_path: Path) -> None:
    """Three epochs of a head on cached features at a low learning rate: validation loss
    falls every epoch, so the run says to train longer, with phase A's real key."""
    recipe = _classification_recipe(
        tmp_path, [{"name": "A", "epochs": 3, "lr": 0.003, "augment": False}],
        select_metric="val_loss")
    run = tmp_path / "run"
    done = cli("finetune", recipe, "--out", run)
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    losses = [x["val_loss"] for x in lines]
    assert losses == sorted(losses, reverse=True)  # the case holds: still falling
    advice = [a for a in summary["advice"] if a["code"] == "still_improving"]
    assert len(advice) == 1
    message = advice[0]["message"]
    assert message.startswith(f"validation loss fell by {losses[0] - losses[-1]:.4g} over "
                              "the last 2 epoch(s) of phase A")
    assert "`--set phases.A.epochs=6`" in message and "`--time-budget`" in message
    assert message in summary["warnings"] and message in " ".join(done.stderr.split())


def _small_detection_set(root: Path) -> Path:
    import detgen

    return detgen.make_voc(root / "voc", 16, seed=4)


def test_small_objects_warned_in_inspect_and_finetune(tmp_path: Path) -> None:
    """detgen's shapes (24-120 px on 120-240 px photos) at input size 48: most are under
    16 px. `data inspect` and the finetune summary both say so, with a larger input size."""
    data = _small_detection_set(tmp_path)
    report_path = tmp_path / "inspect.json"
    done = cli("data", "inspect", data, "--task", "detection", "--input-size", "48",
               "--json", report_path)
    assert done.returncode == 0, done.stderr
    report = json.loads(report_path.read_text())
    counts = report["small_objects"]
    assert counts["small"] > counts["objects"] / 3 and counts["suggested_input_size"] > 48
    words = [w for w in report["warnings"] if w.startswith("objects are small at 48 px")]
    assert len(words) == 1 and f"`model.input_size: {counts['suggested_input_size']}`" in words[0]
    assert "warning: objects are small at 48 px" in done.stderr

    recipe = tmp_path / "det.yaml"
    recipe.write_text(yaml.safe_dump({
        "name": "det-small", "task": "detection",
        "data": {"source": str(data), "val_fraction": 0.25, "test_fraction": 0.25},
        "model": {"architecture": "tf_efficientnet_lite0", "input_size": 48,
                  "detector": {"fpn_channels": 16, "head_convs": 1}},
        "augment": {"preset": "light"},
        "train": {"batch_size": 8, "eval_batch_size": 8, "num_threads": 1},
        "phases": [{"name": "A", "epochs": 1, "unfreeze": "head", "lr": 0.005}]}))
    run = tmp_path / "run"
    trained = cli("finetune", recipe, "--out", run)
    assert trained.returncode == 0, trained.stderr
    summary = json.loads((run / "summary.json").read_text())
    small = [a for a in summary["advice"] if a["code"] == "small_objects"]
    assert len(small) == 1 and small[0]["message"].startswith("objects are small at 48 px")
    assert small[0]["message"] in " ".join(trained.stderr.split())


def test_small_objects_not_warned_for_classification(tmp_path: Path) -> None:
    from edgetl.data.detection.which import reads_objects
    from edgetl.tasks import TASKS

    assert {name for name in TASKS if reads_objects(name)} == \
        {t.name for t in TASKS.values() if t.data_reader == "edgetl.data.detection:load_detection"}


# --------------------------------------------------------------------------- acceptance
@pytest.mark.slow
def test_time_budget_5m_on_elpv(tmp_path: Path) -> None:
    """Issue 27's acceptance line: `finetune --time-budget 5m` on ELPV (the built-in default
    data of recipes/examples/elpv-quickstart.yaml, as `make demo`) ends within 5 minutes plus
    the test report, with a best checkpoint and an honest summary."""
    run = tmp_path / "run"
    started = time.perf_counter()
    done = cli("finetune", QUICKSTART, "--out", run,
               "--time-budget", "5m", timeout=1800)
    wall = time.perf_counter() - started
    assert done.returncode == 0, done.stderr
    summary = json.loads((run / "summary.json").read_text())
    assert summary["time_budget"]["used_s"] <= 300.0
    assert (run / "best").is_dir() and summary["best_epoch"] is not None
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert sum(p["epochs"] for p in summary["phases"]) == len(lines)
    assert summary["phases"][-1]["ended_by"] in ("time budget", "early stop")
    test_s = wall - summary["wall_seconds"]
    assert wall <= 300.0 + test_s + 60.0  # 5 minutes, the test report, process start-up
