"""How long a phase trains, in optimiser steps: its epochs or steps, clamped into
[min_steps, max_steps], and why it ends.

Why: a phase counted in epochs trains a very different amount on 30 images than on 3,000; a
length in steps, or a floor and a ceiling on epochs x steps per epoch, keeps it in range
(issue 27). Pure arithmetic (no torch) so it is tested on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from edgetl.recipe import PhaseConfig
from edgetl.train.state import TrainState

# Why a phase ended (summary.json `phases[].ended_by`, the run's log).
PLANNED = "planned"  # its epochs or steps, as given
FLOOR = "floor"  # min_steps raised it
CEILING = "ceiling"  # max_steps cut it
EARLY_STOP = "early stop"  # early stopping ended it
TIME_BUDGET = "time budget"  # finetune --time-budget sized or cut it (budget.py)
REVERTED = "reverted"  # the spike guard rolled it back and ended it


@dataclass(frozen=True)
class PhaseLength:
    """A phase's planned optimiser steps, the epochs they span (the last may be partial) and
    why the plan is what it is (planned, floor or ceiling)."""

    steps: int
    steps_per_epoch: int
    reason: str
    planned: int | None = None  # the recipe's steps when a time budget re-sized the phase

    @property
    def planned_steps(self) -> int:
        """The phase's steps as the recipe (floor and ceiling included) planned them."""
        return self.steps if self.planned is None else self.planned

    @property
    def epochs(self) -> int:
        """Epochs the phase runs, a partial last one included (each ends with validation)."""
        return math.ceil(self.steps / self.steps_per_epoch)

    def steps_in_epoch(self, epoch: int) -> int:
        """Optimiser steps of the phase's epoch `epoch` (0-based): whole, or the partial last."""
        return max(0, min(self.steps_per_epoch, self.steps - epoch * self.steps_per_epoch))


def phase_length(phase: PhaseConfig, steps_per_epoch: int) -> PhaseLength:
    """`steps`, or `epochs` x `steps_per_epoch`, clamped into [min_steps, max_steps]; a phase of
    0 epochs stays skipped (0 steps)."""
    per_epoch = max(1, steps_per_epoch)
    if not phase.trains:
        return PhaseLength(0, per_epoch, PLANNED)
    planned = phase.steps if phase.steps is not None else (phase.epochs or 0) * per_epoch
    if phase.min_steps is not None and planned < phase.min_steps:
        return PhaseLength(phase.min_steps, per_epoch, FLOOR)
    if phase.max_steps is not None and planned > phase.max_steps:
        return PhaseLength(phase.max_steps, per_epoch, CEILING)
    return PhaseLength(planned, per_epoch, PLANNED)


def ended_by(length: PhaseLength, early_stopped: bool, reverted: bool) -> str:
    """Why a phase that has ended, ended: early stopping or a revert before its plan's reason."""
    if reverted:
        return REVERTED
    return EARLY_STOP if early_stopped else length.reason


def phase_record(name: str, state: TrainState, length: PhaseLength, reason: str
                 ) -> dict[str, Any]:
    """How long a phase that has just ended ran, and why it ended (the log, summary.json)."""
    return {"phase": name, "steps": state.step_in_phase, "epochs": state.epoch_in_phase,
            "steps_per_epoch": length.steps_per_epoch, "planned_steps": length.planned_steps,
            "ended_by": reason}


def phase_words(record: dict[str, Any]) -> str:
    """The log's line for a phase's end."""
    return (f"phase {record['phase']}: {record['steps']} optimiser step(s), "
            f"{record['epochs']} epoch(s) ({record['steps_per_epoch']} steps each), ended: "
            f"{record['ended_by']}")
