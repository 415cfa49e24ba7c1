"""ONNX int8 from the quantisation-aware checkpoint (`RUN/qat/`, `qat_phase`).

The fake-quantised model goes through the same steps as every ONNX export (the task's
deployable module, embedded preprocessing, the TorchScript tracer, constant pads folded), with
NNCF's quantisers written as QuantizeLinear/DequantizeLinear pairs. Each weight's
QuantizeLinear is then applied once here (`fold_weight_quantisers`), so the file holds int8
weights as a post-training `onnx-int8` does, not float weights quantised at load. The task's
int8 judge scores the graph against the float32 graph on validation, as for post-training
int8, and the report counts the network's compute nodes that run int8 and those that stay
float.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

from edgetl import tasks
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.int8_graph import COMPUTE_OPS
from edgetl.recipe_sections import QuantizeConfig


def _constants(model: Any) -> dict[str, Any]:
    """Every constant tensor by name: initializers and Constant nodes' values (numpy)."""
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for attr in node.attribute:
                if attr.name == "value":
                    values[node.output[0]] = numpy_helper.to_array(attr.t)
    return values


def fold_weight_quantisers(model: Any) -> int:
    """Replace QuantizeLinear(constant weight) by the integer initializer it computes (ONNX
    rounding: half to even, then saturate); returns how many were folded. Constants nothing
    reads any more are dropped."""
    import numpy as np
    from onnx import numpy_helper

    values = _constants(model)
    graph_inputs = {i.name for i in model.graph.input}
    folded, keep = 0, []
    for node in model.graph.node:
        if (node.op_type != "QuantizeLinear" or len(node.input) < 3
                or node.input[0] in graph_inputs
                or not all(name in values for name in node.input[:3])):
            keep.append(node)
            continue
        weight = values[node.input[0]].astype(np.float32)
        scale = values[node.input[1]].astype(np.float32)
        zero = values[node.input[2]]
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        zero_f = zero.astype(np.float32)
        if scale.ndim == 1 and scale.size > 1:  # per channel along `axis`
            shape = [1] * weight.ndim
            shape[axis] = scale.size
            scale, zero_f = scale.reshape(shape), zero_f.reshape(shape)
        limits = np.iinfo(zero.dtype)
        quantised = np.clip(np.rint(weight / scale) + zero_f, limits.min, limits.max)
        model.graph.initializer.append(
            numpy_helper.from_array(quantised.astype(zero.dtype), node.output[0]))
        folded += 1
    used = {name for node in keep for name in node.input} | {o.name for o in model.graph.output}
    kept = [n for n in keep if n.op_type != "Constant" or n.output[0] in used]
    del model.graph.node[:]
    model.graph.node.extend(kept)
    for tensor in [t for t in model.graph.initializer if t.name not in used]:
        model.graph.initializer.remove(tensor)
    return folded


def dequantize_after_reshapes(model: Any) -> int:
    """Move a DequantizeLinear past the Flatten or Reshape it alone feeds (DQ -> Flatten ->
    Gemm becomes Flatten -> DQ -> Gemm), so ONNX Runtime sees the classifier's Gemm fed by a
    DequantizeLinear and runs it as QGemm; returns how many moved."""
    consumers: dict[str, list[Any]] = {}
    for node in model.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    producers = {out: node for node in model.graph.node for out in node.output}
    moved = 0
    for node in list(model.graph.node):
        if node.op_type not in ("Flatten", "Reshape"):
            continue
        dq = producers.get(node.input[0])
        if dq is None or dq.op_type != "DequantizeLinear" or len(consumers[dq.output[0]]) != 1:
            continue
        scale = _constants(model).get(dq.input[1])
        if scale is None or scale.size != 1:  # per-channel dequantisation cannot move
            continue
        result = node.output[0]
        node.input[0] = dq.input[0]
        node.output[0] = result + "_quantised"
        dq.input[0] = node.output[0]
        dq.output[0] = result
        nodes = list(model.graph.node)
        nodes.remove(dq)
        nodes.insert(nodes.index(node) + 1, dq)
        del model.graph.node[:]
        model.graph.node.extend(nodes)
        moved += 1
    return moved


