"""OpenVINO: the `ov-cpu` runner (torch- and onnxruntime-free) and its availability check.

The IR is compiled for the CPU as OpenVINO recommends for latency: PERFORMANCE_HINT=LATENCY
(one stream), INFERENCE_NUM_THREADS when threads are asked for, and
INFERENCE_PRECISION_HINT=f32 for every artifact (float32, float16-weight and int8 IRs alike:
on CPUs with AMX or avx512_bf16 the CPU plugin's default computes the float layers in bf16,
which moves the logits). The hints asked for and what the plugin settled on are recorded in
`describe()` and `runtime_info()` (bench's rows and environment block carry them).
openvino is imported inside functions: `edgetl --help` and ONNX-only paths never load it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.openvino_ir import weights_path
from edgetl.errors import ArtifactError, BackendUnavailableError, UsageError
from edgetl.runtime.base import Runner

DEVICE = "CPU"
_DTYPES = {"f32": np.float32, "f16": np.float16, "u8": np.uint8, "i8": np.int8}


def require_openvino() -> None:
    """`ov-cpu`'s check before any work (its row's `require`): exit 3 without openvino."""
    try:
        import openvino  # noqa: F401 (imported to see that it is there)
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--backend ov-cpu needs the openvino package ({exc})",
            "pip install 'edgetl[openvino]' (or openvino), or use an ONNX artifact on ort-cpu",
        ) from None


def latency_config(threads: int | None) -> dict[str, str]:
    """The CPU plugin's properties for batch-1 latency at float32 (strings, as recorded)."""
    if threads is not None and threads < 1:
        raise UsageError(f"thread count must be >= 1, got {threads}")
    config = {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": "f32"}
    if threads is not None:
        config["INFERENCE_NUM_THREADS"] = str(threads)
    return config


def _plain(value: Any) -> str:
    """A property as the hints spell it: an element type as 'f32', an enum by its name."""
    if hasattr(value, "get_type_name"):
        return str(value.get_type_name())
    return str(getattr(value, "name", value))


class OvRunner(Runner):
    """An OpenVINO IR compiled for the CPU, one infer request reused for every batch."""

    def __init__(self, path: str | Path, backend: str = "ov-cpu", *,
                 threads: int | None = None) -> None:
        require_openvino()
        import openvino as ov

        self.backend = backend
        self.path = Path(path)
        self.config = latency_config(threads)
        if not weights_path(self.path).is_file():
            raise ArtifactError(f"{self.path}: its weights {weights_path(self.path).name} are "
                                "not beside it", "keep the .xml and .bin together")
        core = ov.Core()
        try:
            model = core.read_model(str(self.path))
            self.compiled = core.compile_model(model, DEVICE, self.config)
        except RuntimeError as exc:  # openvino's errors are RuntimeErrors with its own text
            raise ArtifactError(f"openvino cannot load {self.path}: {exc}") from exc
        first_in = self.compiled.inputs[0]
        kind = first_in.get_element_type().get_type_name()
        if kind not in _DTYPES:
            raise ArtifactError(f"{self.path}: unsupported input type {kind}")
        self.input_name = first_in.get_any_name()
        self.input_dtype = np.dtype(_DTYPES[kind])
        self.output_names = tuple(o.get_any_name() for o in self.compiled.outputs)
        self.version = ov.__version__
        self.device_name = str(core.get_property(DEVICE, "FULL_DEVICE_NAME"))
        self.threads = int(self.compiled.get_property("INFERENCE_NUM_THREADS")) or threads
        self.request = self.compiled.create_infer_request()

    @classmethod
    def for_artifact(cls, path: Path, backend: str, *, threads: int | None = None,
                     io_binding: bool = False) -> OvRunner:
        return cls(path, backend, threads=threads)

    def _run(self, batch: np.ndarray) -> dict[str, np.ndarray]:
        result = self.request.infer({0: batch}, share_outputs=False)
        return {name: np.asarray(result[self.compiled.output(name)])
                for name in self.output_names}

    def compiled_properties(self) -> dict[str, str]:
        """What the plugin settled on (the hints as it applied them)."""
        names = ("PERFORMANCE_HINT", "INFERENCE_PRECISION_HINT", "INFERENCE_NUM_THREADS",
                 "NUM_STREAMS")
        return {n: _plain(self.compiled.get_property(n)) for n in names}

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        info.update(device=DEVICE, openvino=self.version, hints=self.config,
                    compiled=self.compiled_properties())
        return info

    def runtime_info(self) -> dict[str, Any]:
        return {"runtime": "openvino", "version": self.version, "device": DEVICE,
                "device_name": self.device_name, "settings": dict(self.config),
                "compiled": self.compiled_properties()}

    def close(self) -> None:
        self.request = None  # type: ignore[assignment]
        self.compiled = None  # type: ignore[assignment]
