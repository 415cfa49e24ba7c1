"""ONNX float32 export, and the steps the other ONNX formats reuse.

Exporter: `torch.onnx.export(..., dynamo=False)` (the TorchScript tracer). Measured here with
torch 2.14 on tf_efficientnet_lite0: about 1.5 s per export against 12-35 s for the dynamo
exporter, and with the static-padding pass (see static_padding.py) the graph is the same 94-ish
nodes the dynamo exporter makes. Dynamic batch, input `input`, output `logits`, opset >= 17,
`onnx.checker` (full check) before anything is written; files are written atomically.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

from edgetl import tasks
from edgetl.artifact.manifest import INPUT_NAME, OUTPUT_NAME, set_onnx_metadata, write_manifest
from edgetl.errors import ArtifactError
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.preprocess_graph import example_input, wrap_with_preprocessing
from edgetl.export.static_padding import fold_pads_into_convs, make_same_padding_static
from edgetl.io import atomic_write_bytes

EXPORTER = "torch.onnx.export, TorchScript tracer (dynamo=False)"

_ELEM_NAMES = {1: "float32", 2: "uint8", 3: "int8", 10: "float16", 7: "int64"}


def prepare_module(ctx: ExportContext, half: bool = False) -> tuple[Any, Any, dict[str, Any]]:
    """The torch module to trace (the task's deployable outputs), an example input, and what
    was changed on the way. `details['outputs']` names the graph's outputs in order."""
    # not at the top: importing this module loads no torch
    import torch
    from torch import nn

    from edgetl.models.deployable import deployable

    model = ctx.load_model()
    spec = ctx.info.spec
    static = make_same_padding_static(model, example_input(spec))
    module, names, postprocess = deployable(model, ctx.info.task_record.task, ctx.options.raw)
    if half:
        inner = module.half()

        class HalfCompute(nn.Module):
            """float32 in, float16 weights and compute, floating outputs back in float32."""

            def __init__(self) -> None:
                super().__init__()
                self.model = inner

            def forward(self, x: torch.Tensor) -> Any:
                out = self.model(x.to(torch.float16))
                if isinstance(out, torch.Tensor):
                    return out.to(torch.float32)
                return {k: v.to(torch.float32) if v.is_floating_point() else v
                        for k, v in out.items()}

        module = HalfCompute().eval()
    embedded = ctx.options.embed_preprocessing
    if embedded:
        module = wrap_with_preprocessing(module, spec)
    return module, example_input(spec, embedded=embedded), {
        "static_same_padding_layers": static, "outputs": list(names),
        "postprocess": postprocess}


def trace_to_onnx(module: Any, example: Any, opset: int,
                  output_names: tuple[str, ...] | list[str] = (OUTPUT_NAME,)) -> Any:
    """Trace `module` to an `onnx.ModelProto` with a dynamic batch and folded constant pads."""
    # not at the top: onnx loads only when used (fast --help)
    import onnx
    import torch

    names = list(output_names)
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(
            module, (example,), buffer, dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=names,
            dynamic_axes={INPUT_NAME: {0: "batch"}, **{n: {0: "batch"} for n in names}},
            do_constant_folding=True,
        )
    model = onnx.load_from_string(buffer.getvalue())
    fold_pads_into_convs(model)
    return model


def describe_io(model: Any) -> dict[str, Any]:
    """Names, dtypes and shapes ('batch' for the dynamic axis) of the input and every output
    (`output`: the first one, kept for reports that show one)."""

    def one(value: Any) -> dict[str, Any]:
        tensor = value.type.tensor_type
        dims = [d.dim_param or d.dim_value for d in tensor.shape.dim]
        return {"name": value.name, "dtype": _ELEM_NAMES.get(tensor.elem_type, "other"),
                "shape": dims}

    outputs = [one(o) for o in model.graph.output]
    return {"input": one(model.graph.input[0]), "output": outputs[0], "outputs": outputs}


def opset_of(model: Any) -> int:
    return max(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def finalize_onnx(ctx: ExportContext, model: Any, details: dict[str, Any],
                  compute_dtype: str) -> ExportResult:
    """Embed metadata (with `details["extra_metadata"]`: a format's own string keys), check,
    prove onnxruntime loads it, write atomically, write the manifest."""
    # not at the top: onnx loads only when used (fast --help)
    import onnx

    io_info = describe_io(model)
    metadata = ctx.metadata(io_info["input"]["dtype"], io_info["output"]["dtype"],
                            outputs=io_info["outputs"], postprocess=details.get("postprocess"))
    metadata.update(details.pop("extra_metadata", None) or {})  # a format's own keys
    set_onnx_metadata(model, metadata)
    try:
        onnx.checker.check_model(model, full_check=True)
    except onnx.checker.ValidationError as exc:
        raise ArtifactError(f"the exported {ctx.fmt.name} graph is not valid ONNX: {exc}") from exc
    data = model.SerializeToString()
    _smoke_test(data, ctx)
    atomic_write_bytes(ctx.target, data)
    details = {"exporter": EXPORTER, "opset": opset_of(model), "io": io_info,
               "compute_dtype": compute_dtype, **details}
    manifest = write_manifest(ctx.target, metadata, {**ctx.manifest_extra(details),
                                                     "opset": details["opset"], "io": io_info})
    return ExportResult(path=ctx.target, manifest=manifest, format=ctx.fmt.name,
                        precision=ctx.fmt.precision, size_bytes=ctx.target.stat().st_size,
                        details=details)


def _smoke_test(data: bytes, ctx: ExportContext) -> None:
    """onnxruntime must load and run the bytes on a batch of 2 before they count as exported:
    every output batched, floating outputs finite, a classifier's logits [2, classes]."""
    from edgetl.runtime.onnxrt import open_session

    try:
        session = open_session(data)
        example = example_input(ctx.info.spec, embedded=ctx.options.embed_preprocessing).numpy()
        names = [o.name for o in session.get_outputs()]
        outputs = dict(zip(names, session.run(None, {INPUT_NAME: example}), strict=True))
    except Exception as exc:  # onnxruntime's errors are untyped
        raise ArtifactError(f"onnxruntime cannot run the exported {ctx.fmt.name} graph: {exc}"
                            ) from exc
    check_smoke_outputs(outputs, ctx)


def check_smoke_outputs(outputs: dict[str, Any], ctx: ExportContext) -> None:
    """A batch of 2's outputs as every exported file must give them: every output batched,
    floating outputs finite, a classifier's logits [2, classes]."""
    import numpy as np

    for name, out in outputs.items():
        if out.shape[:1] != (2,) or (out.dtype.kind == "f" and not np.isfinite(out).all()):
            raise ArtifactError(f"the exported graph's output {name} is {out.shape} or not "
                                "finite on a batch of 2")
    logits = outputs.get(OUTPUT_NAME)
    if tasks.get(ctx.info.task_record.task).artifact_logits and (
            logits is None or logits.shape != (2, ctx.info.task_record.num_classes)):
        raise ArtifactError(f"the exported classifier returned {getattr(logits, 'shape', None)}"
                            f" instead of logits [2, {ctx.info.task_record.num_classes}]")


def export(ctx: ExportContext) -> ExportResult:
    module, example, details = prepare_module(ctx)
    model = trace_to_onnx(module, example, ctx.options.opset, details["outputs"])
    return finalize_onnx(ctx, model, details, compute_dtype="float32")
