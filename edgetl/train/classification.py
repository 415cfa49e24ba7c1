"""Classification on the phased trainer: decode once, cached frozen features, batch augmentation.

The hooks of `PhasedTrainer` for a classifier (timm model with a new head). Everything here
is what made the ELPV quickstart fast on 2 CPU cores (see docs/ARCHITECTURE.md): images are
decoded and resized once; a phase that does not augment runs its frozen part once (pooled
features, or the input of the first trainable stage, per view); on CUDA whole batches are
augmented on the GPU.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler, WeightedRandomSampler

from edgetl.data.samples import DataSet
from edgetl.data.transforms import (
    augment_settings,
    center_crop_transform,
    normalize_transform,
    train_transform,
)
from edgetl.errors import DataError, RecipeError
from edgetl.metrics.classification import quick_metrics
from edgetl.recipe import PhaseConfig
from edgetl.spec import PreprocessSpec
from edgetl.train.frozen import FrozenSplit, frozen_split
from edgetl.train.groups import apply_freeze, trainable_blocks
from edgetl.train.imagecache import build_cache
from edgetl.train.loop import (
    AugmentedBatches,
    CachedImages,
    FeatureBatches,
    FeatureSet,
    TensorBatches,
    classification_loss,
    compute_features,
    map_features,
    predict,
    train_one_epoch,
)
from edgetl.train.losses import build_loss
from edgetl.train.plan import PhasePlan
from edgetl.train.progress import progress_bar
from edgetl.train.trainer import PhasedTrainer


class ClassificationTrainer(PhasedTrainer):
    """A timm classifier with a new head, trained in phases."""

    # ------------------------------------------------------------------ hooks: set-up
    def check_data(self, data: DataSet) -> None:
        self.counts = [sum(1 for s in self.train_s if s.label == c)
                       for c in self.task_record.names]
        if min(self.counts) == 0:
            empty = self.task_record.names[self.counts.index(0)]
            raise DataError(f"class '{empty}' has no training images after the split")
        if self.recipe.operating_point:  # a class the data lacks: say so before training
            from edgetl.decision import Target

            Target.parse(self.recipe.operating_point).index_in(self.task_record.names)

    def build_model(self) -> tuple[torch.nn.Module, PreprocessSpec]:
        from edgetl.models import HeadConfig, build_classifier

        recipe = self.recipe
        self.head = HeadConfig(dropout=recipe.model.head.dropout, hidden=recipe.model.head.hidden)
        return build_classifier(recipe.model.architecture, self.task_record.num_classes,
                                self.head, weights=recipe.model.weights)


    def after_model(self) -> None:
        self.criterion, self.class_weights = build_loss(self.recipe.loss, self.counts)
        self.criterion.to(self.rt.device)

    def prepare_data(self) -> None:
        self.feature_memo: dict[tuple[str, tuple[str, ...]], tuple] = {}
        self._decode_once()

    def head_record(self) -> dict[str, Any]:
        return {"dropout": self.head.dropout, "hidden": self.head.hidden}

    def validation_labels(self) -> list[str] | None:
        return [s.label for s in self.val_s]

    def checkpoint_extra(self) -> dict[str, Any]:
        return {"class_weights": self.class_weights}

    def summary_of(self, report: dict[str, Any]) -> dict[str, Any]:
        return {"test_accuracy": report["accuracy"],
                "test_accuracy_ci95": report["accuracy_ci95"],
                "test_balanced_accuracy": report["balanced_accuracy"],
                "test_macro_f1": report["macro_f1"],
                "test_majority_baseline": report.get("majority_baseline"),
                "class_weights": self.class_weights}

    def default_select_metric(self) -> tuple[str, str]:
        """Validation macro-F1 when the training classes are imbalanced: balanced accuracy
        rewards calling the majority class a minority one; accuracy ignores the rare classes."""
        from edgetl.metrics.imbalance import (
            IMBALANCED_RATIO,
            default_select_metric,
            imbalance_ratio,
        )

        chosen = default_select_metric(self.counts)
        if chosen is None:
            return super().default_select_metric()
        return chosen, (f"training classes {imbalance_ratio(self.counts):.1f}:1, imbalanced "
                        f"(>= {IMBALANCED_RATIO:g}:1), and the recipe names no metric")

    def report_warnings(self, report: dict[str, Any]) -> list[str]:
        """The test report's imbalance warnings, and the best epoch's validation accuracy
        against the validation split's majority-class baseline."""
        from edgetl.checkpoint import read_checkpoint_info
        from edgetl.metrics.imbalance import majority_baseline

        notes = [f"test split: {note}" for note in report.get("warnings", [])]
        accuracy = read_checkpoint_info(self.out).record.get("metrics", {}).get("val_accuracy")
        if accuracy is not None and len(self.task_record.names) > 1:
            counts = [self.y_val.count(c) for c in range(len(self.task_record.names))]
            baseline = majority_baseline(counts, list(self.task_record.names))
            if accuracy < baseline["accuracy"]:
                notes.append(f"validation split: accuracy {accuracy:.1%} at the best epoch is "
                             f"below the majority-class baseline {baseline['accuracy']:.1%} "
                             f"(always answering '{baseline['class']}')")
        return notes

    # ------------------------------------------------------------------ hooks: epochs
    def train_epoch(self, plan: PhasePlan, optimizer: torch.optim.Optimizer,
                    on_step: Callable[[], None], advance: Callable[[int], None]
                    ) -> dict[str, float]:
        return train_one_epoch(
            classification_loss(plan.training_forward(), self.criterion, self.rt),
            plan.train_loader, optimizer, on_step, self.rt, advance,
            self.ema.update if self.ema is not None else None)

    def validate(self, plan: PhasePlan, advance: Callable[[int], None]) -> dict[str, float]:
        probs, y = predict(plan.forward, plan.val_loader, self.rt, advance)
        return quick_metrics(y, probs)

    # ------------------------------------------------------------------ decode once
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
        self.y_train = [self.task_record.index(s.label) for s in self.train_s]
        self.y_val = [self.task_record.index(s.label) for s in self.val_s]
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
