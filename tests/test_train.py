"""Phased fine-tuning: freezing, parameter groups, losses, early stopping, resume after SIGKILL.

Runs use the packaged Lite0 weights at a small input size (64 px) on generated images, so each
real `finetune` takes seconds on 2 cores.
"""

from __future__ import annotations

import json
import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from edgetl.recipe import LossConfig, PhaseConfig, load_recipe
from edgetl.train.losses import FocalLoss, balanced_class_weights, build_loss

CLI = [sys.executable, "-m", "edgetl.cli.main"]


# --------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def manifest(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from fixtures_runs import make_image_list

    root = tmp_path_factory.mktemp("train_data")
    return make_image_list(root, {"train": 14, "val": 6, "test": 6}, seed=3)


def write_recipe(path: Path, data: Path, phases: list[dict], **extra: object) -> Path:
    import yaml

    recipe = {
        "name": "t",
        "data": {"source": str(data)},
        "model": {"architecture": "tf_efficientnet_lite0", "input_size": 64},
        "augment": {"preset": "light"},
        "train": {"batch_size": 8, "eval_batch_size": 32, "num_threads": 1},
        "phases": phases,
        **extra,
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=600,
                          env={**os.environ, **(env or {})})


def finetune_killed_when(recipe: Path, run: Path, ready: Callable[[], bool], what: str) -> None:
    """Start `finetune`, SIGKILL it as soon as `ready()` holds (polled), fail if it ends first."""
    proc = subprocess.Popen([*CLI, "finetune", str(recipe), "--out", str(run)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not ready():
        if proc.poll() is not None:
            pytest.fail(f"finetune ended before {what}: {proc.stderr.read()}")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def state_of(run: Path, which: str) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(run / which / "model.safetensors"))


def pretrained_state() -> dict[str, torch.Tensor]:
    """The model as a run with seed 0 starts: packaged weights plus the seeded new head."""
    from edgetl.models import HeadConfig, build_classifier

    torch.manual_seed(0)
    model, _ = build_classifier("tf_efficientnet_lite0", 3, HeadConfig())
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def metrics_lines(run: Path) -> list[dict]:
    return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines() if x]


# --------------------------------------------------------------------------- losses
def test_balanced_weights_formula() -> None:
    # n / (k * count): 100 samples, counts 80/20 -> 100/(2*80), 100/(2*20)
    assert np.allclose(balanced_class_weights([80, 20]), [0.625, 2.5])


def test_focal_loss_hand_computed() -> None:
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    target = torch.tensor([0, 0])
    p0 = math.exp(2) / (math.exp(2) + 1)  # 0.8808
    p1 = 1 / (1 + math.e)  # 0.2689
    expected = (-(1 - p0) ** 2 * math.log(p0) - (1 - p1) ** 2 * math.log(p1)) / 2
    assert FocalLoss(gamma=2.0)(logits, target).item() == pytest.approx(expected, rel=1e-5)
    weighted = FocalLoss(gamma=0.0, weight=torch.tensor([3.0, 1.0]))(logits, target)
    assert weighted.item() == pytest.approx(3 * (-math.log(p0) - math.log(p1)) / 2, rel=1e-5)


def test_build_loss_balanced_cross_entropy() -> None:
    loss, weights = build_loss(LossConfig(class_weights="balanced"), [30, 10])
    assert weights == pytest.approx([40 / 60, 40 / 20])
    assert torch.allclose(loss.weight, torch.tensor(weights, dtype=torch.float32))


