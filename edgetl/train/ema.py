"""Exponential moving average of the weights a phase trains.

Why: on a few thousand images the last epochs' weights jitter from batch to batch, and the
validation accuracy that picks the checkpoint jitters with them. An average over the last epoch
or so of steps is a smoother model; when a phase asks for it, validation, the best checkpoint and
the start of the next phase all use the averaged weights.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


class WeightAverage:
    """Averages the trainable parameters and the floating-point buffers (batch-norm statistics).

    `horizon_steps` is the averaging window: decay = 1 - 1/horizon_steps, ramped up from 0 over
    the first steps (as timm's ModelEma does) so the average does not keep the phase's start.
    """

    def __init__(self, model: nn.Module, horizon_steps: float) -> None:
        self.decay = max(0.0, 1.0 - 1.0 / max(1.0, horizon_steps))
        # Detached views share the tensors' storage: written in place, read without autograd.
        self.live = [p.detach() for p in model.parameters() if p.requires_grad] + [
            b for b in model.buffers() if b.is_floating_point()]
        self.shadow = [t.clone() for t in self.live]
        self.steps = 0

    @torch.no_grad()
    def update(self) -> None:
        """Fold the current weights into the average (call after each optimizer step)."""
        self.steps += 1
        decay = min(self.decay, (1 + self.steps) / (10 + self.steps))
        torch._foreach_lerp_(self.shadow, self.live, 1.0 - decay)

    @torch.no_grad()
    def copy_to_model(self) -> None:
        """Make the averaged weights the model's own (at the end of a phase)."""
        torch._foreach_copy_(self.live, self.shadow)

    @contextlib.contextmanager
    @torch.no_grad()
    def applied(self) -> Iterator[None]:
        """The model holds the averaged weights inside the block, its own ones again after."""
        kept = [t.clone() for t in self.live]
        torch._foreach_copy_(self.live, self.shadow)
        try:
            yield
        finally:
            torch._foreach_copy_(self.live, kept)

    def state_dict(self) -> dict[str, object]:
        return {"steps": self.steps, "shadow": [t.cpu() for t in self.shadow]}

    def load_state_dict(self, state: dict[str, object]) -> None:
        shadow = state["shadow"]
        if not isinstance(shadow, list) or len(shadow) != len(self.shadow):
            raise ValueError("the saved weight average does not match this phase's weights")
        for mine, saved in zip(self.shadow, shadow, strict=True):
            mine.copy_(saved.to(mine.device))
        self.steps = int(state["steps"])  # type: ignore[arg-type]
