"""What `edgetl select` was asked to do, checked before any work, and the words it accepts.

Every check here runs before data is read, a model is built or anything is written, so a bad
flag costs nothing: one line and exit 2 (`UsageError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl.artifact.formats import FORMATS
from edgetl.errors import UsageError
from edgetl.runtime.backends import ARTIFACT_BACKENDS, BACKEND_TABLE

BACKENDS = ARTIFACT_BACKENDS
BUDGET_STATS = ("p90", "p50")
PHASE_CHOICES = ("A", "all")
# backend -> precision -> export format: the formats whose family the backend runs
FORMAT_FOR: dict[str, dict[str, str]] = {
    backend: {FORMATS[f].precision: f for f in BACKEND_TABLE[backend].formats()}
    for backend in BACKENDS
}
DEFAULT_CALIBRATION_IMAGES = 16  # the untrained probe's int8 calibration (latency only)
BENCH_IMAGES = 8  # distinct validation images each probe is timed on


@dataclass(frozen=True)
class BenchSettings:
    """How each exported candidate is timed (`edgetl bench`'s options of the same names)."""

    warmup: int | None = None  # None: until two window medians agree (bench's auto)
    min_time: float = 2.0
    iters: int | None = None
    threads: int | None = None


@dataclass(frozen=True)
class SelectConfig:
    recipe: Path
    out: Path
    budget_ms: float
    overrides: tuple[str, ...] = ()
    data: str | None = None
    budget_on: str = "p90"
    backend: str = "ort-cpu"
    batch: int = 1
    precisions: tuple[str, ...] = ("fp32", "int8")
    time_budget_s: float | None = None
    backbones: tuple[str, ...] = ()  # empty: every registry backbone with offline weights
    sizes: tuple[int, ...] = ()  # empty: the task's default sizes
    phases: str = "A"
    device: str = "auto"
    bench: BenchSettings = field(default_factory=BenchSettings)
    calibration_images: int = DEFAULT_CALIBRATION_IMAGES
    latency_only: bool = False
    keep_artifacts: bool = False

    def validate(self) -> None:
        """Raise `UsageError` for anything that cannot be right, before any work."""
        if not self.budget_ms > 0:
            raise UsageError(f"--budget-ms must be > 0, got {self.budget_ms:g}",
                             "give the latency budget per call in milliseconds, e.g. 5")
        if self.budget_on not in BUDGET_STATS:
            raise UsageError(f"--budget-on {self.budget_on!r} is not a statistic the budget "
                             "applies to", "use p90 or p50")
        if self.backend not in BACKENDS:
            raise UsageError(f"unknown backend {self.backend!r} for select",
                             f"use one of {', '.join(BACKENDS)}")
        if self.batch < 1:
            raise UsageError(f"--batch must be >= 1, got {self.batch}")
        if not self.precisions:
            raise UsageError("--precision is empty", "give e.g. --precision fp32,int8")
        allowed = FORMAT_FOR[self.backend]
        wrong = [p for p in self.precisions if p not in allowed]
        if wrong:
            raise UsageError(f"--precision {','.join(wrong)} is not available on "
                             f"{self.backend}", f"use {', '.join(allowed)}")
        if self.time_budget_s is not None and not self.time_budget_s > 0:
            raise UsageError(f"--time-budget must be > 0, got {self.time_budget_s:g} s",
                             "e.g. --time-budget 30m")
        bad_sizes = [s for s in self.sizes if not 32 <= s <= 2048]
        if bad_sizes:
            raise UsageError(f"--sizes {bad_sizes[0]} is outside 32-2048 pixels")
        if self.phases not in PHASE_CHOICES:
            raise UsageError(f"--phases {self.phases!r}", "use A (phase A on cached features, "
                             "the default) or all (the recipe's phases)")
        if self.device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda, got {self.device!r}")
        if self.calibration_images < 1:
            raise UsageError("--calibration-images must be at least 1")
        if self.bench.min_time <= 0 and self.bench.iters is None:
            raise UsageError(f"--min-time must be > 0 seconds, got {self.bench.min_time}")
        if self.bench.iters is not None and self.bench.iters < 1:
            raise UsageError(f"--iters must be >= 1, got {self.bench.iters}")
        if self.bench.threads is not None and self.bench.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.bench.threads}")

    def bench_config(self, artifact: Path) -> Any:
        """bench's settings for one artifact: the same for the untrained probe and the pick."""
        from edgetl.bench.runner import BenchConfig

        return BenchConfig(artifact=artifact, backends=(self.backend,), batches=(self.batch,),
                           threads=self.bench.threads, warmup=self.bench.warmup,
                           min_time=self.bench.min_time, iters=self.bench.iters)

    def formats(self) -> dict[str, str]:
        """precision -> export format, in the order the precisions were given."""
        return {p: FORMAT_FOR[self.backend][p] for p in self.precisions}


def parse_sizes(text: str) -> tuple[int, ...]:
    """'160,224' -> (160, 224): input sizes in pixels, duplicates dropped, order kept."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        if not part.isdigit():
            raise UsageError(f"--sizes {text!r}: {part!r} is not a size in pixels")
        if int(part) not in out:
            out.append(int(part))
    if not out:
        raise UsageError("--sizes is empty", "give e.g. --sizes 160,224,288")
    return tuple(out)


def parse_names(text: str | None) -> tuple[str, ...]:
    """'a, b,a' -> ('a', 'b')."""
    out: list[str] = []
    for part in (text or "").split(","):
        part = part.strip()
        if part and part not in out:
            out.append(part)
    return tuple(out)
