"""Percentile bootstrap over images: the resample draws, the interval, and a paired difference.

One place for what every task's intervals share: images drawn with replacement from one seeded
generator (`resample_orders`), the 2.5/97.5% quantiles of the resampled statistic
(`percentile_interval`), and `paired_delta`, which scores two sets of predictions on the same
draws so the interval is that of the difference (verify: artifact against the torch model).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

T = TypeVar("T")


def resample_orders(n_items: int, rounds: int, seed: int = 0) -> np.ndarray:
    """`rounds` resamples of `n_items` indices, with replacement: [rounds, n_items]."""
    return np.random.default_rng(seed).integers(0, n_items, size=(rounds, n_items))


def percentile_interval(values: np.ndarray, level: float = 0.95) -> list[float]:
    """The central `level` interval of `values` by quantiles: [low, high]."""
    low, high = np.quantile(values, [(1 - level) / 2, 1 - (1 - level) / 2])
    return [float(low), float(high)]


def paired_delta(first: T, second: T, n_items: int, names: tuple[str, ...],
                 point: Callable[[T], dict[str, float]],
                 resampled: Callable[[T, np.ndarray], dict[str, np.ndarray]],
                 rounds: int, seed: int = 0) -> dict[str, dict[str, Any]]:
    """second - first for each statistic in `names`, with a paired bootstrap interval: the
    same resamples of the `n_items` images for both. `point(x)`: the statistics on all
    images; `resampled(x, orders)`: the statistics on each resample (one value per row)."""
    orders = resample_orders(n_items, rounds, seed)
    a = resampled(first, orders)
    b = resampled(second, orders)
    point_a, point_b = point(first), point(second)
    return {name: {"first": point_a[name], "second": point_b[name],
                   "delta": point_b[name] - point_a[name],
                   "delta_ci95": percentile_interval(b[name] - a[name])}
            for name in names}
