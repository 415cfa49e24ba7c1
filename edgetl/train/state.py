"""Resumable training state and crash-safe checkpoint folder replacement.

A checkpoint folder is written as `<name>.tmp/`, then swapped in (`<name>` -> `<name>.old`,
`<name>.tmp` -> `<name>`, delete `.old`). A SIGKILL at any point leaves either the old or the new
complete folder, and `recover_folder` puts back `.old` when the swap was cut short.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from edgetl.checkpoint import OPTIMIZER_FILE
from edgetl.checkpoint import TRAIN_STATE_FILE as STATE_JSON
from edgetl.io import atomic_write_json, atomic_write_with
from edgetl.runfolder import OLD_SUFFIX, TMP_SUFFIX


@dataclass
class TrainState:
    """Where a run stands: which phase and epoch finished last, and the selection bookkeeping."""

    phase_index: int = 0
    epoch_in_phase: int = 0  # epochs finished in the current phase
    global_epoch: int = 0  # epochs finished in the whole run
    step_in_phase: int = 0
    best_value: float | None = None
    best_epoch: int | None = None
    phase_best_value: float | None = None
    bad_epochs: int = 0
    stopped_early: list[str] = field(default_factory=list)
    done: bool = False
    # The selection's tie-break (edgetl/train/selection.py): validation loss of the best epochs.
    best_loss: float | None = None
    phase_best_loss: float | None = None
    # The spike guard (edgetl/train/spike.py): validation figures of the weights the model holds
    # at the end of the last finished epoch or roll-back, those the current phase started from,
    # the phase's learning-rate scale and retries, and every spike seen.
    held: dict[str, Any] | None = None
    phase_start: dict[str, Any] | None = None
    lr_scale: float = 1.0
    spike_retries: int = 0
    spikes: list[dict[str, Any]] = field(default_factory=list)
    # The divergence check (edgetl/train/divergence.py): the loss of the phase's first step.
    phase_first_loss: float | None = None
    # How long each finished phase ran and why it ended (edgetl/train/length.py).
    phases: list[dict[str, Any]] = field(default_factory=list)

    def next_phase(self, stopped_early: str | None = None) -> None:
        """Move on to the next phase: its counters start afresh (`stopped_early`: the name of
        the phase early stopping ended)."""
        self.phase_index += 1
        self.epoch_in_phase = self.step_in_phase = self.bad_epochs = 0
        self.phase_best_value = self.phase_best_loss = self.phase_start = None
        self.lr_scale, self.spike_retries = 1.0, 0
        self.phase_first_loss = None
        if stopped_early:
            self.stopped_early.append(stopped_early)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainState:
        return cls(**data)  # a state saved before a field existed takes its default


def recover_folder(folder: Path) -> None:
    """Finish or undo a swap that a crash interrupted."""
    old = folder.with_name(folder.name + OLD_SUFFIX)
    tmp = folder.with_name(folder.name + TMP_SUFFIX)
    if not folder.exists() and old.exists():
        old.rename(folder)
    for leftover in (old, tmp):
        if leftover.exists():
            shutil.rmtree(leftover)


def replace_folder(folder: Path, write: Callable[[Path], None]) -> None:
    """Let `write(tmp_folder)` fill a fresh folder, then swap it in for `folder`."""
    tmp = folder.with_name(folder.name + TMP_SUFFIX)
    old = folder.with_name(folder.name + OLD_SUFFIX)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    write(tmp)
    if old.exists():
        shutil.rmtree(old)
    if folder.exists():
        folder.rename(old)
    tmp.rename(folder)
    if old.exists():
        shutil.rmtree(old)


def save_train_state(folder: Path, state: TrainState, optimizer_state: dict[str, Any]) -> None:
    # not at the top: importing this module loads no torch
    import torch

    atomic_write_with(folder / OPTIMIZER_FILE, lambda tmp: torch.save(optimizer_state, tmp))
    atomic_write_json(folder / STATE_JSON, state.to_dict())


def load_train_state(folder: Path) -> tuple[TrainState, dict[str, Any] | None]:
    # not at the top: importing this module loads no torch
    import torch

    state = TrainState.from_dict(json.loads((folder / STATE_JSON).read_text()))
    opt_file = folder / OPTIMIZER_FILE
    optimizer = torch.load(opt_file, weights_only=True) if opt_file.is_file() else None
    return state, optimizer
