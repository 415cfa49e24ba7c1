"""The PyTorch model behind the runner interface: the reference side of verify and bench.

It takes the same numpy batches as the other runners (or torch tensors, to skip a copy) and
returns the same named outputs, so that comparisons differ only in the thing being compared. A
module returning one tensor gives `output_names[0]`; one returning a dict gives its keys; a
tuple is named by `output_names` in order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.checkpoint import BEST
from edgetl.errors import BackendUnavailableError
from edgetl.runtime.base import Runner


class TorchRunner(Runner):
    """An eval-mode torch module on CPU or CUDA, float32 in and out."""

    backend = "torch"

    def __init__(self, model: Any, device: str = "cpu",
                 output_names: tuple[str, ...] = ("logits",)) -> None:
        # not at the top: importing this module loads no torch
        import torch

        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError("torch has no CUDA device here", "use device cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.input_dtype = np.dtype(np.float32)
        self.output_names = tuple(output_names)

    @classmethod
    def from_run(cls, run: str | Path, which: str = BEST, device: str = "cpu") -> TorchRunner:
        """The run's checkpoint as the module its artifacts are made of (same outputs)."""
        from edgetl.models.deployable import deployable
        from edgetl.models.loading import load_model

        model, info = load_model(run, which)
        module, names, _ = deployable(model, info.task_record.task)
        return cls(module, device, output_names=names)

    def run(self, batch: Any) -> dict[str, np.ndarray]:
        # not at the top: importing this module loads no torch
        import torch

        if not isinstance(batch, torch.Tensor):
            batch = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32))
        with torch.inference_mode():
            out = self.model(batch.to(self.device, torch.float32))
        if isinstance(out, torch.Tensor):
            out = {self.output_names[0]: out}
        elif not isinstance(out, dict):
            out = dict(zip(self.output_names, out, strict=True))
        return {name: _to_numpy(value) for name, value in out.items()}

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        return self.run(batch)

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info["device"] = str(self.device)
        return info


def _to_numpy(value: Any) -> np.ndarray:
    """Floating outputs as float32 (a bf16/fp16 model compares like the others); others as is."""
    return (value.float() if value.is_floating_point() else value).cpu().numpy()
