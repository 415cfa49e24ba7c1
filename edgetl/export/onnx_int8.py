"""ONNX int8: onnxruntime static quantisation, QDQ format, per-channel int8 weights.

Steps: trace the float32 graph (as onnx_fp32), run onnxruntime's `quant_pre_process` (symbolic
shape inference and graph optimisation, which the quantiser recommends), calibrate activation
ranges on N stratified training images through the deployment reference transform, quantise
(uint8 activations, int8 symmetric per-channel weights: the U8S8 pair that x86 VNNI kernels run
fastest), and count what proves the result is really quantised: QuantizeLinear and
DequantizeLinear nodes and int8/uint8 initialisers. An export that quantised nothing fails.
For embedded-preprocessing graphs the normalisation nodes stay in float32, so both variants
quantise the same tensors with the same scales.

Accuracy-aware: after quantising, the int8 graph's top-1 agreement with the float32 graph is
measured on the run's validation split (never its test split); with an operating point, the
agreement of its decisions. Until the agreement's one-sided 95% lower confidence bound clears
verify's budget (or the measured agreement an explicit target), some compute nodes stay
float32 (`int8_search`): for classifiers first the ones measured to matter
(`int8_sensitivity`), wherever they are, judged on a 99% bound since they were chosen on the
same images; then, if that cannot meet the target, the earliest ones, a few more each round.
Measured on an ELPV quickstart run (binary, many images near the decision boundary):
everything quantised agreed 97.3% with float32 on the test split; the stem and the first
depthwise convolution in float32 gave 98.5%, the first four convolutions 99.1%. An older run
needed the first 24 convolutions float, and ran 1.40x float32's speed at batch 1 against
1.86-2.06x fully quantised, hence the measurement. (Keeping only their activations in float,
with int8 weights, did not help there: 95% at best.) The calibration runs once per export
and method (`int8_quantise`); `--calibration-method auto` first judges every method's fully
quantised graph and searches with the best (`int8_method`).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from edgetl.decision import logits_decider
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
from edgetl.export.int8_graph import (
    COMPUTE_OPS,
    POSTPROCESS_RULE,
    postprocess_nodes,
    quantisation_evidence,
)
from edgetl.export.int8_method import choose_method
from edgetl.export.int8_quantise import Quantiser, quiet
from edgetl.export.int8_search import (
    SearchResult,
    float_nodes_metadata,
    make_judge,
    ranking_inputs,
    ranks_nodes,
    search,
    search_record,
)
from edgetl.export.onnx_fp32 import finalize_onnx, prepare_module, trace_to_onnx
from edgetl.export.preprocess_graph import EMBEDDED_PREFIX


def _pre_process(src: Path, dst: Path) -> None:
    # not at the top: onnxruntime loads only when used (fast --help)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    quant_pre_process(str(src), str(dst))


def _sensitivity(ctx: ExportContext, quantiser: Quantiser, fp32_path: Path, graph: Any,
                 compute: list[Any], embedded: list[str], workdir: Path) -> Any:
    """What chooses float nodes by measurement, for classifiers with validation images (None
    otherwise: the search goes straight to the prefix rounds)."""
    from edgetl.export.int8_sensitivity import (
        Sensitivity,
        compute_neighbours,
        file_logits,
        run_logits,
    )

    if not ranks_nodes(ctx) or not quantiser.reuses_calibration:
        return None

    def build() -> Any:
        batches = ranking_inputs(ctx, len(compute))
        return Sensitivity([(n.name, n.op_type) for n in compute],
                           compute_neighbours(graph, [n.name for n in compute]),
                           file_logits(lambda names, out: quantiser(out, embedded + names),
                                       batches, workdir),
                           run_logits(fp32_path, batches), logits_decider(ctx.decision))

    return build


def export(ctx: ExportContext) -> ExportResult:
    # not at the top: onnx loads only when used (fast --help)
    import onnx

    from edgetl.export.onnx_int8_qat import compute_node_counts, export_qat
    from edgetl.export.qat_phase import recipe_quantize
    from edgetl.recipe_sections import QuantizeConfig

    options = ctx.options
    section = recipe_quantize(ctx.run_folder)
    if options.qat:
        return export_qat(ctx, section or QuantizeConfig(), None)
    samples = select_calibration_samples(training_samples(ctx.run),
                                         options.calibration_images, options.seed)
    batches = list(calibration_batches(samples, ctx.spec, CALIBRATION_BATCH))
    module, example, details = prepare_module(ctx)
    fp32 = trace_to_onnx(module, example, options.opset, details["outputs"])
    embedded = [n.name for n in fp32.graph.node if n.name.startswith(f"/{EMBEDDED_PREFIX}/")]
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="edgetl-int8-") as tmp:
        work = Path(tmp)
        fp32_path = work / "fp32.onnx"
        onnx.save(fp32, str(fp32_path))
        pre_path = work / "pre.onnx"
        with quiet():
            _pre_process(fp32_path, pre_path)
        graph = onnx.load(str(pre_path)).graph
        post = postprocess_nodes(graph.node, ctx.info.task_record.task)
        always_float = embedded + post
        skipped, post_set = set(always_float), set(post)
        compute = [n for n in graph.node if n.op_type in COMPUTE_OPS and n.name not in skipped]
        judge = make_judge(ctx, fp32_path)
        choice = choose_method(
            options.calibration_method,
            lambda method: Quantiser(pre_path, batches, method, work)(
                work / f"calibration-{method}.onnx", always_float),
            judge)
        quantiser = Quantiser(pre_path, batches, choice.method, work)
        found: SearchResult = search(
            lambda out, exclude: quantiser(out, exclude), work, [n.name for n in graph.node],
            [n.name for n in compute], always_float, judge,
            _sensitivity(ctx, quantiser, fp32_path, graph, compute, embedded, work))
        model = onnx.load(str(found.path))
    evidence = quantisation_evidence(model)
    counts = compute_node_counts(model, set(always_float))
    if (options.qat is None and section is not None and section.qat == "auto"
            and counts["float_compute_nodes"] > section.max_float_nodes):
        return export_qat(ctx, section, {
            "float_compute_nodes": counts["float_compute_nodes"],
            "allowed_float_nodes": section.max_float_nodes, "met": found.met,
            "strategy": found.strategy,
            "rounds": [{k: v for k, v in r.items() if k != "float_nodes"} for r in found.rounds],
        })
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
            **choice.record(),
            "calibration_images": len(samples),
            "calibration_images_requested": options.calibration_images,
            "calibration_classes": class_counts(samples),
            "calibration_fingerprint": calibration_fingerprint(samples, ctx.spec),
            "calibration_transform": "edgetl.artifact.reference (deployment reference path)",
            "calibration_reused": quantiser.reuses_calibration,
            "excluded_nodes": [n for n in found.exclude if n not in post_set],
            "postprocess_float": {"nodes": len(post), "rule": POSTPROCESS_RULE},
            **search_record(found, judge),
            "seconds": round(time.perf_counter() - started, 2),
            **counts,
            **evidence,
        },
        extra_metadata={**float_nodes_metadata(found), **choice.metadata()},
    )
    return finalize_onnx(ctx, model, details, compute_dtype="int8")
