"""ONNX Runtime targets for bench: `ort-cpu`, `ort-cuda` (IOBinding, CUDA graphs), `ort-trt`.

`ort-cpu` times the export engineer's `OrtRunner` as is (its `run` is what deployments call).
The GPU variants need what `OrtRunner` does not do, so they build their own session here:
- `ort-cuda`: input and output bound once as device `OrtValue`s through IOBinding, so a timed
  call moves no data between host and device; with `enable_cuda_graph` an early run captures a
  CUDA graph and later runs replay it (ONNX Runtime needs every node on the CUDA provider and
  fixed input/output addresses for that, which the bound OrtValues give); `prefer_nhwc` lets
  cuDNN use channels-last kernels (tensor cores for fp16) without transposes. Settings are
  tried fastest first; what was refused is listed in the row (`details.settings`, `notes`).
- `ort-trt`: ONNX Runtime's TensorRT provider, same IOBinding; exit 3 unless that provider
  really loads (it is often listed where libnvinfer is missing).
ONNX Runtime's `run_with_iobinding` synchronises the provider's stream before it returns (and
outputs are synchronised explicitly), so the host clock around it is device-synchronised.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.bench.memory import device_used_mb
from edgetl.bench.target import Target
from edgetl.bench.timing import HostClock
from edgetl.errors import ArtifactError, BackendUnavailableError
from edgetl.runtime.onnxrt import require_provider

CPU_SESSION_DEFAULTS = "all graph optimisations, inter-op 1 thread, sequential execution"


def default_cpu_threads() -> int:
    """ONNX Runtime's own default intra-op pool: one thread per physical core."""
    try:
        import psutil

        return int(psutil.cpu_count(logical=False) or 1)
    except ImportError:
        import os

        return os.cpu_count() or 1


def ort_cpu_target(path: Path, batch: np.ndarray, precision: str, threads: int | None,
                   optimization: str = "all") -> Target:
    from edgetl.runtime.onnxrt import OrtRunner

    runner = OrtRunner(path, "ort-cpu", intra_op_num_threads=threads, optimization=optimization)
    data = np.ascontiguousarray(batch, dtype=runner.input_dtype)

    def step() -> object:
        return runner.run(data)

    return Target(
        backend="ort-cpu", precision=precision, step=step, clock=HostClock(),
        threads=threads or default_cpu_threads(),
        details={"providers": runner.session.get_providers(), "optimization": optimization,
                 "threads_requested": threads, "session": CPU_SESSION_DEFAULTS,
                 "runtime": {"runtime": "onnxruntime", "version": _ort().__version__,
                             "device": "CPU", "device_name": "CPUExecutionProvider",
                             "settings": {"intra_op_num_threads": threads,
                                          "graph_optimization": optimization,
                                          "session": CPU_SESSION_DEFAULTS}}},
        closer=runner.close,
    )


def _ort() -> Any:
    # not at the top: onnxruntime loads only when used (fast --help)
    import onnxruntime as ort

    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:  # CUDA/cuDNN from the nvidia-* wheels, where installed
        with contextlib.suppress(Exception):
            preload()
    return ort


def _bound_session(path: Path, batch: np.ndarray, providers: list[Any], threads: int | None
                   ) -> tuple[Any, Any, Any]:
    """A session plus an IOBinding with device input/output OrtValues (batch copied once)."""
    from edgetl.runtime.onnxrt import open_session

    ort = _ort()
    session = open_session(path, providers=providers, threads=threads)
    first_in, first_out = session.get_inputs()[0], session.get_outputs()[0]
    dtype = {"tensor(float)": np.float32, "tensor(float16)": np.float16,
             "tensor(uint8)": np.uint8}.get(first_in.type)
    if dtype is None:
        raise ArtifactError(f"{path}: unsupported input type {first_in.type}")
    out_dtype = np.float16 if first_out.type == "tensor(float16)" else np.float32
    device_in = ort.OrtValue.ortvalue_from_numpy(np.ascontiguousarray(batch, dtype=dtype),
                                                 "cuda", 0)
    out_shape = [d if isinstance(d, int) else len(batch) for d in first_out.shape]
    if len(out_shape) < 2 or out_shape[0] != len(batch):
        raise ArtifactError(f"{path}: output shape {first_out.shape} is not [batch, classes]")
    device_out = ort.OrtValue.ortvalue_from_shape_and_type(out_shape, out_dtype, "cuda", 0)
    binding = session.io_binding()
    binding.bind_ortvalue_input(first_in.name, device_in)
    binding.bind_ortvalue_output(first_out.name, device_out)
    return session, binding, (device_in, device_out)


