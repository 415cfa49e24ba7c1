"""Issue 26, item 2: a diverging run stops with exit 2 and one line; no NaN is selected as best,
nothing already written is lost, and every JSON file stays strict JSON. Real tiny runs."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest
from reliability_common import edgetl, last_line, tiny_recipe

from edgetl.train.divergence import divergence_reason, reference_loss


def strict(text: str) -> Any:
    """json.loads that refuses NaN and Infinity, as RFC 8259 does."""
    def refuse(name: str) -> None:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def strict_lines(path: Path) -> list[dict[str, Any]]:
    return [strict(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures_runs import make_image_list

    return make_image_list(tmp_path_factory.mktemp("div_data"),
                               {"train": 6, "val": 3, "test": 3}, seed=7)


def two_phases(path: Path, manifest: Path, lr_b: float, **train: object) -> Path:
    """Phase A fits the head at a sane rate for one epoch; phase B runs at `lr_b`."""
    return tiny_recipe(path, manifest, phases=[
        {"name": "A", "epochs": 1, "lr": 0.01, "augment": False},
        {"name": "B", "epochs": 2, "lr": lr_b, "augment": False, "unfreeze": "head"}],
        train={"batch_size": 8, "eval_batch_size": 32, "num_threads": 1, **train})


def test_the_rule() -> None:
    assert reference_loss(None, None) == 1.0  # the floor
    assert reference_loss(2.5, {"val_loss": 3.0}) == 3.0
    assert divergence_reason({"train_loss": float("nan")}, 1.0) == "train_loss is nan"
    assert divergence_reason({"train_loss": 0.5, "val_loss": float("inf")}, 1.0) == \
        "val_loss is inf"
    assert divergence_reason({"train_loss": 99.0, "val_loss": 50.0}, 1.0) is None
    assert "more than 100x" in divergence_reason({"train_loss": 1.5e26}, 1.1)


@pytest.mark.parametrize("lr", [1e9, 1e30])
def test_a_diverging_first_phase_stops_and_blocks_no_retry(tmp_path: Path, manifest: Path,
                                                            lr: float) -> None:
    run = tmp_path / "run"
    recipe = tiny_recipe(tmp_path / "r.yaml", manifest,
                         phases=[{"name": "A", "epochs": 3, "lr": lr, "augment": False}])
    proc = edgetl("finetune", recipe, "--out", run)
    assert proc.returncode == 2, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("error: training diverged in phase A epoch 1"), line
    assert ("is nan" if lr > 1e20 else "more than 100x the phase's starting loss") in line
    assert "no epoch was saved" in line and "Traceback" not in proc.stderr
    # Nothing was trained: no NaN best, and the folder does not block the corrected command.
    assert sorted(p.name for p in run.iterdir()) == [".edgetl-run"]
    fixed = edgetl("finetune", tiny_recipe(tmp_path / "ok.yaml", manifest), "--out", run)
    assert fixed.returncode == 0, fixed.stderr


def test_a_diverging_later_phase_keeps_what_was_trained(tmp_path: Path, manifest: Path) -> None:
    run = tmp_path / "run"
    recipe = two_phases(tmp_path / "r.yaml", manifest, 1e30, on_spike="continue")
    proc = edgetl("finetune", recipe, "--out", run)
    assert proc.returncode == 2, proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("error: training diverged in phase B epoch 1 (run epoch 2"), line
    assert "best/ holds epoch 1, last/ epoch 1, no test report" in line
    assert [r["epoch"] for r in strict_lines(run / "metrics.jsonl")] == [1]
    best = strict((run / "best" / "checkpoint.json").read_text())
    assert best["epoch"] == 1 and math.isfinite(best["metrics"]["val_loss"])
    failed = strict((run / "failed.json").read_text())
    assert failed["failed"] == "training diverged" and failed["epoch"] == 2
    assert failed["train_loss"] is None or failed["val_loss"] is None  # NaN written as null
    assert not (run / "summary.json").exists() and not (run / "test_metrics.json").exists()
    # --resume says why it cannot continue, and changes nothing.
    before = {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()}
    again = edgetl("finetune", recipe, "--out", run, "--resume")
    assert again.returncode == 2, again.stderr
    assert last_line(again.stderr).startswith(f"error: cannot resume {run}: training diverged")
    assert {p.name: p.read_bytes() for p in run.iterdir() if p.is_file()} == before


def test_the_spike_guard_retries_a_diverged_phase_once(tmp_path: Path, manifest: Path) -> None:
    """lower_lr: the diverged epoch is rolled back and logged (NaN as null), the phase retried at
    0.1x; when it diverges again the run stops."""
    run = tmp_path / "run"
    proc = edgetl("finetune", two_phases(tmp_path / "r.yaml", manifest, 1e30), "--out", run)
    assert proc.returncode == 2, proc.stderr
    assert "spike, diverged: " in proc.stderr and "retrying phase B at 0.1x" in proc.stderr
    line = last_line(proc.stderr)
    assert line.startswith("error: training diverged in phase B epoch 1 (run epoch 3, "
                           "learning rate 1e+29)"), line
    rows = strict_lines(run / "metrics.jsonl")
    assert [r["epoch"] for r in rows] == [1, 2]
    assert rows[1]["spike"]["action"] == "lower_lr" and "diverged" in rows[1]
    assert None in (rows[1]["train_loss"], rows[1]["val_loss"])
    assert strict((run / "best" / "checkpoint.json").read_text())["epoch"] == 1
    state = strict((run / "last" / "train_state.json").read_text())
    assert state["global_epoch"] == 2 and state["done"] is False
