"""ONNX int8: onnxruntime static quantisation, QDQ format, per-channel int8 weights.

Steps: trace the float32 graph (as onnx_fp32), run onnxruntime's `quant_pre_process` (symbolic
shape inference and graph optimisation, which the quantiser recommends), calibrate activation
ranges on N stratified training images through the deployment reference transform, quantise
(uint8 activations, int8 symmetric per-channel weights: the U8S8 pair that x86 VNNI kernels run
fastest), and count what proves the result is really quantised: QuantizeLinear and
DequantizeLinear nodes and int8/uint8 initialisers. An export that quantised nothing fails.
For embedded-preprocessing graphs the normalisation nodes stay in float32, so both variants
quantise the same tensors with the same scales.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
from pathlib import Path
from typing import Any

from edgetl.errors import ArtifactError
from edgetl.export.calibration import (
    calibration_batches,
    calibration_fingerprint,
    class_counts,
    select_calibration_samples,
    training_samples,
)
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.manifest import INPUT_NAME
from edgetl.export.onnx_fp32 import finalize_onnx, prepare_module, trace_to_onnx
from edgetl.export.preprocess_graph import EMBEDDED_PREFIX

CALIBRATION_BATCH = 8  # images per calibration run; ranges are flushed every 4 runs (memory)


def quantisation_evidence(model: Any) -> dict[str, int]:
    """Counts that show a graph is quantised (QDQ nodes, integer weights)."""
    import onnx

    ops = [n.op_type for n in model.graph.node]
    integer = (onnx.TensorProto.INT8, onnx.TensorProto.UINT8)
    return {
        "quantize_linear_nodes": ops.count("QuantizeLinear"),
        "dequantize_linear_nodes": ops.count("DequantizeLinear"),
        "int8_initializers": sum(1 for t in model.graph.initializer if t.data_type in integer),
        "float_initializers": sum(1 for t in model.graph.initializer
                                  if t.data_type == onnx.TensorProto.FLOAT),
        "nodes": len(ops),
    }


def _reader(batches: list[Any]) -> Any:
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._items = iter(batches)

        def get_next(self) -> dict[str, Any] | None:
            batch = next(self._items, None)
            return None if batch is None else {INPUT_NAME: batch}

        def rewind(self) -> None:
            self._items = iter(batches)

    return Reader()


def quantise(fp32_path: Path, out_path: Path, batches: list[Any], method: str,
             exclude: list[str]) -> None:
    """Static QDQ quantisation of `fp32_path` into `out_path` (onnxruntime.quantization)."""
    from onnxruntime.quantization import (
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    methods = {"minmax": CalibrationMethod.MinMax, "entropy": CalibrationMethod.Entropy,
               "percentile": CalibrationMethod.Percentile}
    pre = out_path.with_name("pre.onnx")
    quant_pre_process(str(fp32_path), str(pre))
    quantize_static(
        str(pre), str(out_path), _reader(batches),
        quant_format=QuantFormat.QDQ,
        per_channel=True,
        activation_type=QuantType.QUInt8,
        weight_type=QuantType.QInt8,
        calibrate_method=methods[method],
        nodes_to_exclude=exclude,
        extra_options={"CalibMaxIntermediateOutputs": 4, "CalibPercentile": 99.999},
    )


def export(ctx: ExportContext) -> ExportResult:
    import onnx

    options = ctx.options
    samples = select_calibration_samples(training_samples(ctx.split_manifest),
                                         options.calibration_images, options.seed)
    batches = list(calibration_batches(samples, ctx.spec, CALIBRATION_BATCH))
    module, example, details = prepare_module(ctx)
    fp32 = trace_to_onnx(module, example, options.opset)
    exclude = [n.name for n in fp32.graph.node if n.name.startswith(f"/{EMBEDDED_PREFIX}/")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgetl-int8-") as tmp:
        fp32_path = Path(tmp) / "fp32.onnx"
        onnx.save(fp32, str(fp32_path))
        quant_path = Path(tmp) / "int8.onnx"
        quiet = logging.getLogger().level
        logging.getLogger().setLevel(logging.ERROR)  # the quantiser logs per-tensor chatter
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # and prints progress to stdout
                quantise(fp32_path, quant_path, batches, options.calibration_method, exclude)
        except Exception as exc:  # the quantiser raises assorted untyped errors
            raise ArtifactError(f"onnxruntime static quantisation failed: {exc}") from exc
        finally:
            logging.getLogger().setLevel(quiet)
        model = onnx.load(str(quant_path))
    evidence = quantisation_evidence(model)
    if not evidence["quantize_linear_nodes"] or not evidence["int8_initializers"]:
        raise ArtifactError(
            f"quantisation produced no QDQ nodes or int8 weights ({evidence})",
            "this architecture may use ops onnxruntime cannot quantise; use onnx or onnx-fp16",
        )
    details.update(
        quantization={
            "tool": "onnxruntime.quantization.quantize_static",
            "format": "QDQ",
            "per_channel": True,
            "activation_type": "uint8 (asymmetric)",
            "weight_type": "int8 (symmetric)",
            "calibration_method": options.calibration_method,
            "calibration_images": len(samples),
            "calibration_images_requested": options.calibration_images,
            "calibration_classes": class_counts(samples),
            "calibration_fingerprint": calibration_fingerprint(samples, ctx.spec),
            "calibration_transform": "edgetl.data.reference (deployment reference path)",
            "excluded_nodes": exclude,
            "seconds": round(time.perf_counter() - started, 2),
            **evidence,
        }
    )
    return finalize_onnx(ctx, model, details, compute_dtype="int8")
