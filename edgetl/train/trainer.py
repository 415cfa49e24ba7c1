"""The phased trainer: the spine every task shares, with one hook per task-specific step.

`run()` = set-up (data split once, model, spec, the task's data preparation) -> for each phase:
freeze what the recipe freezes, the task's plan for the phase (which inputs, which forward),
optimiser with discriminative learning rates, warm-up + cosine schedule, optional weight
average, epochs with validation, best/last checkpoints and early stopping -> test report of the
best checkpoint. A task subclass (`edgetl/train/<task>.py`, chosen by `trainer_for`) supplies
the hooks marked below; everything else is the same for every task, so resume, checkpoints and
the selection rule cannot differ between them.
"""

from __future__ import annotations

import contextlib
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DistributedSampler

from edgetl import tasks
from edgetl.data.samples import DataSet
from edgetl.devices import resolve_device, use_channels_last
from edgetl.errors import DataError
from edgetl.evaluate.plots import plot_curves
from edgetl.io import append_line, json_text
from edgetl.models.specs import training_spec
from edgetl.recipe import PhaseConfig, Recipe
from edgetl.runfolder import BEST, LAST, RunFolder
from edgetl.spec import PreprocessSpec
from edgetl.train.budget import TimeBudget
from edgetl.train.checkpoints import (
    close_run,
    load_last_epoch,
    phase_start,
    resuming_inside,
    save_last,
    save_model,
    weight_average,
)
from edgetl.train.distributed import init_from_env, shutdown, wrap
from edgetl.train.divergence import divergence_reason, reference_loss
from edgetl.train.ema import WeightAverage
from edgetl.train.feasible import check_recipe, check_splits
from edgetl.train.groups import (
    apply_freeze,
    block_layout,
    param_groups,
    set_train_mode,
    trainable_blocks,
)
from edgetl.train.length import PhaseLength, ended_by, phase_length, phase_record, phase_words
from edgetl.train.loop import Placement
from edgetl.train.plan import PhasePlan
from edgetl.train.progress import progress_bar
from edgetl.train.report import announce, finish, print_epoch
from edgetl.train.result import RunResult
from edgetl.train.resume import open_run_folder
from edgetl.train.rundata import SplitData, split_once
from edgetl.train.schedule import lr_factor, set_lr
from edgetl.train.selection import count_early_stopping, record_best, resolve_selection
from edgetl.train.spike import guard_epoch, start_figures
from edgetl.train.state import TrainState, recover_folder, replace_folder


def trainer_for(recipe: Recipe) -> type[PhasedTrainer]:
    """The trainer class of the recipe's task (imported only when a run of that task starts)."""
    return tasks.get(recipe.task).load("trainer")


