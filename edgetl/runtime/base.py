"""One small interface every backend implements, so verify, bench and predict do not care which.

A runner takes a batch that is already preprocessed as the artifact's spec says (float32 NCHW
for plain artifacts, uint8 NHWC for embedded-preprocessing ones) and returns float32 logits.
Casting to the artifact's own input dtype is the runner's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

BACKENDS: tuple[str, ...] = ("ort-cpu", "ort-cuda", "tensorrt", "torch")


class Runner(ABC):
    """Run a model on numpy batches. Use as a context manager or call `close()`."""

    backend: str = "unknown"
    input_name: str = "input"
    input_dtype: np.dtype = np.dtype(np.float32)
    max_batch: int | None = None  # None: any batch size

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Run one batch that fits `max_batch`; returns float32 logits [N, C]."""

    def run(self, batch: np.ndarray) -> np.ndarray:
        """float32 logits [N, C] for a batch of any size (split into `max_batch` chunks)."""
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if self.max_batch is None or len(batch) <= self.max_batch:
            return self._run(batch)
        parts = [self._run(batch[i:i + self.max_batch])
                 for i in range(0, len(batch), self.max_batch)]
        return np.concatenate(parts, axis=0)

    def describe(self) -> dict[str, Any]:
        """What ran: for reports."""
        return {"backend": self.backend, "input_name": self.input_name,
                "input_dtype": str(self.input_dtype)}

    def close(self) -> None:  # noqa: B027 (optional hook: most runners hold nothing to free)
        """Free backend resources (sessions, device memory)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
