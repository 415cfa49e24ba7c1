"""TensorRT engines (`tensorrt-fp16`, `tensorrt-int8`) built from the ONNX graph.

Written against the real TensorRT 10 Python API (builder -> explicit-batch network parsed by
`OnnxParser` -> builder config with an optimisation profile for batch 1..max_batch -> serialized
engine), but it cannot run where TensorRT is not installed: there `require_tensorrt` raises
`BackendUnavailableError` (exit 3) before anything is loaded. int8 uses implicit calibration with
an `IInt8EntropyCalibrator2` fed by the same stratified training images as onnx-int8 (reference
transform), with fp16 enabled as the fallback for layers int8 does not cover; the calibration
cache is written beside the engine, named by the calibration set's fingerprint so it is never
reused for other images or another spec. (TensorRT 10 deprecates implicit calibration in favour
of explicit Q/DQ graphs; it still works there.) Device memory comes from torch.

The engine is the plain serialized plan; spec, labels and origin live in the manifest beside it
(`<engine>.manifest.json`), because engines have no metadata slot. Engines only run on the GPU
model and TensorRT version that built them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.artifact.manifest import INPUT_NAME, write_manifest
from edgetl.errors import ArtifactError, BackendUnavailableError
from edgetl.export.calibration import (
    calibration_batches,
    calibration_fingerprint,
    class_counts,
    select_calibration_samples,
    training_samples,
)
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.onnx_fp32 import describe_io, prepare_module, trace_to_onnx
from edgetl.io import atomic_write_bytes
from edgetl.runtime.tensorrt_runner import require_tensorrt

WORKSPACE_BYTES = 2 << 30
CALIBRATION_BATCH = 8


def _require_cuda() -> Any:
    # not at the top: importing this module loads no torch
    import torch

    if not torch.cuda.is_available():
        raise BackendUnavailableError("TensorRT engines are built on a CUDA GPU and none is "
                                      "visible here", "run export on the GPU that will run it")
    return torch


def _calibrator(trt: Any, torch: Any, batches: list[Any], cache: Path) -> Any:
    """An IInt8EntropyCalibrator2 that serves `batches` from GPU memory and caches the scales."""

    class Calibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self) -> None:
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.index = 0
            self.device_batch = None

        def get_batch_size(self) -> int:
            return int(batches[0].shape[0])

        def get_batch(self, names: list[str]) -> list[int] | None:
            if self.index >= len(batches):
                return None
            self.device_batch = torch.from_numpy(batches[self.index]).to("cuda").contiguous()
            self.index += 1
            return [int(self.device_batch.data_ptr())]

        def read_calibration_cache(self) -> bytes | None:
            return cache.read_bytes() if cache.is_file() else None

        def write_calibration_cache(self, data: Any) -> None:
            atomic_write_bytes(cache, bytes(data))

    return Calibrator()


def _equal_batches(arrays: list[Any], size: int) -> list[Any]:
    """Calibrators need one fixed batch size: drop a short last batch (keep it if it is all)."""
    full = [a for a in arrays if a.shape[0] == size]
    return full or arrays[:1]


def build_engine(onnx_bytes: bytes, ctx: ExportContext, calibration: list[Any] | None,
                 cache: Path | None) -> bytes:
    """Parse the ONNX graph and build a serialized engine (fp16; int8 when calibrated)."""
    trt = require_tensorrt()
    torch = _require_cuda()
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0
    if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):  # TensorRT < 10
        flags = 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(onnx_bytes):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise ArtifactError(f"TensorRT's ONNX parser rejected the graph: {errors}")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    tensor = network.get_input(0)
    rest = tuple(tensor.shape)[1:]
    max_batch = ctx.options.max_batch
    profile = builder.create_optimization_profile()
    profile.set_shape(tensor.name, (1, *rest), (max(1, max_batch // 2), *rest), (max_batch, *rest))
    config.add_optimization_profile(profile)
    config.set_flag(trt.BuilderFlag.FP16)
    if calibration is not None:
        if not getattr(builder, "platform_has_fast_int8", True):  # deprecated in TRT 10
            raise BackendUnavailableError("this GPU has no fast int8 path for TensorRT",
                                          "use --format tensorrt-fp16")
        config.set_flag(trt.BuilderFlag.INT8)
        config.int8_calibrator = _calibrator(trt, torch, calibration, cache)
        config.set_calibration_profile(profile)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError("TensorRT could not build the engine (see its log above)",
                            "try a smaller --max-batch or another format")
    return bytes(serialized)


def export(ctx: ExportContext) -> ExportResult:
    trt = require_tensorrt()
    _require_cuda()
    module, example, details = prepare_module(ctx)
    model = trace_to_onnx(module, example, ctx.options.opset, details["outputs"])
    io_info = describe_io(model)
    calibration, cache = None, None
    if ctx.fmt.precision == "int8":
        samples = select_calibration_samples(training_samples(ctx.run),
                                             ctx.options.calibration_images, ctx.options.seed)
        size = min(CALIBRATION_BATCH, len(samples))
        calibration = _equal_batches(list(calibration_batches(samples, ctx.spec, size)), size)
        fingerprint = calibration_fingerprint(samples, ctx.spec)
        cache = ctx.target.with_name(f"{ctx.target.name}.calib-{fingerprint[:12]}.cache")
        details["calibration"] = {
            "calibrator": "IInt8EntropyCalibrator2",
            "images": sum(b.shape[0] for b in calibration),
            "classes": class_counts(samples),
            "fingerprint": fingerprint,
            "cache": cache.name,
            "transform": "edgetl.artifact.reference (deployment reference path)",
        }
    engine = build_engine(model.SerializeToString(), ctx, calibration, cache)
    atomic_write_bytes(ctx.target, engine)
    metadata = ctx.metadata(io_info["input"]["dtype"], io_info["output"]["dtype"],
                            outputs=io_info["outputs"], postprocess=details.get("postprocess"))
    details.update(tensorrt_version=trt.__version__, input=INPUT_NAME,
                   batch_profile={"min": 1, "opt": max(1, ctx.options.max_batch // 2),
                                  "max": ctx.options.max_batch},
                   flags=["FP16", "INT8"] if calibration is not None else ["FP16"])
    manifest = write_manifest(ctx.target, metadata, {**ctx.manifest_extra(details),
                                                     "opset": ctx.options.opset, "io": io_info})
    return ExportResult(path=ctx.target, manifest=manifest, format=ctx.fmt.name,
                        precision=ctx.fmt.precision, size_bytes=ctx.target.stat().st_size,
                        details=details)
