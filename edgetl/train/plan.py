"""What one phase trains and on which inputs: the hook `plan_phase` returns it. Its own module so
the trainer, the task trainers and what they share import it without importing each other."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from edgetl.recipe import PhaseConfig


class FirstBatches:
    """The first `count` batches of a loader: a phase counted in steps ends mid-epoch."""

    def __init__(self, loader: Iterable, count: int) -> None:
        self.loader, self.count = loader, count

    def __len__(self) -> int:
        return min(len(self.loader), self.count)  # type: ignore[arg-type]

    def __iter__(self) -> Iterator:
        return itertools.islice(iter(self.loader), self.count)


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

    @contextlib.contextmanager
    def first_batches(self, count: int, whole: int) -> Iterator[None]:
        """Inside the block the training loader yields only its first `count` batches (when
        that is fewer than an epoch's `whole`): a phase's partial last epoch."""
        if count >= whole:
            yield
            return
        loader = self.train_loader
        self.train_loader = FirstBatches(loader, count)
        try:
            yield
        finally:
            self.train_loader = loader
