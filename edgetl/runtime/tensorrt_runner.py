"""TensorRT engine runner (TensorRT 10 tensor-address API), device memory through torch.

Written against the real `tensorrt` Python API but not runnable on machines without TensorRT
and a CUDA GPU: there it raises `BackendUnavailableError` (exit 3) before touching anything.
Engines are specific to the GPU and TensorRT version that built them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.errors import ArtifactError, BackendUnavailableError
from edgetl.runtime.base import Runner


def require_tensorrt() -> Any:
    """The `tensorrt` module, or exit 3 with what to do."""
    try:
        import tensorrt
    except ImportError as exc:
        raise BackendUnavailableError(
            "TensorRT is not installed here (no Python package 'tensorrt')",
            "build engines on the target machine with an NVIDIA GPU after 'pip install "
            "tensorrt' (TensorRT 10), or export --format onnx, onnx-fp16 or onnx-int8",
        ) from exc
    return tensorrt


def _torch_cuda() -> Any:
    try:
        import torch
    except ImportError as exc:
        raise BackendUnavailableError("the TensorRT runner needs torch for GPU memory") from exc
    if not torch.cuda.is_available():
        raise BackendUnavailableError("TensorRT needs a CUDA GPU and none is visible here",
                                      "run on a machine with an NVIDIA GPU or use ort-cpu")
    return torch


class TensorRTRunner(Runner):
    """Deserialize an engine and run it with explicit-batch, dynamic-shape execution."""

    backend = "tensorrt"

    def __init__(self, path: str | Path) -> None:
        trt = require_tensorrt()
        torch = _torch_cuda()
        self._trt, self._torch = trt, torch
        self.path = Path(path)
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise ArtifactError(
                f"TensorRT could not deserialize {self.path}",
                "engines only load on the GPU model and TensorRT version that built them; "
                "rebuild it here with 'edgetl export RUN --format tensorrt-fp16'",
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        inputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
        outputs = [n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
        if len(inputs) != 1 or not outputs:
            raise ArtifactError(f"{self.path}: expected one input and at least one output, got "
                                f"{inputs} and {outputs}")
        self.input_name = inputs[0]
        self.output_names = tuple(outputs)
        self.input_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(self.input_name)))
        self._output_dtypes = {n: np.dtype(trt.nptype(self.engine.get_tensor_dtype(n)))
                               for n in outputs}
        _, _, max_shape = self.engine.get_tensor_profile_shape(self.input_name, 0)
        self.max_batch = int(max_shape[0])
        self._stream = torch.cuda.Stream()

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        torch = self._torch
        x = torch.from_numpy(batch).to("cuda")
        self.context.set_input_shape(self.input_name, tuple(x.shape))
        self.context.set_tensor_address(self.input_name, x.data_ptr())
        outputs = {}
        for name in self.output_names:
            # Every edgetl output has a static shape once the input shape is set (detection
            # pads its detections to a fixed top-K), so no output allocator is needed.
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(np.zeros(1, dtype=self._output_dtypes[name])).dtype
            outputs[name] = torch.empty(shape, dtype=dtype, device="cuda")
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        self._stream.wait_stream(torch.cuda.current_stream())
        if not self.context.execute_async_v3(self._stream.cuda_stream):
            raise ArtifactError(f"TensorRT failed to run {self.path}")
        self._stream.synchronize()
        return {name: (y.float() if y.is_floating_point() else y).cpu().numpy()
                for name, y in outputs.items()}

    def close(self) -> None:
        self.context = None
        self.engine = None
