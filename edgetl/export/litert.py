"""LiteRT (`litert`): the deployable torch module converted to a float32 `.tflite` by litert-torch.

The module is prepared exactly as for the `onnx` format (same deployable outputs, static
padding) and converted at batch 1 with `litert_torch.convert` (torch.export -> MLIR -> TFLite);
litert-torch keeps the NCHW input at the file's boundary. edgetl's metadata lives in the
manifest beside the file (the family's sidecar; not yet in the flatbuffer's metadata). The file
must load and run a batch of 2 on `litert-cpu` before it is moved into place. litert_torch takes
seconds to import, so it is imported only here, inside `export`.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from edgetl.artifact.manifest import write_manifest
from edgetl.errors import ArtifactError, BackendUnavailableError
from edgetl.export.context import ExportContext, ExportResult
from edgetl.export.onnx_fp32 import check_smoke_outputs, prepare_module
from edgetl.export.preprocess_graph import example_input
from edgetl.runtime.litert_runner import LiteRtRunner, require_litert


def require_converter() -> Any:
    """litert_torch, or exit 3 saying how to get it (before the model is loaded)."""
    try:
        import litert_torch
    except ImportError as exc:
        raise BackendUnavailableError(
            f"--format litert needs the litert-torch converter ({exc})",
            "pip install litert-torch (see docs/litert.md for what it adds)",
        ) from None
    return litert_torch


def export(ctx: ExportContext) -> ExportResult:
    require_litert()
    litert_torch = require_converter()
    from importlib.metadata import version

    module, example, details = prepare_module(ctx)
    try:
        edge = litert_torch.convert(module, (example[:1],))
    except Exception as exc:  # the converter's errors are untyped
        raise ArtifactError(f"litert-torch cannot convert the {ctx.fmt.name} graph: {exc}"
                            ) from exc
    names = list(details["outputs"])
    ctx.target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=ctx.target.parent, prefix=".litert-export-") as work:
        staged = os.path.join(work, ctx.target.name)
        edge.export(staged)
        io_info = _smoke_test(staged, ctx, names)
        os.replace(staged, ctx.target)
    metadata = ctx.metadata(io_info["input"]["dtype"], io_info["output"]["dtype"],
                            outputs=io_info["outputs"], postprocess=details.get("postprocess"))
    details = {"exporter": f"litert_torch.convert {version('litert-torch')}", "io": io_info,
               "compute_dtype": "float32", "weights_dtype": "float32",
               "metadata_location": "manifest (sidecar)", **details}
    manifest = write_manifest(ctx.target, metadata, {**ctx.manifest_extra(details),
                                                     "io": io_info})
    return ExportResult(path=ctx.target, manifest=manifest, format=ctx.fmt.name,
                        precision=ctx.fmt.precision, size_bytes=ctx.target.stat().st_size,
                        details=details)


def _smoke_test(path: str, ctx: ExportContext, names: list[str]) -> dict[str, Any]:
    """litert-cpu must load the file and run a batch of 2; returns the file's io record."""
    example = example_input(ctx.info.spec, embedded=ctx.options.embed_preprocessing).numpy()
    with LiteRtRunner(path) as runner:
        outputs = runner.run(example)
        if len(outputs) != len(names):
            raise ArtifactError(f"the .tflite has {len(outputs)} outputs, the module {names}")
        outputs = dict(zip(names, outputs.values(), strict=True))
        check_smoke_outputs(outputs, ctx)

        def one(name: str, value: Any) -> dict[str, Any]:
            return {"name": name, "dtype": str(value.dtype), "shape": ["batch", *value.shape[1:]]}

        outs = [one(n, v) for n, v in outputs.items()]
        inp = one(runner.input_name, example)
        inp["dtype"] = str(runner.input_dtype)
    return {"input": inp, "output": outs[0], "outputs": outs}
