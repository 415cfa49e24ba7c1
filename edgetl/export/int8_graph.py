"""What an int8 graph keeps float and how to show it is quantised, shared by the post-training
and quantisation-aware onnx-int8 exports and by openvino-int8."""

from __future__ import annotations

from typing import Any

from edgetl import tasks

# Modules of detection and instance graphs that int8 may quantise; the rest is post-processing.
NETWORK_SCOPES = ("backbone", "head", "mask_head", "mask_predictor")
POSTPROCESS_RULE = ("detection/instance: nodes outside " + ", ".join(NETWORK_SCOPES)
                    + " (box decoding, NMS, RoI pooling arithmetic, outputs) stay float32")
COMPUTE_OPS = ("Conv", "Gemm", "MatMul")


def postprocess_nodes(nodes: Any, task: str) -> list[str]:
    """Detection and instance graphs (the task's `int8_float_postprocess`): every node outside
    the network's modules (box decoding, NMS, RoI pooling's level and coordinate arithmetic,
    output packing), kept float32.
    Quantised, the boxes and the RoIs fed to mask pooling fell on a uint8 grid (1.5 px steps
    at 384 px) and sigmoid scores on 256 levels, damage the accuracy search cannot undo by
    keeping network layers float."""
    if not tasks.get(task).int8_float_postprocess:
        return []
    return [n.name for n in nodes if _scope(n.name) not in NETWORK_SCOPES]


def _scope(node_name: str) -> str:
    """The module a node was traced from ('/backbone/body/...' -> 'backbone'; '' for none)."""
    parts = node_name.split("/")
    return parts[1] if len(parts) > 1 else ""


def quantisation_evidence(model: Any) -> dict[str, int]:
    """Counts that show a graph is quantised (QDQ nodes, integer weights)."""
    # not at the top: onnx loads only when used (fast --help)
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
