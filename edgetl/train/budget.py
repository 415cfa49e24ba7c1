"""`finetune --time-budget`: phases sized to a wall-clock budget from the measured step time.

The rule (issue 27):
- The deadline counts from the trainer's start (data, model, every phase's training, validation
  and checkpoints); the test report after the phases is not counted. A resumed run gets the
  whole budget again, counted from the resume.
- A phase's seconds per optimiser step are measured over the epochs it ran in this process
  (training, validation and checkpoints together). After its first such epoch the phase is
  re-sized, in whole epochs (never fewer than it has run):
  - a phase before the last: its plan, shortened in proportion to the steps the phases after it
    plan when the plan no longer fits the time left at the measured step time;
  - the last phase: as many epochs as the time left allows, longer or shorter than its plan
    (the budget replaces min_steps/max_steps).
  The warm-up keeps its planned steps; the cosine decay, the weight average and early stopping
  follow the new length from there on.
- Before each further epoch: when the next epoch would not fit the time left, the phase ends at
  this epoch boundary. A phase that cannot start (the time is out, or its first epoch at the
  last measured step time would not fit) is skipped with 0 steps. Both end "time budget".
- Under torchrun every rank takes the mean of the ranks' clocks, so all decide alike.
"""

from __future__ import annotations

import time
from typing import Any

from edgetl.clock import Deadline
from edgetl.train.length import TIME_BUDGET, PhaseLength, phase_length, phase_record, phase_words


class TimeBudget:
    """The run's deadline and the step time measured so far (`seconds` None: no budget, every
    method leaves the plan as it is)."""

    def __init__(self, seconds: float | None, started: float) -> None:
        self.deadline = Deadline(seconds, started)
        self.rate: float | None = None  # seconds per optimiser step, the latest phase's
        self._phase_start = 0.0
        self._phase_steps0 = 0
        self._resized = False

    @property
    def active(self) -> bool:
        return self.deadline.seconds is not None

    def _left(self, trainer: Any) -> float:
        """Seconds left, the ranks' mean (so every rank decides alike)."""
        return _ranks_mean(trainer, self.deadline.remaining() or 0.0)

    def phase_started(self, step_in_phase: int) -> None:
        """A phase pass starts (a retried one too): its step time is measured afresh."""
        self._phase_start, self._phase_steps0 = time.perf_counter(), step_in_phase
        self._resized = False

    def skips(self, trainer: Any, phase_index: int) -> bool:
        """Skip a phase that cannot start within the budget: record it (0 steps, "time
        budget"), move the state on and say so; False when it starts."""
        if not self.active:
            return False
        phase = trainer.recipe.phases[phase_index]
        length = phase_length(phase, trainer.steps_per_epoch)
        first = None if self.rate is None else self.rate * length.steps_in_epoch(0)
        left = self._left(trainer)
        if left > 0 and (first is None or first <= left):
            return False
        state = trainer.state
        record = phase_record(phase.name, state, PhaseLength(
            0, length.steps_per_epoch, TIME_BUDGET, length.steps), TIME_BUDGET)
        state.phases.append(record)
        state.next_phase()
        trainer.console.print(phase_words(record) + " (not started: the time is out)",
                              markup=False)
        return True

    def after_epoch(self, trainer: Any, phase_index: int, length: PhaseLength) -> PhaseLength:
        """The phase's length once an epoch has ended: re-sized after its first epoch, cut
        here when the next epoch would not fit the time left."""
        if not self.active:
            return length
        state = trainer.state
        steps = state.step_in_phase - self._phase_steps0
        self.rate = _ranks_mean(trainer, time.perf_counter() - self._phase_start) / max(1, steps)
        left = self._left(trainer)
        done_epochs, per_epoch = state.epoch_in_phase, length.steps_per_epoch
        if not self._resized:
            self._resized = True
            later = [phase_length(p, per_epoch).steps
                     for p in trainer.recipe.phases[phase_index + 1:] if p.trains]
            length = resize(length, state.step_in_phase, done_epochs, left, self.rate, later)
        upcoming = length.steps_in_epoch(done_epochs)
        if upcoming and self.rate * upcoming > left:
            length = PhaseLength(state.step_in_phase, per_epoch, TIME_BUDGET,
                                 length.planned_steps)
        return length

    def record(self, used_s: float, fit_seconds: float) -> dict[str, Any] | None:
        """summary.json's `time_budget` (None without a budget); `used_s`: the run's seconds
        when its phases were over, before the test report."""
        if not self.active:
            return None
        return {"seconds": self.deadline.seconds, "used_s": round(used_s, 2),
                "fit_seconds": round(fit_seconds, 2),
                "covers": "set-up, training, validation and checkpoints (not the test report)",
                "on_resume": "the whole budget again, counted from the resume"}


def _ranks_mean(trainer: Any, value: float) -> float:
    """`value` averaged over the torchrun ranks (itself on one process)."""
    return trainer.dist.mean(value, trainer.rt.device)


def resize(length: PhaseLength, done_steps: int, done_epochs: int, left: float, rate: float,
           later_steps: list[int]) -> PhaseLength:
    """The phase's length in whole epochs for the time `left` at `rate` seconds a step: the
    last phase (no `later_steps`) takes all of it, an earlier one its share in proportion to
    the steps still planned (never more than its plan); never fewer epochs than `done_epochs`."""
    per_epoch = length.steps_per_epoch
    remaining_plan = max(0, length.steps - done_steps)
    if later_steps:
        planned = remaining_plan + sum(later_steps)
        if rate * planned <= left or planned == 0:
            return length
        extra = left * remaining_plan / planned / rate
    else:
        extra = left / rate
    epochs = max(done_epochs, int((done_steps + max(0.0, extra)) // per_epoch))
    steps = epochs * per_epoch
    if later_steps:
        steps = min(steps, length.steps)
    steps = max(steps, done_steps)
    return length if steps == length.steps else PhaseLength(steps, per_epoch, TIME_BUDGET,
                                                            length.planned_steps)
