"""The phased fine-tuning run: data -> split -> model -> phases A/B/C -> checkpoints -> test report.

Resumable: every finished epoch leaves `last/` (weights, optimizer, phase/epoch state) complete on
disk, and `--resume` rebuilds the phase's frozen state from the recipe before loading it, so a
resumed run never trains what the recipe froze (the failure Lightning #21901 describes).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.errors import DataError, RecipeError
from edgetl.io import append_line, atomic_write_json, atomic_write_text
from edgetl.recipe import PhaseConfig, Recipe
from edgetl.spec import LabelSpec, PreprocessSpec

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
SPLIT_FILE = "split.csv"
LABELS_FILE = "labels.json"


@dataclass
class RunResult:
    run_dir: Path
    test_report: dict[str, Any]
    best_epoch: int | None
    best_value: float | None
    train_seconds: float


# ---------------------------------------------------------------------------- run folder
def prepare_run_folder(out: Path, recipe: Recipe, resume: bool) -> Recipe:
    """New run: write the resolved recipe. Resume: the stored recipe wins; a different one is an
    error rather than a silent mix of two configurations."""
    from edgetl.recipe import load_recipe

    stored = out / RECIPE_FILE
    if resume:
        if not stored.is_file():
            raise RecipeError(f"nothing to resume in {out}: it has no {RECIPE_FILE}",
                              "start the run without --resume")
        previous = load_recipe(stored)
        if previous.sha256() != recipe.sha256():
            raise RecipeError(
                f"--resume with a recipe that differs from the one {out} started with",
                f"rerun with the same recipe and --set values, or use {stored} itself",
            )
        return previous
    if out.exists() and any(out.iterdir()):
        raise RecipeError(f"run folder {out} already exists and is not empty",
                          "pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stored, recipe.to_yaml())
    return recipe


def _truncate_metrics(path: Path, finished_epochs: int) -> None:
    """Keep exactly one line per finished epoch (a crash may have logged an unsaved epoch)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["epoch"] <= finished_epochs]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


# ---------------------------------------------------------------------------- set-up pieces
def resolve_device(requested: str) -> str:
    import torch

    from edgetl.errors import BackendUnavailableError

    if requested == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("--device cuda was asked for but no CUDA device is visible",
                                      "use --device cpu or auto")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def resolve_spec(recipe: Recipe, weights_spec: PreprocessSpec) -> PreprocessSpec:
    """The weights' spec, overridden only by what the recipe says (recorded in `source`)."""
    spec = weights_spec
    changes: list[str] = []
    if recipe.model.input_size and recipe.model.input_size != spec.input_size[0]:
        spec = spec.at_size(recipe.model.input_size)
        changes.append(f"input_size={recipe.model.input_size}")
    overrides = {k: v for k, v in recipe.preprocess.model_dump().items() if v is not None}
    if overrides:
        spec = spec.with_overrides(**overrides)
        changes.extend(f"{k}={v}" for k, v in overrides.items())
    if changes:
        spec = spec.with_overrides(source=f"{weights_spec.source}; recipe: {', '.join(changes)}")
    return spec


def split_data(recipe: Recipe, out: Path, resume: bool):  # noqa: ANN201 - (DataSet, LabelSpec)
    """Load and split the data once. The split manifest and the class order are stored in the run
    folder; a resumed run reuses both verbatim (a CSV alone would sort the classes)."""
    from edgetl.data.sources import load_data
    from edgetl.data.split import leakage_report, make_splits, write_manifest

    split_file, labels_file = out / SPLIT_FILE, out / LABELS_FILE
    if resume and split_file.is_file() and labels_file.is_file():
        labels = LabelSpec.from_dict(json.loads(labels_file.read_text()))
        return load_data(str(split_file), check_images=False), labels
    data = load_data(recipe.data.source)
    data = make_splits(data, recipe.data.val_fraction, recipe.data.test_fraction,
                       recipe.train.seed, recipe.data.near_duplicate_threshold)
    labels = LabelSpec(tuple(data.classes))
    atomic_write_json(out / "leakage.json",
                      leakage_report(data, near_dup_threshold=recipe.data.near_duplicate_threshold))
    write_manifest(data, split_file)
    atomic_write_json(labels_file, labels.to_dict())
    return data, labels


def _labels_of(samples: list, labels: LabelSpec) -> list[int]:
    return [labels.index(s.label) for s in samples]


