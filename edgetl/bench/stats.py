"""Summary statistics of latency samples: what every bench row reports.

Percentiles use numpy's default (linear interpolation). `cv` is std / mean; above `CV_WARN`
the row is flagged, because a p50 taken from a distribution that wide is not worth gating on.
`spread_ms` (p90 - p50) is the one-sided spread the regression gate allows for: latency
distributions are skewed to the slow side, where preemption and cache misses show up.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

CV_WARN = 0.10


@dataclass(frozen=True)
class LatencyStats:
    """Latency summary in milliseconds for one (backend, precision, batch, mode) row."""

    n: int
    min_ms: float
    mean_ms: float
    p25_ms: float
    p50_ms: float
    p75_ms: float
    p90_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    std_ms: float
    cv: float

    @property
    def spread_ms(self) -> float:
        """p90 - p50: the slow-side spread the gate allows for."""
        return self.p90_ms - self.p50_ms

    @property
    def noisy(self) -> bool:
        return self.cv > CV_WARN

    def throughput(self, batch: int) -> float:
        """Images per second at the median latency (batch / p50)."""
        return batch * 1000.0 / self.p50_ms if self.p50_ms > 0 else float("inf")

    def to_dict(self) -> dict[str, Any]:
        return {k: (round(v, 6) if isinstance(v, float) else v) for k, v in asdict(self).items()}


def summarize_ns(samples_ns: list[int] | np.ndarray) -> LatencyStats:
    """Stats of per-call durations given in nanoseconds."""
    return summarize_ms(np.asarray(samples_ns, dtype=np.float64) / 1e6)


def summarize_ms(samples_ms: list[float] | np.ndarray) -> LatencyStats:
    """Stats of per-call durations in milliseconds (at least one sample)."""
    data = np.asarray(samples_ms, dtype=np.float64)
    if data.size == 0:
        raise ValueError("no latency samples to summarise")
    p25, p50, p75, p90, p95, p99 = np.percentile(data, [25, 50, 75, 90, 95, 99])
    mean = float(data.mean())
    std = float(data.std(ddof=1)) if data.size > 1 else 0.0
    return LatencyStats(
        n=int(data.size), min_ms=float(data.min()), mean_ms=mean, p25_ms=float(p25),
        p50_ms=float(p50), p75_ms=float(p75), p90_ms=float(p90), p95_ms=float(p95),
        p99_ms=float(p99), max_ms=float(data.max()), std_ms=std,
        cv=std / mean if mean > 0 else 0.0,
    )
