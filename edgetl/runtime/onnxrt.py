"""ONNX Runtime: `open_session` (every session edgetl opens), the `ort-cpu` and `ort-cuda`
runners (torch-free, used by `predict`) and the provider checks of the ort-* backends.

`ort-cuda` refuses to fall back silently: if the CUDA provider is missing or fails to load, it
raises `BackendUnavailableError` instead of quietly running on the CPU and reporting CPU figures
as GPU ones. With `io_binding=True` the output stays on the GPU until one copy at the end.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.errors import ArtifactError, BackendUnavailableError, UsageError
from edgetl.runtime.base import Runner

_ORT_DTYPES = {
    "tensor(float)": np.float32,
    "tensor(float16)": np.float16,
    "tensor(uint8)": np.uint8,
    "tensor(int8)": np.int8,
}
_PROVIDERS = {"ort-cpu": "CPUExecutionProvider", "ort-cuda": "CUDAExecutionProvider"}
_OPT_LEVELS = ("disable", "basic", "extended", "all")


def available_providers() -> list[str]:
    # not at the top: onnxruntime loads only when used (fast --help)
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _session_options(threads: int | None, optimization: str,
                     inter_op_threads: int | None = None) -> Any:
    # not at the top: onnxruntime loads only when used (fast --help)
    import onnxruntime as ort

    if optimization not in _OPT_LEVELS:
        raise UsageError(f"unknown graph optimisation level {optimization!r}",
                         f"use one of {', '.join(_OPT_LEVELS)}")
    options = ort.SessionOptions()
    options.log_severity_level = 3  # errors only: ORT's warnings are not the user's problem
    if threads is not None:
        if threads < 1:
            raise UsageError(f"thread count must be >= 1, got {threads}")
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    if inter_op_threads is not None:
        options.inter_op_num_threads = inter_op_threads
    options.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[optimization]
    return options


def require_provider(provider: str, backend: str) -> None:
    """Exit 3 before any work when onnxruntime lacks `provider`."""
    # not at the top: onnxruntime loads only when used (fast --help)
    import onnxruntime as ort

    available = ort.get_available_providers()
    if provider not in available:
        raise BackendUnavailableError(
            f"--backend {backend}: this onnxruntime {ort.__version__} has no {provider} "
            f"(it has {', '.join(available)})",
            ("install onnxruntime-gpu built for this machine's CUDA" if backend == "ort-cuda"
             else "install onnxruntime-gpu with TensorRT 10 libraries")
            + " on a machine with an NVIDIA GPU, or use --backend ort-cpu",
        )


def require_cuda_provider() -> None:
    """`ort-cuda`'s check before any work (its row's `require`)."""
    require_provider("CUDAExecutionProvider", "ort-cuda")


def require_tensorrt_provider() -> None:
    """`ort-trt`'s check before any work (its row's `require`)."""
    require_provider("TensorrtExecutionProvider", "ort-trt")


def cuda_providers(device_id: int = 0) -> list[Any]:
    """The providers of an `ort-cuda` session; exit 3 when onnxruntime has no CUDA provider.
    CUDA/cuDNN from the nvidia-* wheels are preloaded where installed."""
    # not at the top: onnxruntime loads only when used (fast --help)
    import onnxruntime as ort

    if "CUDAExecutionProvider" not in ort.get_available_providers():
        raise BackendUnavailableError(
            f"this onnxruntime {ort.__version__} has no CUDA provider "
            f"(providers: {', '.join(ort.get_available_providers())})",
            "install onnxruntime-gpu matching your CUDA, or use --backend ort-cpu",
        )
    preload = getattr(ort, "preload_dlls", None)
    if preload is not None:  # CUDA/cuDNN from the nvidia-* wheels, where installed
        with contextlib.suppress(Exception):  # best effort; the check after loading decides
            preload()
    return [("CUDAExecutionProvider", {"device_id": device_id}), "CPUExecutionProvider"]


def open_session(
    model: str | Path | bytes,
    *,
    providers: Sequence[Any] = ("CPUExecutionProvider",),
    threads: int | None = None,
    optimization: str = "all",
    inter_op_threads: int | None = None,
) -> Any:
    """An onnxruntime `InferenceSession` of a file or serialized graph: every session edgetl
    opens (runners, export's checks and int8 search, bench) is opened here, with one set of
    options: errors-only logging, the graph optimisation level by name (ONNX Runtime's default,
    "all", unless asked), and with `threads` that many intra-op threads and one inter-op thread.
    onnxruntime's own errors pass through untyped; callers word them."""
    # not at the top: onnxruntime loads only when used (fast --help)
    import onnxruntime as ort

    options = _session_options(threads, optimization, inter_op_threads)
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=list(providers))


class OrtRunner(Runner):
    """An onnxruntime InferenceSession on one provider."""

    def __init__(
        self,
        path: str | Path,
        backend: str = "ort-cpu",
        *,
        intra_op_num_threads: int | None = None,
        io_binding: bool = False,
        optimization: str = "all",
        device_id: int = 0,
    ) -> None:
        if backend not in _PROVIDERS:
            raise UsageError(f"unknown onnxruntime backend {backend!r}", "use ort-cpu or ort-cuda")
        self.backend = backend
        self.path = Path(path)
        self.io_binding = io_binding and backend == "ort-cuda"
        providers = (cuda_providers(device_id) if backend == "ort-cuda"
                     else ["CPUExecutionProvider"])
        try:
            self.session = open_session(self.path, providers=providers,
                                        threads=intra_op_num_threads, optimization=optimization)
        except UsageError:
            raise
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ArtifactError(f"onnxruntime cannot load {self.path}: {exc}") from exc
        if backend == "ort-cuda" and "CUDAExecutionProvider" not in self.session.get_providers():
            raise BackendUnavailableError(
                "onnxruntime's CUDA provider did not load (missing CUDA/cuDNN libraries or no "
                "GPU); it would silently run on the CPU",
                "check `nvidia-smi` and the CUDA/cuDNN versions onnxruntime-gpu needs",
            )
        first_in = self.session.get_inputs()[0]
        if first_in.type not in _ORT_DTYPES:
            raise ArtifactError(f"{self.path}: unsupported input type {first_in.type}")
        self.input_name = first_in.name
        self.input_dtype = np.dtype(_ORT_DTYPES[first_in.type])
        self.input_shape = list(first_in.shape)
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.device_id = device_id

    @classmethod
    def for_artifact(cls, path: Path, backend: str, *, threads: int | None = None,
                     io_binding: bool = False) -> OrtRunner:
        return cls(path, backend, intra_op_num_threads=threads, io_binding=io_binding)

    @property
    def metadata(self) -> dict[str, str]:
        """The artifact's embedded metadata_props (spec, labels, ...)."""
        return dict(self.session.get_modelmeta().custom_metadata_map)

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        if self.io_binding:
            binding = self.session.io_binding()
            binding.bind_cpu_input(self.input_name, batch)
            for name in self.output_names:
                binding.bind_output(name, "cuda", self.device_id)
            self.session.run_with_iobinding(binding)
            arrays = binding.copy_outputs_to_cpu()
        else:
            arrays = self.session.run(list(self.output_names), {self.input_name: batch})
        return {name: np.asarray(array) for name, array in zip(self.output_names, arrays,
                                                                  strict=True)}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(providers=self.session.get_providers(), io_binding=self.io_binding)
        return info

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
