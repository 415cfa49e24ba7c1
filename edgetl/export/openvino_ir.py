"""OpenVINO IR (`openvino`, `openvino-fp16`): the fp32 ONNX graph converted by OpenVINO.

The module is traced exactly as the `onnx` format traces it (same deployable outputs, static
padding, folded pads), then `openvino.convert_model` reads that ONNX file and
`openvino.save_model` writes the .xml and .bin, with `compress_to_fp16` only for
`openvino-fp16` (float16 weights; the CPU decompresses them and computes in float32). edgetl's
metadata goes into the IR's rt_info (`edgetl.artifact.openvino_ir`); the IR must compile and run
a batch of 2 on `ov-cpu` before the two files are moved into place (.bin first, then .xml).
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgetl.artifact.manifest import write_manifest
from edgetl.artifact.openvino_ir import set_ir_metadata, weights_path
from edgetl.errors import ArtifactError
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.onnx_fp32 import (
    EXPORTER,
    check_smoke_outputs,
    describe_io,
    opset_of,
    prepare_module,
    trace_to_onnx,
)
from edgetl.export.preprocess_graph import example_input
from edgetl.io import sha256_file
from edgetl.runtime.openvino_runner import OvRunner, require_openvino

# (converted ov.Model, fp32 ONNX path, ctx) -> (the model to save, details to record; its
# "extra_metadata" entry: the format's own rt_info keys)
Transform = Callable[[Any, Path, ExportContext], tuple[Any, dict[str, Any]]]


def export(ctx: ExportContext, transform: Transform | None = None,
           weights_dtype: str | None = None) -> ExportResult:
    """Convert, optionally `transform` the converted model (openvino-int8 quantises it),
    smoke-test and move the IR into place; nothing is written when a step fails."""
    require_openvino()  # exit 3 before loading the model
    import onnx
    import openvino as ov

    module, example, details = prepare_module(ctx)
    graph = trace_to_onnx(module, example, ctx.options.opset, details["outputs"])
    io_info = describe_io(graph)
    metadata = ctx.metadata(io_info["input"]["dtype"], io_info["output"]["dtype"],
                            outputs=io_info["outputs"], postprocess=details.get("postprocess"))
    half = ctx.fmt.precision == "fp16"
    ctx.target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.target.parent, prefix=".ov-export-") as work:
        source = os.path.join(work, "source.onnx")
        onnx.save(graph, source)
        try:
            model = ov.convert_model(source)
        except Exception as exc:  # the converter's errors are untyped
            raise ArtifactError(f"openvino cannot convert the {ctx.fmt.name} graph: {exc}"
                                ) from exc
        if transform is not None:
            model, extra = transform(model, Path(source), ctx)
            metadata.update(extra.pop("extra_metadata", None) or {})  # the format's own keys
            details.update(extra)
        set_ir_metadata(model, metadata)
        staged = os.path.join(work, ctx.target.name)
        ov.save_model(model, staged, compress_to_fp16=half)
        _smoke_test(staged, ctx)
        os.replace(weights_path(staged), weights_path(ctx.target))
        os.replace(staged, ctx.target)
    bin_path = weights_path(ctx.target)
    details = {"exporter": f"{EXPORTER} -> openvino.convert_model {ov.__version__}",
               "opset": opset_of(graph), "io": io_info,
               "compute_dtype": "int8" if transform else "float32",
               "weights_dtype": weights_dtype or ("float16" if half else "float32"),
               "weights_file": {"name": bin_path.name, "sha256": sha256_file(bin_path),
                                "size_bytes": bin_path.stat().st_size},
               **details}
    manifest = write_manifest(ctx.target, metadata, {**ctx.manifest_extra(details),
                                                     "opset": details["opset"], "io": io_info})
    size = ctx.target.stat().st_size + bin_path.stat().st_size
    return ExportResult(path=ctx.target, manifest=manifest, format=ctx.fmt.name,
                        precision=ctx.fmt.precision, size_bytes=size, details=details)


def _smoke_test(xml: str, ctx: ExportContext) -> None:
    """ov-cpu must compile the IR and run a batch of 2 as every exported file must."""
    example = example_input(ctx.info.spec, embedded=ctx.options.embed_preprocessing).numpy()
    with OvRunner(xml) as runner:
        outputs: dict[str, Any] = runner.run(example)
    check_smoke_outputs(outputs, ctx)
