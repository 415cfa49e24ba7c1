"""The decisions of `edgetl select`, as pure functions: budget, order, time, front and pick.

Kept free of I/O so each rule is unit-tested on numbers worked out by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


# --------------------------------------------------------------------------- the latency budget
def deploy_precision(latency: Mapping[str, Mapping[str, Any]], precisions: Sequence[str],
                     budget_ms: float, stat: str) -> str | None:
    """The first precision, in the order given, whose `stat` (p90/p50) is within the budget
    (the order is the preference: fp32 before int8 keeps float accuracy when both fit);
    None when every precision is over budget."""
    for precision in precisions:
        row = latency.get(precision)
        if row is not None and row[f"{stat}_ms"] <= budget_ms:
            return precision
    return None


def over_budget_words(latency: Mapping[str, Mapping[str, Any]], budget_ms: float,
                      stat: str) -> str:
    """'fp32 p90 7.10 ms, int8 p90 5.20 ms > 5.00 ms': the figures that dropped a candidate."""
    figures = ", ".join(f"{p} {stat} {row[f'{stat}_ms']:.2f} ms" for p, row in latency.items())
    return f"{figures} > {budget_ms:.2f} ms"


# --------------------------------------------------------------------------- the time budget
def estimate_seconds(done: Sequence[tuple[float, float]], cost: float) -> float | None:
    """Training seconds of a candidate of compute `cost`, from (cost, seconds) of those done.

    One done: proportional to cost. Several: least squares t = a + b * cost with a, b >= 0
    (a covers what does not grow with the network, decoding images; b the frozen pass).
    None when nothing is done yet (the first candidate always starts)."""
    if not done:
        return None
    if len(done) == 1 or len({c for c, _ in done}) == 1:
        ratio = max(s / c for c, s in done if c > 0) if any(c > 0 for c, _ in done) else 0.0
        return ratio * cost if ratio else max(s for _, s in done)
    n = len(done)
    mean_c = sum(c for c, _ in done) / n
    mean_s = sum(s for _, s in done) / n
    var = sum((c - mean_c) ** 2 for c, _ in done)
    slope = max(0.0, sum((c - mean_c) * (s - mean_s) for c, s in done) / var)
    intercept = mean_s - slope * mean_c
    if intercept < 0:  # through the origin instead
        intercept = 0.0
        slope = sum(c * s for c, s in done) / sum(c * c for c, _ in done)
    return intercept + slope * cost


@dataclass(frozen=True)
class TimeDecision:
    start: bool
    estimate_s: float | None
    remaining_s: float | None


def decide_start(remaining_s: float | None, estimate_s: float | None) -> TimeDecision:
    """Start a candidate unless a time budget is set and its estimate does not fit what is
    left (no estimate yet: start it, while any time is left)."""
    if remaining_s is None:
        return TimeDecision(True, estimate_s, None)
    if remaining_s <= 0:
        return TimeDecision(False, estimate_s, remaining_s)
    return TimeDecision(estimate_s is None or estimate_s <= remaining_s, estimate_s, remaining_s)


# --------------------------------------------------------------------------- front and pick
@dataclass(frozen=True)
class Point:
    """A trained candidate: its deployed latency and validation score."""

    key: str
    latency_ms: float
    score: float


def _at_least_as_good(a: float, b: float, higher_is_better: bool) -> bool:
    return a >= b if higher_is_better else a <= b


def dominates(a: Point, b: Point, higher_is_better: bool) -> bool:
    """a is no slower and no worse than b, and strictly better in one of them."""
    no_worse = a.latency_ms <= b.latency_ms and _at_least_as_good(a.score, b.score,
                                                                  higher_is_better)
    return no_worse and (a.latency_ms < b.latency_ms or a.score != b.score)


def pareto_front(points: Sequence[Point], higher_is_better: bool = True) -> list[str]:
    """Keys of the points no other point dominates, fastest first."""
    front = [p for p in points
             if not any(dominates(q, p, higher_is_better) for q in points if q is not p)]
    return [p.key for p in sorted(front, key=lambda p: (p.latency_ms, p.key))]


def pick(points: Sequence[Point], higher_is_better: bool = True) -> str | None:
    """The best validation score; among equal scores the fastest (None without points)."""
    if not points:
        return None
    sign = 1.0 if higher_is_better else -1.0
    return min(points, key=lambda p: (-sign * p.score, p.latency_ms, p.key)).key


def faster_within_interval(points: Sequence[Point], chosen: str, interval: Sequence[float],
                           higher_is_better: bool = True) -> list[str]:
    """Faster candidates whose score lies inside the pick's interval: on this validation split
    they cannot be told apart from the pick (fastest first)."""
    best = next(p for p in points if p.key == chosen)
    lo, hi = interval
    inside = [p for p in points if p.key != chosen and p.latency_ms < best.latency_ms
              and (p.score >= lo if higher_is_better else p.score <= hi)]
    return [p.key for p in sorted(inside, key=lambda p: (p.latency_ms, p.key))]
