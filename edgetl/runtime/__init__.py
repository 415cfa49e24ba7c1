"""Runners: one per backend behind `Runner` (see base.py), opened by name with `open_runner`.

The backends are the rows of `backends.BACKEND_TABLE`; a backend is imported only when opened,
so importing this package pulls in neither torch nor onnxruntime (`predict` relies on that), nor
numpy until `Runner` is asked for (the CLI's help reads the backend names from here).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from edgetl.runtime.backends import ARTIFACT_BACKENDS, BACKENDS, artifact_backend, check_runs

if TYPE_CHECKING:
    from edgetl.runtime.base import Runner

__all__ = ["ARTIFACT_BACKENDS", "BACKENDS", "Runner", "open_runner"]


def __getattr__(name: str) -> Any:
    if name == "Runner":  # numpy, imported when a runner is really wanted
        from edgetl.runtime.base import Runner

        return Runner
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def open_runner(
    artifact: str | Path,
    backend: str = "ort-cpu",
    *,
    threads: int | None = None,
    io_binding: bool = False,
) -> Runner:
    """A runner for an exported artifact on `backend` (a row of `BACKEND_TABLE` that runs
    artifacts: ort-cpu, ort-cuda or tensorrt).

    Each backend runs the artifact families its row names (ONNX graphs on onnxruntime, `.engine`
    files on TensorRT); asking for another pairing is a usage error rather than a confusing
    backend failure.
    """
    row = artifact_backend(backend)
    check_runs(row, artifact)
    return row.runner_class().for_artifact(Path(artifact), backend, threads=threads,
                                           io_binding=io_binding)