class PhasedTrainer:
    """The shared spine. Subclasses implement the hooks in the "task hooks" section."""

    def __init__(self, recipe: Recipe, out: Path, *, device: str, resume: bool,
                 console: Any, given_split: SplitData | None = None,
                 time_budget_s: float | None = None) -> None:
        self.out = out
        self.given_split = given_split  # a split made once for several runs (edgetl select)
        self.run_folder = RunFolder(out)
        self.dev = resolve_device(recipe.train.device if device == "auto" else device)
        self.dist = init_from_env(self.dev)
        # Only rank 0 writes; the others read what it wrote once it is there.
        if self.dist.is_main:
            check_recipe(recipe)
            resume = open_run_folder(out, resume, console)
            self.recipe = self.run_folder.start(recipe, resume)
            for name in (LAST, BEST):
                recover_folder(self.run_folder.checkpoint_path(name))
        self.dist.barrier()
        if not self.dist.is_main:
            self.recipe = self.run_folder.recipe()
            console = type(console)(quiet=True)
        self.console = console
        self.resume = resume
        self.resuming = resume and self.run_folder.train_state_path.is_file()
        if self.recipe.train.num_threads:
            torch.set_num_threads(self.recipe.train.num_threads)
        cuda = self.dev == "cuda"
        device_obj = torch.device(f"cuda:{self.dist.local_rank}") if cuda and self.dist.enabled \
            else torch.device(self.dev)
        # channels_last is decided in setup() (train.memory_format), once the data size is known.
        self.rt = Placement(device_obj, torch.bfloat16 if cuda else None)
        self.state = TrainState()
        self.train_seconds = 0.0
        self.start = time.perf_counter()
        self.budget = TimeBudget(time_budget_s, self.start)  # --time-budget (budget.py)
        self.advice: list[dict[str, str]] = []  # what to do next (advice.py, summary.json)
        self.generator = torch.Generator().manual_seed(self.recipe.train.seed)

    # ================================================================== task hooks
    def check_data(self, data: DataSet) -> None:
        """Refuse data this task cannot train on (before any model is built)."""

    def build_model(self) -> tuple[torch.nn.Module, PreprocessSpec]:
        """The model with its pretrained weights, and the weights' own spec."""
        raise NotImplementedError

    def training_spec(self, weights_spec: PreprocessSpec) -> PreprocessSpec:
        """The run's spec: the weights' spec with the recipe's overrides."""
        return training_spec(self.recipe, weights_spec)

    def after_model(self) -> None:
        """Anything that needs the model on its device (a loss with class weights...)."""

    def prepare_data(self) -> None:
        """Decode or cache what every epoch reuses."""

    def plan_phase(self, phase_index: int) -> PhasePlan:
        raise NotImplementedError

    def train_epoch(self, plan: PhasePlan, optimizer: torch.optim.Optimizer,
                    on_step: Callable[[], None], advance: Callable[[int], None]
                    ) -> dict[str, float]:
        """One pass over the training inputs: train_loss, images_per_s, train_seconds, and
        first_step_loss (the divergence check's reference; `train_one_epoch` gives them all)."""
        raise NotImplementedError

    def validate(self, plan: PhasePlan, advance: Callable[[int], None]) -> dict[str, float]:
        """Validation metrics, keys without the `val_` prefix (loss, accuracy, map, ...)."""
        raise NotImplementedError

    def head_record(self) -> dict[str, Any]:
        """The settings that rebuild the model's head (checkpoint `head`)."""
        raise NotImplementedError

    def validation_labels(self) -> list[str] | None:
        """The validation images' labels, when one label per image lets the selection's
        resolution be judged by class (None: the task has no such label)."""
        return None

    def checkpoint_extra(self) -> dict[str, Any]:
        return {}

    def default_select_metric(self) -> tuple[str, str]:
        """The selection metric when the recipe names none, and why (the task's default)."""
        return self.recipe.selection_metric, "the task's default"

    def report_warnings(self, report: dict[str, Any]) -> list[str]:
        """Warnings about the test report and the best epoch's validation (the task's own)."""
        return []

    def summary_of(self, report: dict[str, Any]) -> dict[str, Any]:
        """The test figures summary.json repeats from the test report."""
        return {}

    @property
    def train_size(self) -> int:
        """Training images per epoch (steps per epoch, planned work)."""
        return len(self.train_s)

    @property
    def epoch_items(self) -> int:
        """Progress units of one epoch (training and validation images)."""
        return len(self.train_s) + len(self.val_s)

    # ================================================================== set-up
    def setup(self) -> None:
        recipe = self.recipe
        if self.dist.is_main:
            data, self.task_record = split_once(recipe, self.run_folder, self.resume,
                                                self.given_split)
        self.dist.barrier()
        if not self.dist.is_main:  # read rank 0's split back (the resume path)
            data, self.task_record = split_once(recipe, self.run_folder, True)
        self.data = data
        self.train_s, self.val_s = data.by_split("train"), data.by_split("val")
        if not self.train_s:
            raise DataError("the training split is empty",
                            "check the data source and split fractions")
        self.check_data(data)
        self.select, self.select_why, self.val_size = resolve_selection(self)
        self.notes = check_splits(data, self.task_record.names, recipe.data.val_fraction,
                                  recipe.data.test_fraction, self.select)
        torch.manual_seed(recipe.train.seed)  # the new head's initial weights
        self.model, weights_spec = self.build_model()
        self.spec = self.training_spec(weights_spec)
        self.optimizer_state: dict | None = None
        self.ema_state: dict | None = None
        self.ema: WeightAverage | None = None
        if self.resuming:
            self.state, self.optimizer_state, self.ema_state = load_last_epoch(self)
        self.rt.channels_last = self._channels_last()
        self.model.to(self.rt.device)
        if self.rt.channels_last:
            self.model.to(memory_format=torch.channels_last)
        self.layout = block_layout(self.model)
        self.after_model()
        announce(self)
        self._warn(self.val_size.warning())
        self.prepare_data()

    def _warn(self, note: str | None) -> None:
        """A run warning: one `warning:` line on stderr, kept for summary.json."""
        if note and self.dist.is_main:
            self.notes.append(note)
            warnings.warn(note, stacklevel=2)

    def _channels_last(self) -> bool:
        lengths = [phase_length(p, self.steps_per_epoch) for p in self.recipe.phases]
        planned = sum(self.train_size * n.steps / n.steps_per_epoch for n in lengths)
        return use_channels_last(self.recipe.train.memory_format, self.dev, planned)

    # ================================================================== phases and epochs
    @property
    def steps_per_epoch(self) -> int:
        """Optimiser steps of one whole epoch (the schedule's and a phase length's unit)."""
        return max(1, math.ceil(self.train_size / self.recipe.train.batch_size))

    def _optimizer(self, plan: PhasePlan, phase_index: int) -> torch.optim.Optimizer:
        groups = param_groups(self.model, self.layout, plan.phase)
        for group in groups:  # a phase retried after a spike runs at a lower learning rate
            group["lr"] = group["initial_lr"] = group["initial_lr"] * self.state.lr_scale
        optimizer = torch.optim.AdamW(groups, lr=plan.phase.lr * self.state.lr_scale)
        if self.optimizer_state and resuming_inside(self.state, phase_index):
            optimizer.load_state_dict(self.optimizer_state)
        self.optimizer_state = None
        return optimizer

    def freeze(self, phase: PhaseConfig) -> list[int]:
        """Apply the phase's freezing; the trainable body blocks."""
        apply_freeze(self.model, self.layout, phase)
        return trainable_blocks(self.layout, phase)

    def run_phase(self, phase_index: int) -> None:
        phase = self.recipe.phases[phase_index]
        if not phase.trains:
            self.state.next_phase()
            return
        if self.budget.skips(self, phase_index):
            return
        plan = self.plan_phase(phase_index)
        plan.train_forward = wrap(self.model, plan.forward, self.dist, self.rt.device)
        if self.recipe.train.compile != "off":
            # Only the training forward is compiled: the model object (and its state_dict keys,
            # which checkpoints and export rely on) stays as it is; evaluation runs eagerly.
            plan.train_forward = torch.compile(plan.training_forward(),
                                               mode=self.recipe.train.compile)
        start_weights = phase_start(self, phase_index)
        while not self._phase_pass(plan, phase_index, start_weights):
            pass  # rolled back after a spike: the phase starts again at a lower learning rate
        self.ema = None
        if self.dist.is_main:
            plot_curves(self.run_folder.metrics_path, self.run_folder.curves_path)

    def _phase_pass(self, plan: PhasePlan, phase_index: int,
                    start_weights: dict[str, torch.Tensor] | None) -> bool:
        """Run the phase's epochs from where the state says; False when a spike rolled it back
        to be retried, True when the phase is over (finished, stopped early or reverted)."""
        phase, state = plan.phase, self.state
        optimizer = self._optimizer(plan, phase_index)
        steps_per_epoch = self.steps_per_epoch
        self.ema = weight_average(self, phase, phase_index, steps_per_epoch)
        length = phase_length(phase, steps_per_epoch)  # the budget may re-size it
        warmup = int(round(phase.warmup_epochs * steps_per_epoch))
        self.budget.phase_started(state.step_in_phase)

        def on_step() -> None:  # reads `length` as it stands now
            set_lr(optimizer, lr_factor(state.step_in_phase, length.steps, warmup,
                                        phase.min_lr_ratio))
            state.step_in_phase += 1

        epoch = state.epoch_in_phase
        while epoch < length.epochs:
            line, stop = self.run_epoch(plan, optimizer, on_step, epoch, length)
            length = self.budget.after_epoch(self, phase_index, length)
            action = guard_epoch(self, line, phase, epoch, start_weights)
            stop = stop and action not in ("lower_lr", "revert")
            last = epoch + 1 >= length.epochs and action != "lower_lr"
            if stop or last or action == "revert":
                if self.ema is not None and action != "revert":
                    self.ema.copy_to_model()  # the next phase starts from the averaged weights
                line["phase_end"] = phase_record(phase.name, state, length,
                                                 ended_by(length, stop, action == "revert"))
                state.phases.append(line["phase_end"])
                state.next_phase(phase.name if stop else None)
            if self.dist.is_main:
                append_line(self.run_folder.metrics_path, json_text(line))
                save_last(self, line, optimizer)
            print_epoch(self.console, self.select, line)
            if stop:
                self.console.print(f"phase {phase.name}: early stop after {epoch + 1} epoch(s)")
            if "phase_end" in line:
                self.console.print(phase_words(line["phase_end"]), markup=False)
            if action == "lower_lr":
                return False
            if stop or last or action == "revert":
                return True
            epoch += 1
        return True

    def run_epoch(self, plan: PhasePlan, optimizer: torch.optim.Optimizer,
                  on_step: Callable[[], None], epoch: int, length: PhaseLength
                  ) -> tuple[dict[str, Any], bool]:
        """Train one epoch (the phase's partial last one: its first batches), validate, update
        best/early-stopping bookkeeping."""
        phase, state, seed = plan.phase, self.state, self.recipe.train.seed
        torch.manual_seed(seed * 100003 + state.global_epoch)
        self.generator.manual_seed(seed * 100003 + state.global_epoch)
        if isinstance(getattr(plan.train_loader, "sampler", None), DistributedSampler):
            plan.train_loader.sampler.set_epoch(state.global_epoch)
        set_train_mode(self.model, phase, self.layout)
        val: dict[str, float] = {}
        with progress_bar(self.console) as bar:
            task = bar.add_task(f"phase {phase.name} epoch {epoch + 1}/{length.epochs}",
                                total=self.epoch_items)

            def advance(n: int) -> None:
                bar.advance(task, n)

            with plan.first_batches(length.steps_in_epoch(epoch), length.steps_per_epoch):
                stats = self.train_epoch(plan, optimizer, on_step, advance)
            first_loss = self.dist.mean(stats.pop("first_step_loss", math.nan), self.rt.device)
            stats["train_loss"] = self.dist.mean(stats["train_loss"], self.rt.device)
            stats["images_per_s"] = self.dist.sum(stats["images_per_s"], self.rt.device)
            self.model.eval()
            if plan.val_loader is not None:
                with self._averaged():
                    val = {f"val_{k}": v for k, v in self.validate(plan, advance).items()}
        self.train_seconds += stats["train_seconds"]
        state.epoch_in_phase = epoch + 1
        state.global_epoch += 1
        line: dict[str, Any] = {
            "epoch": state.global_epoch, "phase": phase.name, "phase_epoch": epoch + 1,
            **{k: round(v, 6) for k, v in stats.items()}, **val,
            "lr": {g["block"]: g["lr"] for g in optimizer.param_groups},
            "trainable_blocks": plan.trainable, "cached_frozen": plan.cached,
            "phase_steps": state.step_in_phase,
            "wall_seconds": round(time.perf_counter() - self.start, 3),
        }
        if epoch == 0:  # a phase's first epoch (a retried one too): its reference loss
            state.phase_first_loss = first_loss
        reason = divergence_reason(line, reference_loss(state.phase_first_loss,
                                                        state.phase_start))
        if reason is not None:  # never selected, never counted by early stopping
            line["diverged"], line["early_stopped"] = reason, False
            return line, False
        select = self.select
        if val:
            state.held = start_figures(line, select)
        if record_best(state, select, val) and self.dist.is_main:
            with self._averaged():
                replace_folder(self.run_folder.best_path,
                               lambda tmp: save_model(self, tmp, line))
        stop = count_early_stopping(state, phase, select, val)
        line["early_stopped"] = stop
        return line, stop

    def _averaged(self) -> contextlib.AbstractContextManager:
        """The averaged weights in the model, when this phase keeps an average."""
        return self.ema.applied() if self.ema is not None else contextlib.nullcontext()

    # ================================================================== the whole run
    def fit(self) -> float:
        """Set up and train every phase (best/ and last/ saved, no test report); the seconds
        the phases took end to end. `edgetl select` scores candidates after this, on the
        validation split only."""
        self.setup()
        fit_start = time.perf_counter()
        for phase_index in range(self.state.phase_index, len(self.recipe.phases)):
            self.run_phase(phase_index)
        self.state.done = True
        return time.perf_counter() - fit_start

    def run(self) -> RunResult:
        fit_seconds = self.fit()
        if not self.dist.is_main:
            shutdown(self.dist)
            return RunResult(self.out, {}, self.state.best_epoch, self.state.best_value,
                             self.train_seconds)
        close_run(self.run_folder, self.state)
        report = finish(self, fit_seconds)
        shutdown(self.dist)
        return RunResult(self.out, report, self.state.best_epoch, self.state.best_value,
                         self.train_seconds)