FIRST_RUNS = 3  # ONNX Runtime captures the CUDA graph on an early run, not necessarily the 1st


def _gpu_target(backend: str, path: Path, batch: np.ndarray, precision: str,
                attempts: list[tuple[str, list[Any]]]) -> Target:
    """ort-cuda / ort-trt: bound device buffers; the fastest provider settings that load.

    `attempts` are (label, providers) pairs, fastest first (CUDA graph and NHWC kernels, then
    CUDA graph, then plain); the first that creates a session and runs `FIRST_RUNS` times is
    timed, and the row lists what was refused.
    """
    before = device_used_mb()
    notes: list[str] = []
    for index, (label, providers) in enumerate(attempts):
        try:
            session, binding, keep = _bound_session(path, batch, providers, None)
            for _ in range(FIRST_RUNS):
                session.run_with_iobinding(binding)
                binding.synchronize_outputs()
        except Exception as exc:  # onnxruntime's errors are untyped
            if index + 1 < len(attempts):
                notes.append(f"{label} refused ({str(exc).splitlines()[0][:200]})")
                continue
            raise BackendUnavailableError(
                f"--backend {backend} could not run {path.name}: {str(exc).splitlines()[0]}",
                "check nvidia-smi and that onnxruntime-gpu matches the CUDA/cuDNN installed",
            ) from exc
        break
    primary = {"ort-cuda": "CUDAExecutionProvider", "ort-trt": "TensorrtExecutionProvider"}[backend]
    if session.get_providers()[0] != primary:
        raise BackendUnavailableError(
            f"--backend {backend}: {primary} did not load (session providers "
            f"{session.get_providers()}); it would silently run elsewhere",
            "check the CUDA/cuDNN/TensorRT libraries onnxruntime-gpu needs",
        )

    def step() -> object:
        session.run_with_iobinding(binding)
        binding.synchronize_outputs()
        return keep

    def peak() -> float | None:
        after = device_used_mb()
        return None if after is None or before is None else round(after - before, 1)

    def close() -> None:
        nonlocal session, binding
        session = binding = None

    return Target(
        backend=backend, precision=precision, step=step, clock=HostClock(), threads=None,
        details={"providers": session.get_providers(), "io_binding": "device OrtValues",
                 "settings": label, "cuda_graph": "cuda graph" in label, "notes": notes,
                 "device_memory_method": "driver used memory after minus before the session"},
        device_peak_mb=peak, closer=close,
    )


def ort_cuda_target(path: Path, batch: np.ndarray, precision: str) -> Target:
    require_provider("CUDAExecutionProvider", "ort-cuda")

    base = {"device_id": 0, "cudnn_conv_algo_search": "EXHAUSTIVE",
            "cudnn_conv_use_max_workspace": "1"}
    graph = {**base, "enable_cuda_graph": "1"}
    attempts: list[tuple[str, list[Any]]] = [
        ("cuda graph + nhwc", [("CUDAExecutionProvider", {**graph, "prefer_nhwc": "1"}),
                               "CPUExecutionProvider"]),
        ("cuda graph", [("CUDAExecutionProvider", graph), "CPUExecutionProvider"]),
        ("plain", [("CUDAExecutionProvider", base), "CPUExecutionProvider"]),
    ]
    return _gpu_target("ort-cuda", path, batch, precision, attempts)


def ort_trt_target(path: Path, batch: np.ndarray, precision: str) -> Target:
    require_provider("TensorrtExecutionProvider", "ort-trt")
    import tempfile

    cache = tempfile.mkdtemp(prefix="edgetl-ort-trt-")

    options = {"device_id": 0, "trt_fp16_enable": precision != "fp32",
               "trt_engine_cache_enable": True, "trt_engine_cache_path": cache}
    rest: list[Any] = [("CUDAExecutionProvider", {}), "CPUExecutionProvider"]
    attempts: list[tuple[str, list[Any]]] = [
        ("cuda graph", [("TensorrtExecutionProvider",
                         {**options, "trt_cuda_graph_enable": True}), *rest]),
        ("plain", [("TensorrtExecutionProvider", options), *rest]),
    ]
    return _gpu_target("ort-trt", path, batch, precision, attempts)


# backend -> its target (path, batch, precision, threads); the GPU ones use no CPU threads
TIMERS: dict[str, Callable[[Path, np.ndarray, str, int | None], Target]] = {
    "ort-cpu": ort_cpu_target,
    "ort-cuda": lambda path, batch, precision, _threads: ort_cuda_target(path, batch, precision),
    "ort-trt": lambda path, batch, precision, _threads: ort_trt_target(path, batch, precision),
}
