"""What one phase trains and on which inputs: the hook `plan_phase` returns it. Its own module so
the trainer, the task trainers and what they share import it without importing each other."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from edgetl.recipe import PhaseConfig


@dataclass
class PhasePlan:
    """What one phase trains and on which inputs (built by the task's `plan_phase`)."""

    phase: PhaseConfig
    trainable: list[int]
    forward: Callable[..., Any]
    train_loader: Iterable
    val_loader: Iterable | None
    cached: bool
    train_forward: Callable[..., Any] | None = None  # DDP/compiled, if any

    def training_forward(self) -> Callable[..., Any]:
        # `is None`, not `or`: truth-testing a module can call its __len__
        return self.forward if self.train_forward is None else self.train_forward