def _better(metric: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value < best - min_delta if metric == "val_loss" else value > best + min_delta


# ---------------------------------------------------------------------------- the run
def run_finetune(
    recipe: Recipe,
    out: str | Path,
    *,
    device: str = "auto",
    resume: bool = False,
    console: Any = None,
) -> RunResult:
    """Train the recipe's phases into `out`; returns the test report of the best checkpoint."""
    import torch
    from rich.console import Console
    from torch.utils.data import DataLoader, WeightedRandomSampler

    from edgetl.data.transforms import (
        augment_settings,
        center_crop_transform,
        normalize_transform,
        train_transform,
    )
    from edgetl.evaluate.metrics import quick_metrics
    from edgetl.evaluate.plots import plot_curves
    from edgetl.models import HeadConfig, build_classifier
    from edgetl.train.checkpoint import save_checkpoint
    from edgetl.train.frozen import frozen_split
    from edgetl.train.groups import (
        apply_freeze,
        block_layout,
        param_groups,
        set_train_mode,
        trainable_blocks,
    )
    from edgetl.train.imagecache import build_cache
    from edgetl.train.loop import (
        CachedImages,
        FeatureSet,
        Runtime,
        compute_features,
        predict,
        train_one_epoch,
    )
    from edgetl.train.losses import build_loss
    from edgetl.train.progress import progress_bar
    from edgetl.train.schedule import lr_factor, set_lr
    from edgetl.train.state import (
        TrainState,
        load_train_state,
        recover_folder,
        replace_folder,
        save_train_state,
    )

    console = console or Console()
    out = Path(out)
    recipe = prepare_run_folder(out, recipe, resume)
    for name in ("last", "best"):
        recover_folder(out / name)
    resuming = resume and (out / "last" / "train_state.json").is_file()

    if recipe.train.num_threads:
        torch.set_num_threads(recipe.train.num_threads)
    dev = resolve_device(recipe.train.device if device == "auto" else device)
    rt = Runtime(torch.device(dev), torch.bfloat16 if dev == "cuda" else None, dev == "cuda")
    torch.manual_seed(recipe.train.seed)

    # ---- data
    data, labels = split_data(recipe, out, resume)
    train_s, val_s = data.by_split("train"), data.by_split("val")
    if not train_s:
        raise DataError("the training split is empty", "check the data source and split fractions")
    counts = [sum(1 for s in train_s if s.label == c) for c in labels.names]
    if min(counts) == 0:
        empty = labels.names[counts.index(0)]
        raise DataError(f"class '{empty}' has no training images after the split")

    # ---- model and spec
    head = HeadConfig(dropout=recipe.model.head.dropout, hidden=recipe.model.head.hidden)
    model, weights_spec = build_classifier(recipe.model.architecture, labels.num_classes, head,
                                           weights=recipe.model.weights)
    spec = resolve_spec(recipe, weights_spec)
    state = TrainState()
    optimizer_state = None
    if resuming:
        from safetensors.torch import load_file

        state, optimizer_state = load_train_state(out / "last")
        model.load_state_dict(load_file(str(out / "last" / "model.safetensors")))
        _truncate_metrics(out / METRICS_FILE, state.global_epoch)
        console.print(f"[bold]resuming[/] {out}: phase {recipe.phases[min(state.phase_index, len(recipe.phases) - 1)].name}, "
                      f"{state.global_epoch} epoch(s) done")
    model.to(rt.device)
    if rt.channels_last:
        model.to(memory_format=torch.channels_last)
    layout = block_layout(model)
    criterion, class_weights = build_loss(recipe.loss, counts)
    criterion.to(rt.device)

    console.print(f"[bold]edgetl finetune[/] {recipe.name}: {recipe.model.architecture} on "
                  f"{recipe.data.source} ({len(train_s)} train / {len(val_s)} val / "
                  f"{len(data.by_split('test'))} test), device {dev}")
    console.print(f"spec {spec.short_fingerprint()}: {spec.describe().splitlines()[1]}")

    # ---- decode once
    start_all = time.perf_counter()
    cache_dir = os.environ.get("EDGETL_CACHE_DIR") or recipe.data.cache_dir
    paths = [s.path for s in train_s + val_s]
    with progress_bar(console) as bar:
        task = bar.add_task("decode + resize (once)", total=len(paths))
        images, how = build_cache(paths, spec, cache_dir,
                                  progress=lambda n: bar.advance(task, n))
    console.print(f"image cache {how}: {len(images)} images in "
                  f"{time.perf_counter() - start_all:.1f} s")
    train_imgs, val_imgs = images[: len(train_s)], images[len(train_s):]
    y_train, y_val = _labels_of(train_s, labels), _labels_of(val_s, labels)
    crop, norm = center_crop_transform(spec), normalize_transform(spec)

    def eval_tf(img: torch.Tensor) -> torch.Tensor:
        return norm(crop(img))

    aug = augment_settings(recipe.augment.preset, **recipe.augment.overrides())
    aug_tf = train_transform(spec, aug)
    select = recipe.train.select_metric
    generator = torch.Generator().manual_seed(recipe.train.seed)

    def make_loader(dataset, shuffle: bool, batch: int) -> DataLoader:
        sampler = None
        if shuffle and recipe.loss.balanced_sampler:
            weights = [1.0 / counts[y] for y in dataset.labels]
            sampler = WeightedRandomSampler(weights, len(weights), generator=generator)
        return DataLoader(dataset, batch_size=batch, shuffle=shuffle and sampler is None,
                          sampler=sampler, generator=generator if shuffle else None,
                          num_workers=0, pin_memory=dev == "cuda")

    def save_model_folder(folder: Path, extra: dict[str, Any]) -> None:
        save_checkpoint(folder, model, architecture=recipe.model.architecture,
                        head={"dropout": head.dropout, "hidden": head.hidden}, spec=spec,
                        labels=labels, extra={
                            "recipe_sha256": recipe.sha256(),
                            "data": {"origin": recipe.data.source, "split_manifest": SPLIT_FILE},
                            "class_weights": class_weights,
                            **extra,
                        })

    metrics_path = out / METRICS_FILE
    train_seconds = 0.0
    for phase_index in range(state.phase_index, len(recipe.phases)):
        phase: PhaseConfig = recipe.phases[phase_index]
        if phase.epochs == 0:
            state = _next_phase(state)
            continue
        trainable = trainable_blocks(layout, phase)
        apply_freeze(model, layout, phase)
        split = frozen_split(model, layout, trainable) if (
            not phase.augment and phase.cache_frozen) else None
        bs = recipe.train.batch_size
        if split is not None:
            model.eval()
            feats_t0 = time.perf_counter()
            with progress_bar(console) as bar:
                task = bar.add_task(f"phase {phase.name}: frozen part once ({split.where})",
                                    total=len(train_imgs) + len(val_imgs))
                adv = lambda n: bar.advance(task, n)  # noqa: E731
                f_train = compute_features(split.prefix, make_loader(
                    CachedImages(train_imgs, y_train, eval_tf), False, recipe.train.eval_batch_size),
                    rt, adv, tuple(phase.cached_views))
                f_val = compute_features(split.prefix, make_loader(
                    CachedImages(val_imgs, y_val, eval_tf), False, recipe.train.eval_batch_size),
                    rt, adv) if val_imgs else None
            train_seconds += time.perf_counter() - feats_t0
            train_loader = make_loader(FeatureSet(f_train, y_train), True, bs)
            val_loader = make_loader(FeatureSet(f_val, y_val), False, recipe.train.eval_batch_size) \
                if f_val is not None else None
            forward = split.suffix
        else:
            tf = aug_tf if phase.augment else eval_tf
            train_loader = make_loader(CachedImages(train_imgs, y_train, tf), True, bs)
            val_loader = make_loader(CachedImages(val_imgs, y_val, eval_tf), False,
                                     recipe.train.eval_batch_size) if val_imgs else None
            forward = model
        optimizer = torch.optim.AdamW(param_groups(model, layout, phase), lr=phase.lr)
        if optimizer_state is not None and state.phase_index == phase_index and \
                state.epoch_in_phase > 0:
            optimizer.load_state_dict(optimizer_state)
        optimizer_state = None
        steps_per_epoch = max(1, math.ceil(len(train_imgs) / bs))
        total_steps = steps_per_epoch * phase.epochs
        warmup = int(round(phase.warmup_epochs * steps_per_epoch))

        def on_step(optimizer=optimizer, total_steps=total_steps, warmup=warmup,
                    phase=phase) -> None:
            set_lr(optimizer, lr_factor(state.step_in_phase, total_steps, warmup,
                                        phase.min_lr_ratio))
            state.step_in_phase += 1

        for epoch in range(state.epoch_in_phase, phase.epochs):
            torch.manual_seed(recipe.train.seed * 100003 + state.global_epoch)
            generator.manual_seed(recipe.train.seed * 100003 + state.global_epoch)
            set_train_mode(model, phase)
            with progress_bar(console) as bar:
                task = bar.add_task(f"phase {phase.name} epoch {epoch + 1}/{phase.epochs}",
                                    total=len(train_imgs) + len(val_imgs))
                stats = train_one_epoch(forward, train_loader, criterion, optimizer, on_step, rt,
                                        lambda n: bar.advance(task, n))
                model.eval()
                if val_loader is not None:
                    probs, y = predict(forward, val_loader, rt, lambda n: bar.advance(task, n))
                    val = {f"val_{k}": v for k, v in quick_metrics(y, probs).items()}
                else:
                    val = {}
            train_seconds += stats["train_seconds"]
            state.epoch_in_phase = epoch + 1
            state.global_epoch += 1
            lrs = {g["block"]: g["lr"] for g in optimizer.param_groups}
            line = {
                "epoch": state.global_epoch, "phase": phase.name, "phase_epoch": epoch + 1,
                **{k: round(v, 6) for k, v in stats.items()}, **val,
                "lr": lrs, "trainable_blocks": trainable, "cached_frozen": split is not None,
                "wall_seconds": round(time.perf_counter() - start_all, 3),
            }
            improved = select in val and _better(select, val[select], state.best_value)
            if improved or not val:
                state.best_value = val.get(select)
                state.best_epoch = state.global_epoch
                replace_folder(out / "best", lambda tmp, line=line: save_model_folder(
                    tmp, {"epoch": line["epoch"], "phase": phase.name, "metrics": line}))
            stop = False
            if phase.early_stopping is not None and phase.early_stopping.metric in val:
                es = phase.early_stopping
                if _better(es.metric, val[es.metric], state.phase_best_value, es.min_delta):
                    state.phase_best_value, state.bad_epochs = val[es.metric], 0
                else:
                    state.bad_epochs += 1
                    stop = state.bad_epochs >= es.patience
            if stop or epoch + 1 == phase.epochs:
                state = _next_phase(state)
                if stop:
                    state.stopped_early.append(phase.name)
                line["early_stopped"] = stop
            append_line(metrics_path, json.dumps(line))
            replace_folder(out / "last", lambda tmp, line=line, state=state: (
                save_model_folder(tmp, {"epoch": line["epoch"], "phase": phase.name,
                                        "metrics": line}),
                save_train_state(tmp, state, optimizer.state_dict())))
            _print_epoch(console, line, select)
            if stop:
                console.print(f"phase {phase.name}: early stop after {epoch + 1} epoch(s)")
                break
        plot_curves(metrics_path, out / "curves.png")

    state.done = True
    if (out / "last").is_dir():
        save_train_state(out / "last", state, {})
    plot_curves(metrics_path, out / "curves.png")

    from edgetl.evaluate.run_eval import evaluate_checkpoint

    report = evaluate_checkpoint(out, split="test", device=dev, console=console)
    atomic_write_json(out / "test_metrics.json", report)
    summary = {
        "best_epoch": state.best_epoch, select: state.best_value,
        "train_seconds": round(train_seconds, 2),
        "wall_seconds": round(time.perf_counter() - start_all, 2),
        "test_accuracy": report["accuracy"], "test_accuracy_ci95": report["accuracy_ci95"],
        "test_balanced_accuracy": report["balanced_accuracy"], "test_macro_f1": report["macro_f1"],
        "stopped_early": state.stopped_early, "spec_fingerprint": spec.fingerprint(),
    }
    atomic_write_json(out / "summary.json", summary)
    return RunResult(out, report, state.best_epoch, state.best_value, train_seconds)


def _next_phase(state):  # noqa: ANN001, ANN202 - TrainState
    state.phase_index += 1
    state.epoch_in_phase = 0
    state.step_in_phase = 0
    state.phase_best_value = None
    state.bad_epochs = 0
    return state


def _print_epoch(console: Any, line: dict[str, Any], select: str) -> None:
    val = f" {select} {line[select]:.4f}" if select in line else ""
    console.print(f"  epoch {line['epoch']:>3} (phase {line['phase']}) train_loss "
                  f"{line['train_loss']:.4f}{val}  {line['images_per_s']:.0f} img/s")
