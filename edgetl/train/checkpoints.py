"""A training run's checkpoint input/output: best/ and last/ (weights, train state, weight
average), resuming from last/ (the optimiser and weight average a resumed phase takes back),
and the weights a phase starts from (kept for the spike guard).

Apart from trainer.py so its spine reads as phases and epochs. The functions take the trainer
(a `PhasedTrainer`) as an argument instead of importing it: trainer.py imports this module.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from edgetl.checkpoint import EMA_FILE, WEIGHTS_FILE, save_checkpoint
from edgetl.io import atomic_write_with
from edgetl.recipe import PhaseConfig
from edgetl.runfolder import RunFolder
from edgetl.train.ema import WeightAverage
from edgetl.train.resume import load_last, load_torch_state
from edgetl.train.state import TrainState, replace_folder, save_train_state


def save_model(trainer: Any, folder: Path, line: dict[str, Any]) -> None:
    """The model as a checkpoint (best/, or the model part of last/) of the epoch `line`."""
    recipe, task_record = trainer.recipe, trainer.task_record
    save_checkpoint(
        folder, trainer.model, architecture=recipe.model.architecture,
        head=trainer.head_record(), spec=trainer.spec, task_record=task_record, extra={
            "recipe_sha256": recipe.sha256(),
            "data": {"origin": recipe.data.source,
                     "split_file": trainer.run_folder.split_path(task_record.task).name},
            **trainer.checkpoint_extra(),
            "epoch": line["epoch"], "phase": line["phase"], "metrics": line,
        })


def save_last(trainer: Any, line: dict[str, Any], optimizer: torch.optim.Optimizer) -> None:
    """last/: the model, the train state with the optimiser's, and the phase's weight average
    (while the phase goes on), swapped in whole."""
    def write(tmp: Path) -> None:
        save_model(trainer, tmp, line)
        save_train_state(tmp, trainer.state, optimizer.state_dict())
        if trainer.ema is not None and trainer.state.epoch_in_phase > 0:
            torch.save(trainer.ema.state_dict(), tmp / EMA_FILE)

    replace_folder(trainer.run_folder.last_path, write)


def load_last_epoch(trainer: Any) -> tuple[TrainState, dict | None, dict | None]:
    """Resume: last/'s weights into the model, metrics.jsonl cut back to its epoch; its train
    state, optimiser state and weight-average state (None where not saved)."""
    from safetensors.torch import load_file

    last = trainer.run_folder.last_path
    state, optimizer_state = load_last(last)
    ema_state = load_torch_state(last / EMA_FILE) if (last / EMA_FILE).is_file() else None
    trainer.model.load_state_dict(load_file(str(last / WEIGHTS_FILE)))
    trainer.run_folder.truncate_metrics(state.global_epoch)
    phases = trainer.recipe.phases
    where = phases[min(state.phase_index, len(phases) - 1)].name
    trainer.console.print(f"[bold]resuming[/] {trainer.out}: phase {where}, "
                          f"{state.global_epoch} epoch(s) done")
    return state, optimizer_state, ema_state


def phase_start(trainer: Any, phase_index: int) -> dict[str, torch.Tensor] | None:
    """The figures and weights this phase starts from, for the spike guard (None: the phase
    is not guarded: the first one, no validation, or `on_spike: continue` needs no weights).
    Kept on disk too, so a resumed phase can still roll back."""
    from safetensors.torch import load_file, save_file

    state, path = trainer.state, trainer.run_folder.phase_start_path
    fresh = state.epoch_in_phase == 0 and state.spike_retries == 0
    if fresh:
        state.phase_start = state.held if phase_index > 0 else None
    if state.phase_start is None or trainer.recipe.train.on_spike == "continue":
        return None
    if fresh:
        weights = {k: v.detach().cpu().contiguous().clone()  # (channels_last: safetensors)
                   for k, v in trainer.model.state_dict().items()}
        if trainer.dist.is_main:
            atomic_write_with(path, lambda tmp: save_file(weights, str(tmp)))
        return weights
    if not path.is_file():
        trainer.console.print(f"note: {path.name} is missing: phase "
                              f"{trainer.recipe.phases[phase_index].name} runs without the "
                              "spike guard", markup=False)
        state.phase_start = None
        return None
    return load_file(str(path))


def close_run(run_folder: RunFolder, state: TrainState) -> None:
    """After the last phase: last/ says the run is done; only a resumed phase needed the
    phase's starting weights."""
    if run_folder.last_path.is_dir():
        save_train_state(run_folder.last_path, state, {})
    run_folder.phase_start_path.unlink(missing_ok=True)


def resuming_inside(state: TrainState, phase_index: int) -> bool:
    """Whether the run stopped in the middle of this phase (its saved state applies)."""
    return state.phase_index == phase_index and state.epoch_in_phase > 0


def weight_average(trainer: Any, phase: PhaseConfig, phase_index: int,
                   steps_per_epoch: int) -> WeightAverage | None:
    """The phase's moving average of its weights, if it asks for one (restored on resume)."""
    saved, trainer.ema_state = trainer.ema_state, None
    if phase.ema_epochs is None:
        return None
    ema = WeightAverage(trainer.model, phase.ema_epochs * steps_per_epoch)
    if saved is not None and resuming_inside(trainer.state, phase_index):
        ema.load_state_dict(saved)
    return ema
