"""Runners: one per backend behind `Runner` (see base.py), opened by name with `open_runner`.

Backends are imported only when opened, so importing this package pulls in neither torch nor
onnxruntime; `predict` relies on that.
"""

from __future__ import annotations

from pathlib import Path

from edgetl.errors import UsageError
from edgetl.runtime.base import BACKENDS, Runner

ARTIFACT_BACKENDS: tuple[str, ...] = ("ort-cpu", "ort-cuda", "tensorrt")

__all__ = ["ARTIFACT_BACKENDS", "BACKENDS", "Runner", "open_runner"]


def open_runner(
    artifact: str | Path,
    backend: str = "ort-cpu",
    *,
    threads: int | None = None,
    io_binding: bool = False,
) -> Runner:
    """A runner for an exported artifact on `backend` (ort-cpu, ort-cuda or tensorrt).

    ONNX files run on onnxruntime, `.engine` files on TensorRT; asking for the other pairing is
    a usage error rather than a confusing backend failure.
    """
    path = Path(artifact)
    is_engine = path.suffix == ".engine"
    if backend in ("ort-cpu", "ort-cuda"):
        if is_engine:
            raise UsageError(f"{path.name} is a TensorRT engine", "use --backend tensorrt")
        from edgetl.runtime.onnxrt import OrtRunner

        return OrtRunner(path, backend, intra_op_num_threads=threads, io_binding=io_binding)
    if backend == "tensorrt":
        if not is_engine:
            raise UsageError(
                f"{path.name} is not a TensorRT engine",
                "export one with --format tensorrt-fp16 or tensorrt-int8, or use --backend ort-cpu",
            )
        from edgetl.runtime.tensorrt_runner import TensorRTRunner

        return TensorRTRunner(path)
    raise UsageError(f"unknown backend {backend!r}", f"use one of {', '.join(ARTIFACT_BACKENDS)}")
