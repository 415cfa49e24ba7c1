"""OpenVINO IR int8 (`openvino-int8`): NNCF post-training quantisation of the converted model.

The fp32 IR is built as `openvino_ir` builds it; `nncf.quantize` then calibrates on the same
stratified training images as onnx-int8 (`calibration`, through the deployment reference
transform) with the embedded preprocessing nodes and, where the task says so
(`int8_float_postprocess`), the post-processing outside the network's modules in NNCF's
`ignored_scope`. The task's `int8_judge` scores the quantised IR against the fp32 ONNX graph on
the validation split (never test); a miss is refused (no artifact is written; onnx-int8's
search for float layers is not repeated here). The manifest records the judge's figures, the
FakeQuantize count, the quantised/float compute nodes, calibration size, preset and nncf's
version.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from edgetl import tasks
from edgetl.errors import ArtifactError
from edgetl.export.calibration import (
    CALIBRATION_BATCH,
    calibration_batches,
    calibration_fingerprint,
    class_counts,
    select_calibration_samples,
    training_samples,
)
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.int8_judges import UnjudgedJudge
from edgetl.export.onnx_int8 import NETWORK_SCOPES, POSTPROCESS_RULE
from edgetl.export.openvino_ir import export as export_ir
from edgetl.export.preprocess_graph import EMBEDDED_PREFIX

PRESET = "PERFORMANCE"  # symmetric int8 activations and weights (NNCF's CPU default)
COMPUTE_TYPES = ("Convolution", "GroupConvolution", "MatMul")


def ignored_patterns(task: str) -> list[str]:
    """Regexes of node names NNCF must leave float: embedded preprocessing, and for tasks with
    `int8_float_postprocess` every node outside NETWORK_SCOPES (as onnx-int8 keeps them)."""
    patterns = [f"^/{EMBEDDED_PREFIX}/.*"]
    if tasks.get(task).int8_float_postprocess:
        patterns.append("^(?!/(" + "|".join(NETWORK_SCOPES) + ")/).*")
    return patterns


def quantisation_counts(model: Any) -> dict[str, int]:
    """FakeQuantize nodes, and compute nodes with/without a FakeQuantize on their activation
    input: what shows the IR is really quantised."""
    ops = list(model.get_ordered_ops())
    quantised = 0
    compute = [op for op in ops if op.get_type_name() in COMPUTE_TYPES]
    for op in compute:
        source = op.input_value(0).get_node()
        if source.get_type_name() == "FakeQuantize":
            quantised += 1
    return {"fake_quantize_nodes": sum(op.get_type_name() == "FakeQuantize" for op in ops),
            "quantised_compute_nodes": quantised,
            "float_compute_nodes": len(compute) - quantised, "nodes": len(ops)}


def _quantise(model: Any, fp32_onnx: Path, ctx: ExportContext) -> tuple[Any, dict[str, Any]]:
    """nncf.quantize on the calibration images, then the task's judge on the result."""
    import nncf
    import openvino as ov

    options = ctx.options
    task = ctx.info.task_record.task
    samples = select_calibration_samples(training_samples(ctx.run),
                                         options.calibration_images, options.seed)
    batches = list(calibration_batches(samples, ctx.spec, CALIBRATION_BATCH))
    patterns = ignored_patterns(task)
    started = time.perf_counter()
    quantised = nncf.quantize(
        model, nncf.Dataset(batches), preset=getattr(nncf.QuantizationPreset, PRESET),
        subset_size=len(batches), ignored_scope=nncf.IgnoredScope(patterns=patterns,
                                                                    validate=False))
    counts = quantisation_counts(quantised)
    if not counts["fake_quantize_nodes"]:
        raise ArtifactError(f"NNCF quantised nothing ({counts})",
                            "this architecture may use ops NNCF cannot quantise; "
                            "use openvino or openvino-fp16")
    unjudged = options.int8_target_agreement == 0.0
    judge = (UnjudgedJudge if unjudged else tasks.get(task).load("int8_judge"))(ctx, fp32_onnx)
    with tempfile.TemporaryDirectory(dir=fp32_onnx.parent, prefix="judge-") as tmp:
        candidate = Path(tmp) / "candidate.xml"
        ov.save_model(quantised, str(candidate), compress_to_fp16=False)
        row = judge.row(candidate)
    if not judge.met(row):
        raise ArtifactError(
            f"openvino-int8 misses the int8 accuracy target: {row['text']} "
            f"(target {judge.describe()})",
            "use onnx-int8 (its search keeps sensitive layers float), or openvino / "
            "openvino-fp16")
    record = {
        "tool": f"nncf.quantize {nncf.__version__}",
        "nncf": nncf.__version__,
        "preset": PRESET,
        "calibration_method": "nncf min-max (default range estimators)",
        "calibration_images": len(samples),
        "calibration_images_requested": options.calibration_images,
        "calibration_classes": class_counts(samples),
        "calibration_fingerprint": calibration_fingerprint(samples, ctx.spec),
        "calibration_transform": "edgetl.artifact.reference (deployment reference path)",
        "ignored_scope": {"patterns": patterns,
                          "postprocess_float": {"rule": POSTPROCESS_RULE}
                          if len(patterns) > 1 else None},
        "accuracy_search": {**judge.describe(), "strategy": "all-int8", "rounds": [row],
                            "met": True},
        "seconds": round(time.perf_counter() - started, 2),
        **counts,
    }
    return quantised, {"quantization": record}


def export(ctx: ExportContext) -> ExportResult:
    """The IR of `openvino_ir`, quantised by NNCF and judged before anything is written."""
    return export_ir(ctx, transform=_quantise, weights_dtype="int8")
