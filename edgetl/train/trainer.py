"""The phased trainer: one object holding the run's context, one method per step.

`run()` = set-up (data, model, spec, decode-once cache) -> for each phase: freeze, choose the data
path (cached frozen features or augmented images), optimiser and schedule, epochs with
validation, best/last checkpoints and early stopping -> test report of the best checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from edgetl.data.transforms import (
    augment_settings,
    center_crop_transform,
    normalize_transform,
    train_transform,
)
from edgetl.errors import DataError, RecipeError
from edgetl.evaluate.metrics import quick_metrics
from edgetl.evaluate.plots import plot_curves
from edgetl.io import append_line, atomic_write_json
from edgetl.recipe import PhaseConfig, Recipe, load_recipe
from edgetl.train.checkpoint import save_checkpoint
from edgetl.train.distributed import init_from_env, shutdown, wrap
from edgetl.train.ema import WeightAverage
from edgetl.train.feasible import check_recipe, check_splits
from edgetl.train.finetune import (
    METRICS_FILE,
    RECIPE_FILE,
    SPLIT_FILE,
    RunResult,
    is_better,
    label_indices,
    prepare_run_folder,
    resolve_device,
    resolve_spec,
    split_data,
    truncate_metrics,
)
from edgetl.train.frozen import FrozenSplit, frozen_split
from edgetl.train.groups import (
    apply_freeze,
    block_layout,
    param_groups,
    set_train_mode,
    trainable_blocks,
)
from edgetl.train.imagecache import build_cache
from edgetl.train.loop import (
    AugmentedBatches,
    CachedImages,
    FeatureBatches,
    FeatureSet,
    Runtime,
    TensorBatches,
    compute_features,
    map_features,
    predict,
    train_one_epoch,
    use_channels_last,
)
from edgetl.train.losses import build_loss
from edgetl.train.progress import progress_bar
from edgetl.train.runfolder import load_last, load_torch_state, open_run_folder
from edgetl.train.schedule import lr_factor, set_lr
from edgetl.train.state import (
    TrainState,
    recover_folder,
    replace_folder,
    save_train_state,
)

EMA_FILE = "ema.pt"  # the moving average of a phase cut short, next to the optimizer state


@dataclass
class PhasePlan:
    """What one phase trains and on which inputs."""

    phase: PhaseConfig
    trainable: list[int]
    forward: Callable[[torch.Tensor], torch.Tensor]
    train_loader: DataLoader
    val_loader: DataLoader | None
    cached: bool
    train_forward: Callable[[torch.Tensor], torch.Tensor] | None = None  # DDP/compiled, if any

    def training_forward(self) -> Callable[[torch.Tensor], torch.Tensor]:
        # `is None`, not `or`: truth-testing a module can call its __len__
        return self.forward if self.train_forward is None else self.train_forward


class PhasedTrainer:
    def __init__(self, recipe: Recipe, out: Path, *, device: str, resume: bool,
                 console: Any) -> None:
        self.out = out
        self.dev = resolve_device(recipe.train.device if device == "auto" else device)
        self.dist = init_from_env(self.dev)
        # Only rank 0 writes; the others read what it wrote once it is there.
        if self.dist.is_main:
            check_recipe(recipe)
            resume = open_run_folder(out, resume, console)
            self.recipe = prepare_run_folder(out, recipe, resume)
            for name in ("last", "best"):
                recover_folder(out / name)
        self.dist.barrier()
        if not self.dist.is_main:
            self.recipe = load_recipe(out / RECIPE_FILE)
            console = type(console)(quiet=True)
        self.console = console
        self.resume = resume
        self.resuming = resume and (out / "last" / "train_state.json").is_file()
        if self.recipe.train.num_threads:
            torch.set_num_threads(self.recipe.train.num_threads)
        cuda = self.dev == "cuda"
        device_obj = torch.device(f"cuda:{self.dist.local_rank}") if cuda and self.dist.enabled \
            else torch.device(self.dev)
        # channels_last is decided in setup() (train.memory_format), once the data size is known.
        self.rt = Runtime(device_obj, torch.bfloat16 if cuda else None)
        self.feature_memo: dict[tuple[str, tuple[str, ...]], tuple] = {}
        self.state = TrainState()
        self.train_seconds = 0.0
        self.start = time.perf_counter()
        self.generator = torch.Generator().manual_seed(self.recipe.train.seed)

    # ------------------------------------------------------------------ set-up
    def setup(self) -> None:
        from edgetl.models import HeadConfig, build_classifier

        recipe = self.recipe
        if self.dist.is_main:
            data, self.labels = split_data(recipe, self.out, self.resume)
        self.dist.barrier()
        if not self.dist.is_main:  # read rank 0's split back (the resume path)
            data, self.labels = split_data(recipe, self.out, True)
        self.data = data
        self.train_s, self.val_s = data.by_split("train"), data.by_split("val")
        if not self.train_s:
            raise DataError("the training split is empty",
                            "check the data source and split fractions")
        self.counts = [sum(1 for s in self.train_s if s.label == c) for c in self.labels.names]
        if min(self.counts) == 0:
            empty = self.labels.names[self.counts.index(0)]
            raise DataError(f"class '{empty}' has no training images after the split")
        check_splits(data, self.labels.names, recipe.data.val_fraction,
                     recipe.data.test_fraction)

        torch.manual_seed(recipe.train.seed)  # the new head's initial weights
        self.head = HeadConfig(dropout=recipe.model.head.dropout, hidden=recipe.model.head.hidden)
        self.model, weights_spec = build_classifier(
            recipe.model.architecture, self.labels.num_classes, self.head,
            weights=recipe.model.weights)
        self.spec = resolve_spec(recipe, weights_spec)
        self.optimizer_state: dict | None = None
        self.ema_state: dict | None = None
        self.ema: WeightAverage | None = None
        if self.resuming:
            self._load_last()
        self.rt.channels_last = self._channels_last()
        self.model.to(self.rt.device)
        if self.rt.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.layout = block_layout(self.model)
        self.criterion, self.class_weights = build_loss(recipe.loss, self.counts)
        self.criterion.to(self.rt.device)
        self.console.print(
            f"[bold]edgetl finetune[/] {recipe.name}: {recipe.model.architecture} on "
            f"{recipe.data.source} ({len(self.train_s)} train / {len(self.val_s)} val / "
            f"{len(data.by_split('test'))} test), device {self.dev}")
        self.console.print(f"spec {self.spec.short_fingerprint()}: "
                           + "; ".join(self.spec.describe().splitlines()[:3]))
        self._decode_once()

    def _channels_last(self) -> bool:
        planned = len(self.train_s) * sum(p.epochs for p in self.recipe.phases)
        return use_channels_last(self.recipe.train.memory_format, self.dev, planned)

    def _load_last(self) -> None:
        from safetensors.torch import load_file

        self.state, self.optimizer_state = load_last(self.out / "last")
        if (self.out / "last" / EMA_FILE).is_file():
            self.ema_state = load_torch_state(self.out / "last" / EMA_FILE)
        self.model.load_state_dict(load_file(str(self.out / "last" / "model.safetensors")))
        truncate_metrics(self.out / METRICS_FILE, self.state.global_epoch)
        phases = self.recipe.phases
        where = phases[min(self.state.phase_index, len(phases) - 1)].name
        self.console.print(f"[bold]resuming[/] {self.out}: phase {where}, "
                           f"{self.state.global_epoch} epoch(s) done")

    def _decode_once(self) -> None:
        cache_dir = os.environ.get("EDGETL_CACHE_DIR") or self.recipe.data.cache_dir
        paths = [s.path for s in self.train_s + self.val_s]
        t0 = time.perf_counter()
        with progress_bar(self.console) as bar:
            task = bar.add_task("decode + resize (once)", total=len(paths))
            images, how = build_cache(paths, self.spec, cache_dir,
                                      progress=lambda n: bar.advance(task, n),
                                      workers=min(8, os.cpu_count() or 1))
        self.console.print(f"image cache {how}: {len(images)} images in "
                           f"{time.perf_counter() - t0:.1f} s")
        self.train_imgs, self.val_imgs = images[: len(self.train_s)], images[len(self.train_s):]
        self.y_train = label_indices(self.train_s, self.labels)
        self.y_val = label_indices(self.val_s, self.labels)
        crop, norm = center_crop_transform(self.spec), normalize_transform(self.spec)
        self.eval_tf = lambda img: norm(crop(img))
        self.aug = augment_settings(self.recipe.augment.preset, **self.recipe.augment.overrides())
        self.aug_tf = train_transform(self.spec, self.aug)
        self._stacks: dict[str, torch.Tensor] = {}
        self._batched_ok: bool | None = None

    # ------------------------------------------------------------------ data paths
    def _loader(self, dataset: Dataset, shuffle: bool, batch: int) -> DataLoader:
        sampler = None
        if shuffle and self.dist.enabled:
            if self.recipe.loss.balanced_sampler:
                raise RecipeError("loss.balanced_sampler is not supported with several processes")
            sampler = DistributedSampler(dataset, self.dist.world, self.dist.rank, shuffle=True,
                                         seed=self.recipe.train.seed)
            return DataLoader(dataset, batch_size=self.dist.per_rank_batch(batch),
                              sampler=sampler, num_workers=0, pin_memory=self.dev == "cuda")
        if shuffle and self.recipe.loss.balanced_sampler:
            weights = [1.0 / self.counts[int(y)] for y in dataset.labels]  # type: ignore[attr-defined]
            sampler = WeightedRandomSampler(weights, len(weights), generator=self.generator)
        return DataLoader(dataset, batch_size=batch, shuffle=shuffle and sampler is None,
                          sampler=sampler, generator=self.generator if shuffle else None,
                          num_workers=0, pin_memory=self.dev == "cuda")

    def plan_phase(self, phase_index: int) -> PhasePlan:
        """Freeze what the recipe says; cache the frozen part when the phase does not augment."""
        phase = self.recipe.phases[phase_index]
        trainable = trainable_blocks(self.layout, phase)
        apply_freeze(self.model, self.layout, phase)
        split = frozen_split(self.model, self.layout, trainable) if (
            not phase.augment and phase.cache_frozen) else None
        batch, eval_batch = self.recipe.train.batch_size, self.recipe.train.eval_batch_size
        if split is None:
            tf = self.aug_tf if phase.augment else self.eval_tf
            train_loader = self._batched_loader(phase) or \
                self._loader(CachedImages(self.train_imgs, self.y_train, tf), True, batch)
            return PhasePlan(
                phase, trainable, self.model, train_loader,
                self._eval_loader("val") if self.val_imgs else None,
                cached=False)
        self.model.eval()
        reuse = self._next_stage_cache(phase_index) if not trainable else None
        if reuse is not None:
            # Head-only phase before a stage-cached phase: one frozen pass serves both; the
            # pooled features come from the stage inputs through the (frozen) rest of the body.
            stage_split, views = reuse
            f_train_all, f_val = self._cached_features(phase, stage_split, views, remember=True)
            keep = views.index("identity")
            f_train = map_features(stage_split.to_pooled, f_train_all[keep:keep + 1], self.rt)
            f_val = map_features(stage_split.to_pooled, f_val, self.rt) \
                if f_val is not None else None
        else:
            f_train, f_val = self._cached_features(phase, split, tuple(phase.cached_views))
        return PhasePlan(
            phase, trainable, split.suffix,
            self._feature_loader(f_train, self.y_train, True, batch),
            self._feature_loader(f_val, self.y_val, False, eval_batch)
            if f_val is not None else None,
            cached=True)

    def _feature_loader(self, features: torch.Tensor, labels: list[int], shuffle: bool,
                        batch: int) -> DataLoader | FeatureBatches:
        """Cached features in host memory go through a DataLoader; on the GPU they are sliced
        in place (a DataLoader would collate device tensors one by one, and cannot pin them)."""
        if features.device.type == "cpu" or (shuffle and self.recipe.loss.balanced_sampler):
            return self._loader(FeatureSet(features.cpu(), labels), shuffle, batch)
        if shuffle:
            return FeatureBatches(features, labels, self.dist.per_rank_batch(batch),
                                  self.generator, True, (self.dist.rank, self.dist.world))
        return FeatureBatches(features, labels, batch, None, False)

    def _batched_loader(self, phase: PhaseConfig) -> AugmentedBatches | None:
        """Whole-batch augmentation on the device, when asked for (auto: on CUDA) and possible:
        every cached image of one size, no hue jitter, no balanced sampler."""
        from edgetl.train.batch_augment import BatchAugment

        if not self._batched() or self.recipe.loss.balanced_sampler:
            return None
        if self.aug.hue:
            self.console.print("batched augmentation does not do hue jitter: augmenting per "
                               "image instead")
            return None
        settings = self.aug if phase.augment else augment_settings("none")
        augment = BatchAugment(self.spec, settings)
        return AugmentedBatches(
            self._stacked("train"), self.y_train,
            self.dist.per_rank_batch(self.recipe.train.batch_size),
            lambda x: augment(x, None), self.rt.device, self.generator,
            (self.dist.rank, self.dist.world))

    def _batched(self) -> bool:
        """Whole batches on the device (auto: on CUDA), possible when all images share a size."""
        if self._batched_ok is None:
            mode = self.recipe.train.batch_augment
            self._batched_ok = not (mode == "off" or (mode == "auto" and self.dev != "cuda"))
            if self._batched_ok and \
                    len({tuple(img.shape) for img in self.train_imgs + self.val_imgs}) != 1:
                self.console.print("batched augmentation needs one image size: per image instead")
                self._batched_ok = False
        return self._batched_ok

    def _stacked(self, which: str) -> torch.Tensor:
        """The decoded train or val images as one uint8 tensor, on the training device while
        train + val fit in `train.device_cache_mb`, else in host memory (copied per batch)."""
        if which not in self._stacks:
            images = self.train_imgs if which == "train" else self.val_imgs
            stacked = torch.stack(images)
            total_mb = sum(img.numel() for img in self.train_imgs + self.val_imgs) / 2**20
            if total_mb <= self.recipe.train.device_cache_mb:
                stacked = stacked.to(self.rt.device)
            self._stacks[which] = stacked
        return self._stacks[which]

    def _eval_loader(self, which: str) -> DataLoader | TensorBatches:
        """Evaluation inputs (centre crop + normalisation) of the train or val images, in order:
        whole batches on the device when batched, else the per-image CPU transform."""
        images, labels = (self.train_imgs, self.y_train) if which == "train" else \
            (self.val_imgs, self.y_val)
        batch = self.recipe.train.eval_batch_size
        if self._batched():
            from edgetl.train.batch_augment import BatchAugment

            evaluate = BatchAugment(self.spec, augment_settings("none")).evaluate
            return TensorBatches(self._stacked(which), labels, batch, evaluate, self.rt.device)
        return self._loader(CachedImages(images, labels, self.eval_tf), False, batch)

    def _next_stage_cache(self, phase_index: int) -> tuple[FrozenSplit, tuple[str, ...]] | None:
        """The next phase's stage cache, when it exists and includes the identity view."""
        if phase_index + 1 >= len(self.recipe.phases):
            return None
        later = self.recipe.phases[phase_index + 1]
        if later.augment or not later.cache_frozen or "identity" not in later.cached_views:
            return None
        split = frozen_split(self.model, self.layout, trainable_blocks(self.layout, later))
        if split is None or split.to_pooled is None:
            return None
        return split, tuple(later.cached_views)

    def _cached_features(self, phase: PhaseConfig, split: FrozenSplit, views: tuple[str, ...],
                         remember: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The frozen part's outputs for train (per view) and val; `remember` keeps them for
        the next phase (its frozen part is this one's, unchanged by a head-only phase)."""
        key = (split.where, views)
        if key in self.feature_memo:
            return self.feature_memo.pop(key)
        t0 = time.perf_counter()
        with progress_bar(self.console) as bar:
            task = bar.add_task(f"phase {phase.name}: frozen part once ({split.where})",
                                total=len(self.train_imgs) + len(self.val_imgs))

            def advance(n: int) -> None:
                bar.advance(task, n)

            f_train = compute_features(split.prefix, self._eval_loader("train"), self.rt, advance,
                                       views)
            f_val = compute_features(split.prefix, self._eval_loader("val"), self.rt,
                                     advance) if self.val_imgs else None
        seconds = time.perf_counter() - t0
        self.train_seconds += seconds
        self.console.print(f"phase {phase.name}: frozen part computed once for {len(views)} "
                           f"view(s) in {seconds:.1f} s ({split.where})")
        if remember:
            self.feature_memo[key] = (f_train, f_val)
        return f_train, f_val

    # ------------------------------------------------------------------ checkpoints
    def _save_model(self, folder: Path, line: dict[str, Any]) -> None:
        save_checkpoint(
            folder, self.model, architecture=self.recipe.model.architecture,
            head={"dropout": self.head.dropout, "hidden": self.head.hidden}, spec=self.spec,
            labels=self.labels, extra={
                "recipe_sha256": self.recipe.sha256(),
                "data": {"origin": self.recipe.data.source, "split_manifest": SPLIT_FILE},
                "class_weights": self.class_weights,
                "epoch": line["epoch"], "phase": line["phase"], "metrics": line,
            })

    def _save_last(self, line: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
        def write(tmp: Path) -> None:
            self._save_model(tmp, line)
            save_train_state(tmp, self.state, optimizer.state_dict())
            if self.ema is not None and self.state.epoch_in_phase > 0:
                torch.save(self.ema.state_dict(), tmp / EMA_FILE)

        replace_folder(self.out / "last", write)

    # ------------------------------------------------------------------ phases and epochs
    def _next_phase(self, stopped_early: str | None = None) -> None:
        state = self.state
        state.phase_index += 1
        state.epoch_in_phase = state.step_in_phase = state.bad_epochs = 0
        state.phase_best_value = None
        if stopped_early:
            state.stopped_early.append(stopped_early)

    def _optimizer(self, plan: PhasePlan, phase_index: int) -> torch.optim.Optimizer:
        optimizer = torch.optim.AdamW(param_groups(self.model, self.layout, plan.phase),
                                      lr=plan.phase.lr)
        if self.optimizer_state and self._resuming_inside(phase_index):
            optimizer.load_state_dict(self.optimizer_state)
        self.optimizer_state = None
        return optimizer

    def run_phase(self, phase_index: int) -> None:
        phase = self.recipe.phases[phase_index]
        if phase.epochs == 0:
            self._next_phase()
            return
        plan = self.plan_phase(phase_index)
        plan.train_forward = wrap(self.model, plan.forward, self.dist, self.rt.device)
        if self.recipe.train.compile != "off":
            # Only the training forward is compiled: the model object (and its state_dict keys,
            # which checkpoints and export rely on) stays as it is; evaluation runs eagerly.
            plan.train_forward = torch.compile(plan.training_forward(),
                                               mode=self.recipe.train.compile)
        optimizer = self._optimizer(plan, phase_index)
        steps_per_epoch = max(1, math.ceil(len(self.train_imgs) / self.recipe.train.batch_size))
        self.ema = self._weight_average(phase, phase_index, steps_per_epoch)
        total_steps = steps_per_epoch * phase.epochs
        warmup = int(round(phase.warmup_epochs * steps_per_epoch))
        state = self.state

        def on_step() -> None:
            set_lr(optimizer, lr_factor(state.step_in_phase, total_steps, warmup,
                                        phase.min_lr_ratio))
            state.step_in_phase += 1

        for epoch in range(state.epoch_in_phase, phase.epochs):
            line, stop = self.run_epoch(plan, optimizer, on_step, epoch)
            if stop or epoch + 1 == phase.epochs:
                if self.ema is not None:  # the next phase starts from the averaged weights
                    self.ema.copy_to_model()
                self._next_phase(phase.name if stop else None)
            if self.dist.is_main:
                append_line(self.out / METRICS_FILE, json.dumps(line))
                self._save_last(line, optimizer)
            self._print_epoch(line)
            if stop:
                self.console.print(f"phase {phase.name}: early stop after {epoch + 1} epoch(s)")
                break
        self.ema = None
        if self.dist.is_main:
            plot_curves(self.out / METRICS_FILE, self.out / "curves.png")

    def _weight_average(self, phase: PhaseConfig, phase_index: int,
                        steps_per_epoch: int) -> WeightAverage | None:
        """The phase's moving average of its weights, if it asks for one (restored on resume)."""
        saved, self.ema_state = self.ema_state, None
        if phase.ema_epochs is None:
            return None
        ema = WeightAverage(self.model, phase.ema_epochs * steps_per_epoch)
        if saved is not None and self._resuming_inside(phase_index):
            ema.load_state_dict(saved)
        return ema

    def _resuming_inside(self, phase_index: int) -> bool:
        """Whether the run stopped in the middle of this phase (its saved state applies)."""
        return self.state.phase_index == phase_index and self.state.epoch_in_phase > 0

    def run_epoch(self, plan: PhasePlan, optimizer: torch.optim.Optimizer,
                  on_step: Callable[[], None], epoch: int) -> tuple[dict[str, Any], bool]:
        """Train one epoch, validate, update best/early-stopping bookkeeping."""
        phase, state, seed = plan.phase, self.state, self.recipe.train.seed
        torch.manual_seed(seed * 100003 + state.global_epoch)
        self.generator.manual_seed(seed * 100003 + state.global_epoch)
        if isinstance(getattr(plan.train_loader, "sampler", None), DistributedSampler):
            plan.train_loader.sampler.set_epoch(state.global_epoch)
        set_train_mode(self.model, phase)
        val: dict[str, float] = {}
        with progress_bar(self.console) as bar:
            task = bar.add_task(f"phase {phase.name} epoch {epoch + 1}/{phase.epochs}",
                                total=len(self.train_imgs) + len(self.val_imgs))

            def advance(n: int) -> None:
                bar.advance(task, n)

            stats = train_one_epoch(plan.training_forward(), plan.train_loader,
                                    self.criterion, optimizer, on_step, self.rt, advance,
                                    self.ema.update if self.ema is not None else None)
            stats["train_loss"] = self.dist.mean(stats["train_loss"], self.rt.device)
            stats["images_per_s"] = self.dist.sum(stats["images_per_s"], self.rt.device)
            self.model.eval()
            if plan.val_loader is not None:
                with self._averaged():
                    probs, y = predict(plan.forward, plan.val_loader, self.rt, advance)
                val = {f"val_{k}": v for k, v in quick_metrics(y, probs).items()}
        self.train_seconds += stats["train_seconds"]
        state.epoch_in_phase = epoch + 1
        state.global_epoch += 1
        line: dict[str, Any] = {
            "epoch": state.global_epoch, "phase": phase.name, "phase_epoch": epoch + 1,
            **{k: round(v, 6) for k, v in stats.items()}, **val,
            "lr": {g["block"]: g["lr"] for g in optimizer.param_groups},
            "trainable_blocks": plan.trainable, "cached_frozen": plan.cached,
            "wall_seconds": round(time.perf_counter() - self.start, 3),
        }
        select = self.recipe.train.select_metric
        if not val or (select in val and is_better(select, val[select], state.best_value)):
            state.best_value, state.best_epoch = val.get(select), state.global_epoch
            if self.dist.is_main:
                with self._averaged():
                    replace_folder(self.out / "best", lambda tmp: self._save_model(tmp, line))
        stop = False
        es = phase.early_stopping
        if es is not None and es.metric in val:
            if is_better(es.metric, val[es.metric], state.phase_best_value, es.min_delta):
                state.phase_best_value, state.bad_epochs = val[es.metric], 0
            else:
                state.bad_epochs += 1
                stop = state.bad_epochs >= es.patience
        line["early_stopped"] = stop
        return line, stop

    def _averaged(self) -> contextlib.AbstractContextManager:
        """The averaged weights in the model, when this phase keeps an average."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    def _print_epoch(self, line: dict[str, Any]) -> None:
        select = self.recipe.train.select_metric
        val = f" {select} {line[select]:.4f}" if select in line else ""
        self.console.print(f"  epoch {line['epoch']:>3} (phase {line['phase']}) train_loss "
                           f"{line['train_loss']:.4f}{val}  {line['images_per_s']:.0f} img/s")

    # ------------------------------------------------------------------ the whole run
    def run(self) -> RunResult:
        from edgetl.evaluate.run_eval import evaluate_checkpoint

        self.setup()
        fit_start = time.perf_counter()
        for phase_index in range(self.state.phase_index, len(self.recipe.phases)):
            self.run_phase(phase_index)
        fit_seconds = time.perf_counter() - fit_start
        self.state.done = True
        if not self.dist.is_main:
            shutdown(self.dist)
            return RunResult(self.out, {}, self.state.best_epoch, self.state.best_value,
                             self.train_seconds)
        if (self.out / "last").is_dir():
            save_train_state(self.out / "last", self.state, {})
        plot_curves(self.out / METRICS_FILE, self.out / "curves.png")
        report = evaluate_checkpoint(self.out, split="test", device=self.dev)
        atomic_write_json(self.out / "test_metrics.json", report)
        select = self.recipe.train.select_metric
        atomic_write_json(self.out / "summary.json", {
            "best_epoch": self.state.best_epoch, select: self.state.best_value,
            "train_seconds": round(self.train_seconds, 2),
            # phases end to end: training, validation and checkpoints (no decode, no test)
            "fit_seconds": round(fit_seconds, 2),
            "wall_seconds": round(time.perf_counter() - self.start, 2),
            "test_accuracy": report["accuracy"], "test_accuracy_ci95": report["accuracy_ci95"],
            "test_balanced_accuracy": report["balanced_accuracy"],
            "test_macro_f1": report["macro_f1"], "stopped_early": self.state.stopped_early,
            "spec_fingerprint": self.spec.fingerprint(),
        })
        shutdown(self.dist)
        return RunResult(self.out, report, self.state.best_epoch, self.state.best_value,
                         self.train_seconds)
