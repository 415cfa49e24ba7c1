"""Every backend, declared once: the table `open_runner`, bench, predict, verify and select read.

A row names the backend, the `Runner` class that opens an artifact on it ("module:Class",
imported only when opened, so this table imports no backend), the artifact families it runs
(`edgetl.artifact.formats.FAMILIES`; none: it runs the run's PyTorch checkpoint), the check that
this machine has it ("module:function", exit 3 without), the Python package it needs and
whether it needs torch. Every list of backend names (CLI help, bench, select, e2e) is derived
from it.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.artifact.formats import FORMATS, family_of
from edgetl.errors import UsageError


@dataclass(frozen=True)
class Backend:
    """One backend: where its runner is, what it runs and what this machine needs for it."""

    name: str
    runner: str | None  # "module:Class" of its Runner; None: bench times it with its own session
    families: tuple[str, ...]  # artifact families it runs; (): the run's PyTorch checkpoint
    package: str  # the Python package it needs
    needs_torch: bool
    description: str
    require: str | None = None  # "module:function" raising BackendUnavailableError (exit 3)

    @property
    def runs_checkpoint(self) -> bool:
        return not self.families

    def runner_class(self) -> Any:
        """The runner class, imported now."""
        assert self.runner is not None, f"{self.name} has no runner"
        return _load(self.runner)

    def require_available(self) -> None:
        """Exit 3 now when this machine cannot run the backend (before any work)."""
        if self.require is not None:
            _load(self.require)()

    def formats(self) -> tuple[str, ...]:
        """The export formats whose artifacts it runs, in the formats table's order."""
        return tuple(f.name for f in FORMATS.values() if f.family in self.families)


BACKEND_TABLE: dict[str, Backend] = {
    b.name: b
    for b in (
        Backend(name="ort-cpu", runner="edgetl.runtime.onnxrt:OrtRunner", families=("onnx",),
                package="onnxruntime", needs_torch=False,
                description="ONNX Runtime on the CPU (what predict uses by default)"),
        Backend(name="ort-cuda", runner="edgetl.runtime.onnxrt:OrtRunner", families=("onnx",),
                package="onnxruntime-gpu", needs_torch=False,
                description="ONNX Runtime's CUDA provider, never silently on the CPU",
                require="edgetl.runtime.onnxrt:require_cuda_provider"),
        Backend(name="ort-trt", runner=None, families=("onnx",),
                package="onnxruntime-gpu", needs_torch=False,
                description="ONNX Runtime's TensorRT provider (bench only)",
                require="edgetl.runtime.onnxrt:require_tensorrt_provider"),
        Backend(name="tensorrt", runner="edgetl.runtime.tensorrt_runner:TensorRTRunner",
                families=("tensorrt",), package="tensorrt", needs_torch=True,
                description="a TensorRT engine (device memory through torch)",
                require="edgetl.runtime.tensorrt_runner:require_tensorrt"),
        Backend(name="torch", runner="edgetl.runtime.torch_runner:TorchRunner", families=(),
                package="torch", needs_torch=True,
                description="the run's PyTorch checkpoint: verify's and bench's reference"),
        Backend(name="ov-cpu", runner="edgetl.runtime.openvino_runner:OvRunner",
                families=("openvino",), package="openvino", needs_torch=False,
                description="OpenVINO on the CPU (latency hint, float32 inference precision)",
                require="edgetl.runtime.openvino_runner:require_openvino"),
        Backend(name="litert-cpu", runner="edgetl.runtime.litert_runner:LiteRtRunner",
                families=("litert",), package="ai-edge-litert", needs_torch=False,
                description="the LiteRT interpreter on the CPU (XNNPACK)",
                require="edgetl.runtime.litert_runner:require_litert"),
    )
}

ALL_BACKENDS: tuple[str, ...] = tuple(BACKEND_TABLE)
# backends with a runner (predict's path runs on them: bench e2e)
BACKENDS: tuple[str, ...] = tuple(b.name for b in BACKEND_TABLE.values() if b.runner)
# backends with a runner for exported artifacts (open_runner, predict, verify, select)
ARTIFACT_BACKENDS: tuple[str, ...] = tuple(
    b.name for b in BACKEND_TABLE.values() if b.runner and not b.runs_checkpoint)


def _load(target: str) -> Any:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def or_list(names: Sequence[str]) -> str:
    """('a', 'b', 'c') -> 'a, b or c' (CLI help and hints)."""
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def artifact_backend(name: str) -> Backend:
    """The row of an artifact backend, or a usage error listing them."""
    row = BACKEND_TABLE.get(name)
    if row is None or name not in ARTIFACT_BACKENDS:
        raise UsageError(f"unknown backend {name!r}", f"use one of {', '.join(ARTIFACT_BACKENDS)}")
    return row


def default_backend(path: str | Path) -> str:
    """The backend a file runs on when none is asked for: ort-cpu, or for a family ort-cpu
    does not run, the first backend in the table that runs it (ov-cpu for an OpenVINO IR)."""
    family = family_of(path)
    if family is None or family.name in BACKEND_TABLE["ort-cpu"].families:
        return "ort-cpu"
    return next((b.name for b in BACKEND_TABLE.values()
                 if b.runner and family.name in b.families), "ort-cpu")


def check_runs(row: Backend, path: str | Path) -> None:
    """A usage error when `path` is an artifact of a family `row` does not run (an engine on
    ort-cpu, an ONNX graph on tensorrt); files of no known family are left to the runner."""
    family = family_of(path)
    if family is None or family.name in row.families:
        return
    runners = [b.name for b in BACKEND_TABLE.values() if b.runner and family.name in b.families]
    hint = f"use --backend {or_list(runners)}" if runners else "use another backend"
    if row.formats():
        hint += f", or export it with --format {or_list(row.formats())} for --backend {row.name}"
    raise UsageError(f"{Path(path).name} is {family.noun}", hint)
