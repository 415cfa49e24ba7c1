"""ONNX float16: half-precision weights and compute, float32 input and output.

The model is converted with torch (`module.half()`) and wrapped so the graph casts its float32
input to float16 and its logits back to float32. Keeping float32 I/O means the artifact takes
exactly what the spec (dtype float32) describes, so the spec, its fingerprint and `predict` are
the same as for fp32. GPUs (onnxruntime CUDA, TensorRT) compute in float16; onnxruntime's CPU
provider runs it too, by inserting casts around ops that have no float16 kernel (slowly: this
format is for GPUs). The manifest states `io` dtypes and `compute_dtype: float16`.
"""

from __future__ import annotations

from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.onnx_fp32 import finalize_onnx, prepare_module, trace_to_onnx


def export(ctx: ExportContext) -> ExportResult:
    module, example, details = prepare_module(ctx, half=True)
    model = trace_to_onnx(module, example, ctx.options.opset, details["outputs"])
    return finalize_onnx(ctx, model, details, compute_dtype="float16")
