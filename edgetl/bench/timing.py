"""Warm-up and measurement loops around one inference step, with a device-synchronised clock.

A *step* is a zero-argument callable that runs one inference. A *clock* times one step and only
returns once the device has finished it:
- `HostClock`: `time.perf_counter_ns` around the call. Right for CPU backends and for backends
  whose call returns only after the device finished (ONNX Runtime's `run`/`run_with_iobinding`
  synchronise their provider before returning).
- `CudaEventClock`: CUDA events recorded on the stream the work is queued on, then
  `event.synchronize()`: right for torch on CUDA, where calls return before the GPU is done.

Warm-up either runs a fixed count or runs windows until two successive window medians agree
within `SETTLE_TOLERANCE` (caches, allocator arenas, JIT/autotuning, CPU frequency). Measurement
runs for at least `min_time` seconds and `MIN_ITERS` calls, or exactly `iters` calls. The
garbage collector is paused while timing so its pauses do not land in one backend's numbers.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from edgetl.errors import UsageError

Step = Callable[[], object]

SETTLE_TOLERANCE = 0.05  # successive window medians within 5%: settled
WINDOW_SECONDS = 0.05  # a warm-up window lasts at least this long (and 5 calls)
MAX_WARMUP_SECONDS = 10.0  # auto warm-up gives up (and says so) after this long
MIN_AUTO_WARMUP = 10  # auto warm-up runs at least this many calls
MIN_ITERS = 10  # a time-bounded measurement takes at least this many samples
MAX_ITERS = 1_000_000


class Clock(Protocol):
    name: str

    def time_ns(self, step: Step) -> int:
        """Duration of one call of `step`, after the device finished it."""
        ...


class HostClock:
    """perf_counter_ns around a call that is synchronous (CPU, ONNX Runtime runs)."""

    name = "perf_counter_ns"

    def time_ns(self, step: Step) -> int:
        start = time.perf_counter_ns()
        step()
        return time.perf_counter_ns() - start


class CudaEventClock:
    """CUDA events around a call on `stream` (torch's current stream when None)."""

    name = "cuda_events"

    def __init__(self, stream: Any = None) -> None:
        # not at the top: importing this module loads no torch
        import torch

        self._torch = torch
        self._stream = stream
        self._start = torch.cuda.Event(enable_timing=True)
        self._end = torch.cuda.Event(enable_timing=True)

    def time_ns(self, step: Step) -> int:
        stream = self._stream or self._torch.cuda.current_stream()
        self._start.record(stream)
        step()
        self._end.record(stream)
        self._end.synchronize()
        return int(self._start.elapsed_time(self._end) * 1e6)


@dataclass(frozen=True)
class WarmupResult:
    iters: int
    seconds: float
    settled: bool  # auto: the window medians agreed; fixed count: True


def parse_warmup(text: str) -> int | None:
    """'auto' -> None (settle automatically); 'N' -> N fixed warm-up calls."""
    value = text.strip().lower()
    if value == "auto":
        return None
    try:
        count = int(value)
    except ValueError:
        raise UsageError(f"--warmup {text!r} is neither 'auto' nor a count") from None
    if count < 0:
        raise UsageError(f"--warmup must be >= 0, got {count}")
    return count


def warm_up(clock: Clock, step: Step, count: int | None) -> WarmupResult:
    """Run `count` calls, or (None) windows until successive window medians settle."""
    started = time.perf_counter()
    if count is not None:
        for _ in range(count):
            clock.time_ns(step)
        return WarmupResult(count, time.perf_counter() - started, True)
    first = clock.time_ns(step)  # the first call is usually the slowest (allocation, autotune)
    done = 1
    window = max(5, int(WINDOW_SECONDS * 1e9 / max(first, 1)))
    previous: float | None = None
    while True:
        median = statistics.median(clock.time_ns(step) for _ in range(window))
        done += window
        elapsed = time.perf_counter() - started
        if (previous is not None and done >= MIN_AUTO_WARMUP
                and abs(median - previous) <= SETTLE_TOLERANCE * previous):
            return WarmupResult(done, elapsed, True)
        if elapsed > MAX_WARMUP_SECONDS:
            return WarmupResult(done, elapsed, False)
        previous = median
        window = max(5, int(WINDOW_SECONDS * 1e9 / max(median, 1)))


@dataclass
class Measurement:
    """Per-call wall-clock durations and, alongside, the process CPU time each call used."""

    wall_ns: list[int]
    cpu_ns: list[int]


def measure(clock: Clock, step: Step, min_time: float, iters: int | None = None) -> list[int]:
    """Per-call durations (ns): exactly `iters` calls, or at least `min_time` s and MIN_ITERS."""
    return measure_with_cpu(clock, step, min_time, iters).wall_ns


def measure_with_cpu(clock: Clock, step: Step, min_time: float, iters: int | None = None
                     ) -> Measurement:
    """As `measure`, plus process CPU time per call (read outside the timed region).

    CPU time (all threads of this process) separates work from waiting: when another process
    takes the core, wall time grows while CPU time barely moves; more work grows both.
    """
    if iters is not None and iters < 1:
        raise UsageError(f"--iters must be >= 1, got {iters}")
    if iters is None and min_time <= 0:
        raise UsageError(f"--min-time must be > 0 seconds, got {min_time}")
    out = Measurement([], [])
    cpu = time.process_time_ns
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        deadline = time.perf_counter_ns() + int(min_time * 1e9)
        while len(out.wall_ns) < MAX_ITERS:
            if iters is not None:
                if len(out.wall_ns) >= iters:
                    break
            elif len(out.wall_ns) >= MIN_ITERS and time.perf_counter_ns() >= deadline:
                break
            before = cpu()
            out.wall_ns.append(clock.time_ns(step))
            out.cpu_ns.append(cpu() - before)
    finally:
        if was_enabled:
            gc.enable()
    return out
