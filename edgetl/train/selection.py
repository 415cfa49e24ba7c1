"""Which epoch is better: the rule best-checkpoint selection and early stopping share."""

from __future__ import annotations


def is_better(metric: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    """Higher is better, except for losses; an improvement must exceed `min_delta`."""
    if best is None:
        return True
    if metric.endswith("loss"):
        return value < best - min_delta
    return value > best + min_delta
