"""One small interface every backend implements, so verify, bench and predict do not care which.

A runner takes a batch that is already preprocessed as the artifact's spec says (float32 NCHW
for plain artifacts, uint8 NHWC for embedded-preprocessing ones) and returns the model's named
outputs as numpy arrays (a classifier: `logits`; a detector: `boxes`, `scores`, `labels`,
`num_detections`; ...), each with the batch on axis 0, in the dtype the model gives.
Casting to the artifact's own input dtype is the runner's job.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.postprocess import concat_outputs


class Runner(ABC):
    """Run a model on numpy batches. Use as a context manager or call `close()`."""

    backend: str = "unknown"
    input_name: str = "input"
    input_dtype: np.dtype = np.dtype(np.float32)
    max_batch: int | None = None  # None: any batch size
    output_names: tuple[str, ...] = ("logits",)

    @classmethod
    def for_artifact(cls, path: Path, backend: str, *, threads: int | None = None,
                     io_binding: bool = False) -> Runner:
        """Open an exported artifact (`open_runner`'s call); runners with options override it."""
        return cls(path)  # type: ignore[call-arg]

    @abstractmethod
    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Run one batch that fits `max_batch`; returns every named output."""

    def run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        """Every named output for a batch of any size (split into `max_batch` chunks)."""
        batch = np.ascontiguousarray(batch, dtype=self.input_dtype)
        if self.max_batch is None or len(batch) <= self.max_batch:
            return self._run(batch)
        return concat_outputs([self._run(batch[i:i + self.max_batch])
                               for i in range(0, len(batch), self.max_batch)])

    def describe(self) -> dict[str, Any]:
        """What ran: for reports."""
        return {"backend": self.backend, "input_name": self.input_name,
                "input_dtype": str(self.input_dtype), "outputs": list(self.output_names)}

    def runtime_info(self) -> dict[str, Any] | None:
        """The runtime, its version, the device it runs on and the settings it was opened
        with (bench's environment block records them); None: the runner does not say."""
        return None

    def close(self) -> None:  # noqa: B027 (optional hook: most runners hold nothing to free)
        """Free backend resources (sessions, device memory)."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
