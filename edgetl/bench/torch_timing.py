"""torch targets for bench: the run's checkpoint, eager on CPU; on CUDA eager and CUDA graphs.

Eager rows time the export engineer's `TorchRunner.run` (what `verify` compares against), fed a
tensor prepared once (on the device for CUDA). CUDA-graph rows are built here: the model (fp32,
or a half-precision copy for fp16) is captured once into a `torch.cuda.CUDAGraph` with static
input/output tensors and each timed call is one replay, timed with CUDA events.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.bench.memory import torch_device_peak_mb, torch_device_peak_reset
from edgetl.bench.target import Target
from edgetl.bench.timing import CudaEventClock, HostClock
from edgetl.errors import BackendUnavailableError

CAPTURE_WARMUP = 3  # eager calls on a side stream before capture (cuDNN picks its kernels)


def cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def torch_targets(run: Path, which: str, batch: np.ndarray, threads: int | None,
                  device: str) -> list[Any]:
    """Factories (callables returning a Target) for the torch rows on `device`."""
    if device == "cuda" and not cuda_available():
        raise BackendUnavailableError("torch has no CUDA device here", "use --backend torch on "
                                      "CPU (the default where no GPU is visible)")
    factories = [lambda: _eager(run, which, batch, threads, device)]
    if device == "cuda":
        factories += [lambda: _graph(run, which, batch, "fp32"),
                      lambda: _graph(run, which, batch, "fp16")]
    return factories


def _eager(run: Path, which: str, batch: np.ndarray, threads: int | None, device: str) -> Target:
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.runtime.torch_runner import TorchRunner

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    runner = TorchRunner.from_run(run, which, device=device)
    data = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to(runner.device)
    cuda = device == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick its fastest kernels
        torch_device_peak_reset()

    def step() -> object:
        return runner.run(data)

    return Target(
        backend="torch", precision="fp32", step=step,
        clock=CudaEventClock() if cuda else HostClock(),
        threads=None if cuda else torch.get_num_threads(),
        details={"device": str(runner.device), "mode": "eager, inference_mode",
                 "includes": "logits copied to host"},
        device_peak_mb=torch_device_peak_mb if cuda else None,
        closer=lambda: torch.set_num_threads(previous_threads),
    )


def _graph(run: Path, which: str, batch: np.ndarray, precision: str) -> Target:
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.models.loading import load_model

    torch.backends.cudnn.benchmark = True
    model, _ = load_model(run, which)
    dtype = torch.float16 if precision == "fp16" else torch.float32
    model = model.to("cuda", dtype).eval()
    torch_device_peak_reset()
    static_in = torch.from_numpy(np.ascontiguousarray(batch, dtype=np.float32)).to("cuda", dtype)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.inference_mode():
        with torch.cuda.stream(side):
            for _ in range(CAPTURE_WARMUP):
                model(static_in)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            static_out = model(static_in)
    torch.cuda.synchronize()

    def step() -> object:
        graph.replay()
        return static_out

    return Target(
        backend="torch-cudagraph", precision=precision, step=step, clock=CudaEventClock(),
        threads=None,
        details={"device": "cuda", "mode": "CUDA graph replay, static device input/output",
                 "weights": str(dtype).replace("torch.", "")},
        device_peak_mb=torch_device_peak_mb,
    )