# --------------------------------------------------------------------------- groups
def test_each_phase_unfreezes_what_the_recipe_says() -> None:
    from edgetl.models import HeadConfig, build_classifier
    from edgetl.train.groups import apply_freeze, block_layout, param_groups

    model, _ = build_classifier("tf_efficientnet_lite0", 2, HeadConfig())
    layout = block_layout(model)
    n = layout.num_blocks
    phase_a = PhaseConfig(name="A", epochs=1, unfreeze="head", lr=1e-2)
    assert apply_freeze(model, layout, phase_a) == set(layout.head)
    assert [g["lr"] for g in param_groups(model, layout, phase_a)] == [1e-2, 1e-2]

    phase_b = PhaseConfig(name="B", epochs=1, unfreeze="last", blocks=2, lr=1e-3)
    trained = apply_freeze(model, layout, phase_b)
    assert trained == set(layout.head) | set(layout.blocks[n - 1]) | set(layout.blocks[n - 2])
    assert all(p.requires_grad == (name in trained) for name, p in model.named_parameters())
    lrs = {g["block"]: g["lr"] for g in param_groups(model, layout, phase_b)}
    assert lrs == {"head": 1e-3, f"block{n - 1}": pytest.approx(1e-4),
                   f"block{n - 2}": pytest.approx(1e-4)}

    phase_c = PhaseConfig(name="C", epochs=1, unfreeze="all", lr=1e-3, late_blocks=2)
    apply_freeze(model, layout, phase_c)
    groups = param_groups(model, layout, phase_c)
    lrs = {g["block"]: g["lr"] for g in groups}
    assert lrs["head"] == 1e-3 and lrs[f"block{n - 1}"] == pytest.approx(1e-4)
    assert lrs["block0"] == pytest.approx(1e-5)  # early blocks 0.01x
    # norms and biases never decay
    for g in groups:
        if g["weight_decay"] > 0:
            assert all(p.ndim > 1 for p in g["params"])
    decayed = PhaseConfig(name="C", epochs=1, unfreeze="all", lr=1.0, layer_decay=0.5)
    lrs = {g["block"]: g["lr"] for g in param_groups(model, layout, decayed)}
    assert lrs[f"block{n - 1}"] == pytest.approx(0.5) and lrs[f"block{n - 3}"] == pytest.approx(
        0.125)


