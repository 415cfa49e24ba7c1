"""Per-step learning-rate factor: linear warm-up, then cosine down to `min_lr_ratio`."""

from __future__ import annotations

import math


def lr_factor(step: int, total_steps: int, warmup_steps: int, min_ratio: float) -> float:
    """Multiplier of each group's initial lr at optimizer step `step` (0-based)."""
    if total_steps <= 0:
        return 1.0
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer, factor: float) -> None:  # noqa: ANN001 - any torch optimizer
    for group in optimizer.param_groups:
        group["lr"] = group["initial_lr"] * factor
