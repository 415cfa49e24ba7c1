"""`Target`: one prepared thing to time (a backend, a precision, a batch, a mode).

Backend modules (`ort_timing`, `torch_timing`, `e2e`) build targets; `runner.run_bench` warms
them up, times them and turns the samples into rows. A target owns everything it allocated and
frees it in `close()`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from edgetl.bench.timing import Clock, Step


@dataclass
class Target:
    backend: str  # the row's backend label (e.g. "ort-cpu", "torch-cudagraph")
    precision: str  # fp32, fp16, int8
    step: Step  # one inference of the prepared batch
    clock: Clock
    threads: int | None  # intra-op threads in use (None: not a CPU-threaded backend)
    details: dict[str, Any] = field(default_factory=dict)
    device_peak_mb: Callable[[], float | None] | None = None
    closer: Callable[[], None] | None = None

    def close(self) -> None:
        if self.closer is not None:
            self.closer()
            self.closer = None