# --------------------------------------------------------------------------- recipes
def test_unknown_recipe_key_exits_2_with_suggestion(tmp_path: Path, manifest: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", manifest, [{"name": "A", "epochs": 1}])
    text = recipe.read_text().replace("batch_size", "batch_sise")
    recipe.write_text(text)
    proc = run_cli("finetune", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "train.batch_sise" in lines[0] and "train.batch_size" in lines[0]
    assert not (tmp_path / "run").exists()


def test_set_override_and_bad_value(tmp_path: Path) -> None:
    recipe = load_recipe(None, ["phases=[{name: A, epochs: 2}]", "phases.A.lr=0.5"])
    assert recipe.phases[0].lr == 0.5
    with pytest.raises(Exception, match="greater than 0"):
        load_recipe(None, ["phases=[{name: A, epochs: 2, lr: -1}]"])


# --------------------------------------------------------------------------- real runs
def test_phase_a_leaves_backbone_and_bn_statistics_unchanged(tmp_path: Path,
                                                              manifest: Path) -> None:
    """Augmented phase A (no feature cache): the backbone runs in train mode every step."""
    recipe = write_recipe(tmp_path / "r.yaml", manifest,
                          [{"name": "A", "epochs": 2, "lr": 0.01, "augment": True}])
    proc = run_cli("finetune", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    after = state_of(tmp_path / "run", "last")
    before = pretrained_state()
    head = [k for k in after if k.startswith("classifier.")]
    body = [k for k in after if not k.startswith("classifier.")]
    assert any("running_mean" in k for k in body)
    for key in body:
        assert torch.equal(after[key], before[key]), f"{key} changed in phase A"
    # The head starts from the run's seed (0), so its initial weights can be rebuilt: it trained.
    assert any(not torch.equal(after[k], before[k]) for k in head)
    lines = metrics_lines(tmp_path / "run")
    assert [line["phase"] for line in lines] == ["A", "A"]
    assert lines[0]["trainable_blocks"] == [] and lines[0]["cached_frozen"] is False
    assert (tmp_path / "run" / "curves.png").stat().st_size > 1000


def test_early_stopping_stops_and_keeps_best(tmp_path: Path, manifest: Path) -> None:
    # min_delta so large that nothing after the first epoch counts as better: stops at patience.
    recipe = write_recipe(tmp_path / "r.yaml", manifest, [
        {"name": "A", "epochs": 6, "lr": 0.003, "augment": False,
         "early_stopping": {"metric": "val_loss", "patience": 2, "min_delta": 1000.0}},
    ])
    proc = run_cli("finetune", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(tmp_path / "run")
    assert len(lines) == 3 and lines[-1]["early_stopped"] is True
    assert lines[0]["cached_frozen"] is True
    # the selection rule: the highest accuracy, a tie going to the lower validation loss
    best_epoch = max(lines, key=lambda r: (r["val_accuracy"], -r["val_loss"]))["epoch"]
    record = json.loads((tmp_path / "run" / "best" / "checkpoint.json").read_text())
    assert record["epoch"] == best_epoch


def test_resume_after_sigkill_in_phase_b(tmp_path: Path, manifest: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", manifest, [
        {"name": "A", "epochs": 1, "lr": 0.01, "augment": False},
        {"name": "B", "epochs": 4, "unfreeze": "last", "blocks": 2, "lr": 0.003},
    ])
    run = tmp_path / "run"
    finetune_killed_when(recipe, run, lambda: (run / "metrics.jsonl").is_file() and any(
        line["phase"] == "B" for line in metrics_lines(run)), "phase B")
    killed_at = len(metrics_lines(run))
    assert 2 <= killed_at < 5, "the kill should land inside phase B"

    done = run_cli("finetune", str(recipe), "--out", str(run), "--resume")
    assert done.returncode == 0, done.stderr
    lines = metrics_lines(run)
    assert [line["epoch"] for line in lines] == [1, 2, 3, 4, 5]
    assert [line["phase"] for line in lines] == ["A", "B", "B", "B", "B"]
    assert all(line["trainable_blocks"] == lines[1]["trainable_blocks"] for line in lines[1:])

    from edgetl.models import HeadConfig, build_classifier
    from edgetl.train.groups import block_layout

    model, _ = build_classifier("tf_efficientnet_lite0", 3, HeadConfig())
    layout = block_layout(model)
    trainable = {n for i in lines[1]["trainable_blocks"] for n in layout.blocks[i]}
    before, after = pretrained_state(), state_of(run, "last")
    for key, value in after.items():
        if key.startswith("classifier."):
            continue
        param_name = key
        frozen = param_name not in trainable and not any(
            key.startswith(n.rsplit(".", 1)[0] + ".") for n in trainable)
        if frozen:
            assert torch.equal(value, before[key]), f"{key} trained although frozen"
    assert any(not torch.equal(after[n], before[n]) for n in trainable)


def test_evaluate_matches_finetune(tmp_path: Path, manifest: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", manifest,
                          [{"name": "A", "epochs": 2, "lr": 0.01, "augment": False}])
    run = tmp_path / "run"
    assert run_cli("finetune", str(recipe), "--out", str(run)).returncode == 0
    proc = run_cli("evaluate", str(run), "--json", str(tmp_path / "e.json"), "--out",
                   str(tmp_path / "eval"))
    assert proc.returncode == 0, proc.stderr
    evaluated = json.loads((tmp_path / "e.json").read_text())
    trained = json.loads((run / "test_metrics.json").read_text())
    assert evaluated["accuracy"] == trained["accuracy"]
    for key in ("accuracy", "balanced_accuracy", "macro_f1", "n", "per_class",
                "confusion_matrix"):
        assert key in evaluated
    assert evaluated["n"] == 18
    assert (tmp_path / "eval" / "confusion-test.png").stat().st_size > 1000


def test_batched_augmentation_path_trains(tmp_path: Path, manifest: Path) -> None:
    """The whole-batch augmentation (the GPU data path) forced on for a CPU run."""
    recipe = write_recipe(tmp_path / "r.yaml", manifest, [
        {"name": "A", "epochs": 1, "lr": 0.01, "augment": False},
        {"name": "B", "epochs": 2, "unfreeze": "last", "blocks": 1, "lr": 0.003},
    ], augment={"preset": "standard", "vflip": True, "rot90": True})
    text = recipe.read_text().replace("num_threads: 1", "num_threads: 1\n  batch_augment: 'on'")
    recipe.write_text(text)
    proc = run_cli("finetune", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(tmp_path / "run")
    assert [line["phase"] for line in lines] == ["A", "B", "B"]
    assert lines[-1]["cached_frozen"] is False and lines[-1]["train_loss"] > 0
    # 14 training images per class x 3 classes, each seen once per epoch
    assert lines[-1]["images_per_s"] * lines[-1]["train_seconds"] == pytest.approx(42, rel=0.01)


def test_batched_evaluation_matches_per_image_path(tmp_path: Path, manifest: Path) -> None:
    """Validation and cached features from whole device batches equal the per-image CPU path."""
    phases = [{"name": "A", "epochs": 2, "lr": 0.01, "augment": False}]
    results = {}
    for mode in ("on", "off"):
        recipe = write_recipe(tmp_path / f"{mode}.yaml", manifest, phases)
        recipe.write_text(recipe.read_text().replace(
            "num_threads: 1", f"num_threads: 1\n  batch_augment: '{mode}'"))
        proc = run_cli("finetune", str(recipe), "--out", str(tmp_path / mode))
        assert proc.returncode == 0, proc.stderr
        results[mode] = metrics_lines(tmp_path / mode)
    for on, off in zip(results["on"], results["off"], strict=True):
        for key in ("train_loss", "val_loss", "val_accuracy"):
            assert on[key] == pytest.approx(off[key], abs=1e-5), key


@pytest.mark.slow
def test_compiled_training_forward_keeps_checkpoint_keys(tmp_path: Path, manifest: Path) -> None:
    recipe = write_recipe(tmp_path / "r.yaml", manifest, [
        {"name": "A", "epochs": 1, "lr": 0.01, "augment": False},
        {"name": "B", "epochs": 1, "unfreeze": "last", "blocks": 1, "lr": 0.003}])
    recipe.write_text(recipe.read_text().replace(
        "num_threads: 1", "num_threads: 1\n  compile: default"))
    proc = run_cli("finetune", str(recipe), "--out", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stderr
    from safetensors.torch import load_file

    keys = set(load_file(str(tmp_path / "run" / "best" / "model.safetensors")))
    assert not any("_orig_mod" in key for key in keys)
    assert [line["phase"] for line in metrics_lines(tmp_path / "run")] == ["A", "B"]


def test_yaml_on_off_switches_read_as_meant() -> None:
    """Unquoted YAML on/off are booleans; the switches take them as the words they look like."""
    on = load_recipe(None, ["train.batch_augment=on", "train.compile=true"])
    off = load_recipe(None, ["train.batch_augment=off", "train.compile=off"])
    assert (on.train.batch_augment, on.train.compile) == ("on", "default")
    assert (off.train.batch_augment, off.train.compile) == ("off", "off")


def test_feature_batches_cover_every_image_once_per_epoch() -> None:
    """The GPU twin of the FeatureSet DataLoader: a permutation per epoch, a view per image,
    shards that split the epoch between processes without overlap."""
    from edgetl.train.loop import FeatureBatches

    views, n = 3, 50
    features = torch.arange(views * n, dtype=torch.float32).view(views, n, 1)  # value = v*n + i
    seen = []
    for rank in (0, 1):
        batches = FeatureBatches(features, list(range(n)), 8, torch.Generator().manual_seed(0),
                                 True, (rank, 2))
        assert len(batches) == 4
        for x, y in batches:
            index = x.flatten().long() % n
            assert torch.equal(index, y)  # each row is its own image, in some view
            seen.extend(y.tolist())
    assert sorted(seen) == list(range(n))
    one = FeatureBatches(features, list(range(n)), 64, torch.Generator().manual_seed(1), True)
    x, _ = next(iter(one))
    assert len(set((x.flatten().long() // n).tolist())) == views  # every view is drawn
    ordered = FeatureBatches(features, list(range(n)), 16, None, False)
    x, y = next(iter(ordered))
    assert torch.equal(y, torch.arange(16)) and torch.equal(x.flatten(), torch.arange(16.0))


# --------------------------------------------------------------------------- weight average
def ema_recipe(path: Path, manifest: Path) -> Path:
    return write_recipe(path, manifest, [
        {"name": "A", "epochs": 1, "lr": 0.01, "augment": False},
        {"name": "B", "epochs": 4, "unfreeze": "last", "blocks": 2, "lr": 0.003,
         "augment": False, "ema_epochs": 1.0},
    ])


def test_averaged_weights_are_validated_and_survive_a_kill(tmp_path: Path,
                                                           manifest: Path) -> None:
    """A run killed inside an averaged phase and resumed ends with the same weights, to float
    rounding, as the same run uninterrupted: the average is saved with the optimizer state."""
    recipe = ema_recipe(tmp_path / "r.yaml", manifest)
    whole = tmp_path / "whole"
    proc = run_cli("finetune", str(recipe), "--out", str(whole))
    assert proc.returncode == 0, proc.stderr
    lines = metrics_lines(whole)
    assert [line["phase"] for line in lines] == ["A", "B", "B", "B", "B"]

    cut = tmp_path / "cut"
    finetune_killed_when(recipe, cut, lambda: (cut / "last" / "ema.pt").is_file(),
                         "the averaged phase")
    assert len(metrics_lines(cut)) < 5, "the kill should land inside phase B"
    done = run_cli("finetune", str(recipe), "--out", str(cut), "--resume")
    assert done.returncode == 0, done.stderr
    resumed, straight = state_of(cut, "last"), state_of(whole, "last")
    for key, value in straight.items():
        assert torch.allclose(resumed[key], value, atol=1e-5), key
    assert [line["val_loss"] for line in metrics_lines(cut)] == pytest.approx(
        [line["val_loss"] for line in lines], abs=1e-5)