def compute_node_counts(model: Any, skip: set[str]) -> dict[str, int]:
    """The network's compute nodes (Conv, Gemm, MatMul; `skip`: preprocessing and
    post-processing nodes) that run int8, their input and weight both dequantised, and those
    that stay float32."""
    producers = {out: node.op_type for node in model.graph.node for out in node.output}
    inits = {t.name for t in model.graph.initializer}
    quantised = floating = 0
    for node in model.graph.node:
        if node.op_type not in COMPUTE_OPS or node.name in skip:
            continue
        sources = [producers.get(name, "initializer" if name in inits else "input")
                   for name in node.input[:2]]
        if all(source == "DequantizeLinear" for source in sources):
            quantised += 1
        else:
            floating += 1
    return {"network_compute_nodes": quantised + floating,
            "int8_compute_nodes": quantised, "float_compute_nodes": floating}


def export_qat(ctx: ExportContext, settings: QuantizeConfig,
               post_training: dict[str, Any] | None, console: Any = None) -> ExportResult:
    """Train (or reuse) RUN/qat/, then write its int8 graph; `post_training` is what
    post-training int8 gave when it ran first (the report's 'before')."""
    import onnx

    from edgetl.export.int8_graph import postprocess_nodes, quantisation_evidence
    from edgetl.export.int8_search import META_INT8_FLOAT
    from edgetl.export.onnx_fp32 import finalize_onnx, prepare_module, trace_to_onnx
    from edgetl.export.preprocess_graph import (
        EMBEDDED_PREFIX,
        example_input,
        wrap_with_preprocessing,
    )
    from edgetl.export.qat_model import set_qdq_export
    from edgetl.export.qat_phase import ensure_qat_checkpoint, load_qat_checkpoint
    from edgetl.models.deployable import deployable

    options = ctx.options
    started = time.perf_counter()
    checkpoint = ensure_qat_checkpoint(ctx, settings, console)
    model = load_qat_checkpoint(checkpoint.folder)
    quantisers = set_qdq_export(model)
    module, names, postprocess = deployable(model, ctx.info.task_record.task, options.raw)
    if options.embed_preprocessing:
        module = wrap_with_preprocessing(module, ctx.info.spec)
    graph = trace_to_onnx(module, example_input(ctx.info.spec,
                                                embedded=options.embed_preprocessing),
                          options.opset, names)
    folded = fold_weight_quantisers(graph)
    moved = dequantize_after_reshapes(graph)
    embedded = {n.name for n in graph.graph.node if n.name.startswith(f"/{EMBEDDED_PREFIX}/")}
    post = set(postprocess_nodes(graph.graph.node, ctx.info.task_record.task))
    counts = compute_node_counts(graph, embedded | post)
    judge_cls = tasks.get(ctx.info.task_record.task).load("int8_judge")
    with tempfile.TemporaryDirectory(prefix="edgetl-qat-") as tmp:
        fp32_module, fp32_example, _ = prepare_module(ctx)
        fp32_path, qat_path = Path(tmp) / "fp32.onnx", Path(tmp) / "qat.onnx"
        onnx.save(trace_to_onnx(fp32_module, fp32_example, options.opset, names),
                  str(fp32_path))
        onnx.save(graph, str(qat_path))
        judge = judge_cls(ctx, fp32_path)
        row = {**judge.row(qat_path), "size_bytes": qat_path.stat().st_size}
        met = judge.met(row)
    float_record = {"strategy": "qat", "met": met, "nodes": []}
    details = {"postprocess": postprocess}
    details.update(
        quantization={
            "tool": "nncf quantisation-aware training, exported as ONNX QDQ",
            "format": "QDQ",
            "per_channel": True,
            "activation_type": "uint8 (asymmetric)",
            "weight_type": "int8 (symmetric)",
            "calibration_method": "minmax (NNCF), then trained",
            "calibration_images": checkpoint.record.get("calibration_images"),
            "calibration_transform": "edgetl.artifact.reference (deployment reference path)",
            "quantisers": quantisers,
            "weight_quantisers_folded": folded,
            "dequantize_moved_past_reshape": moved,
            **counts,
            "excluded_nodes": [],
            "float_nodes": float_record,
            "post_training": post_training,
            "quantisation_aware": {**checkpoint.record, "reused": checkpoint.reused,
                    "checkpoint": str(checkpoint.folder)},
            "accuracy_search": {**judge.describe(), "strategy": "qat", "met": met,
                                "rounds": [{"strategy": "qat", "float_compute_nodes": 0,
                                            **row}]},
            "seconds": round(time.perf_counter() - started, 2),
            **quantisation_evidence(graph),
        },
        extra_metadata={META_INT8_FLOAT: json.dumps(float_record, sort_keys=True,
                                                    separators=(",", ":"))},
    )
    return finalize_onnx(ctx, graph, details, compute_dtype="int8")
