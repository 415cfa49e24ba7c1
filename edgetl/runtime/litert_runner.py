"""LiteRT: the `litert-cpu` runner (torch- and onnxruntime-free) and its availability check.

`ai_edge_litert.interpreter.Interpreter` with `num_threads` and the AUTO op resolver, named
explicitly: the built-in kernels with the default delegate, XNNPACK, LiteRT's recommended CPU
path for latency; `runtime_info()` records both. litert-torch keeps torch's NCHW layout at the
file's boundary, so the runner feeds the same arrays as ONNX Runtime. The file is fixed at
batch 1 (`max_batch`); `Runner.run` splits. The output names come from the manifest beside
the file (a `.tflite` keeps edgetl's record in that sidecar); ai_edge_litert is imported inside
functions so `edgetl --help` never loads it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.manifest import read_manifest
from edgetl.errors import ArtifactError, BackendUnavailableError, UsageError
from edgetl.runtime.base import Runner


def require_litert() -> None:
    """`litert-cpu`'s check before any work (its row's `require`): exit 3 without the runtime."""
    try:
        import ai_edge_litert.interpreter  # noqa: F401 (imported to see that it is there)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--backend litert-cpu needs the ai-edge-litert package ({exc})",
            "pip install 'edgetl[litert]' (or ai-edge-litert), or use an ONNX artifact on ort-cpu",
        ) from None


def output_names_of(path: Path, count: int) -> tuple[str, ...]:
    """The graph's output names in order, from the manifest's io record (output_N without)."""
    manifest = read_manifest(path) or {}
    names = [o.get("name") for o in (manifest.get("io") or {}).get("outputs", [])]
    if len(names) == count and all(names):
        return tuple(names)
    return tuple(f"output_{i}" for i in range(count))


class LiteRtRunner(Runner):
    """A `.tflite` file in the LiteRT interpreter on the CPU, batch 1 per invoke."""

    max_batch = 1

    def __init__(self, path: str | Path, backend: str = "litert-cpu", *,
                 threads: int | None = None) -> None:
        require_litert()
        import ai_edge_litert
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        if threads is not None and threads < 1:
            raise UsageError(f"thread count must be >= 1, got {threads}")
        self.backend = backend
        self.path = Path(path)
        self.threads = threads
        try:
            self.interpreter = Interpreter(model_path=str(self.path), num_threads=threads,
                                           experimental_op_resolver_type=OpResolverType.AUTO)
            self.interpreter.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ArtifactError(f"LiteRT cannot load {self.path}: {exc}") from exc
        # the signature names outputs output_0..N in the module's order (tensor indices do not)
        self.signature = self.interpreter.get_signature_runner()
        self.input_name, first_in = next(iter(self.signature.get_input_details().items()))
        self.input_dtype = np.dtype(first_in["dtype"])
        self.output_keys = sorted(self.signature.get_output_details(),
                                  key=lambda k: int(k.rpartition("_")[2] or 0))
        self.output_names = output_names_of(self.path, len(self.output_keys))
        self.version = getattr(ai_edge_litert, "__version__", "unknown")

    @classmethod
    def for_artifact(cls, path: Path, backend: str, *, threads: int | None = None,
                     io_binding: bool = False) -> LiteRtRunner:
        return cls(path, backend, threads=threads)

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        result = self.signature(**{self.input_name: batch})
        return {name: np.array(result[key])
                for name, key in zip(self.output_names, self.output_keys, strict=True)}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(device="CPU", delegate="XNNPACK (default)", ai_edge_litert=self.version,
                    threads=self.threads)
        return info

    def runtime_info(self) -> dict[str, Any]:
        return {"runtime": "ai-edge-litert", "version": self.version, "device": "CPU",
                "device_name": "XNNPACK", "settings": {
                    "num_threads": self.threads, "op_resolver": "AUTO (built-in kernels, "
                    "default delegate XNNPACK)"}}

    def close(self) -> None:
        self.signature = None  # type: ignore[assignment]
        self.interpreter = None  # type: ignore[assignment]
