"""Export a run's checkpoint to deployable artifacts, one module per format (the table is
`edgetl.artifact.formats`).

`export_run(run, "onnx-int8")` loads the checkpoint, hands an `ExportContext` to the format's
module and returns an `ExportResult` (where the artifact and its manifest went). Formats are
looked up by name in `FORMATS`; their modules (torch, onnx, onnxruntime, tensorrt) are imported
only when used, and importing this package imports none of them (`predict` relies on that).
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any

from edgetl.artifact.formats import (
    FAMILIES,
    FORMATS,
    ExportFormat,
    artifact_filename,
    get_format,
)
from edgetl.errors import UsageError
from edgetl.export.options import ExportOptions
from edgetl.runfolder import RunFolder

__all__ = ["FORMATS", "ExportFormat", "ExportOptions", "default_artifact_path", "export_run",
           "get_format", "resolve_target"]



def default_artifact_path(run: str | Path, fmt: ExportFormat, embed: bool = False) -> Path:
    """RUN/export/<format's file name>."""
    return RunFolder(run).export_path / artifact_filename(fmt, embed)


def resolve_target(run: str | Path, fmt: ExportFormat, out: str | Path | None,
                   embed: bool = False) -> Path:
    """The artifact path: `out` if it names a file, `out/<default name>` for a folder (an
    existing one, or a path without a suffix), RUN/export/<default name> without `out`."""
    if out is None:
        return default_artifact_path(run, fmt, embed)
    out = Path(out)
    target = out / artifact_filename(fmt, embed) if out.is_dir() or not out.suffix else out
    expected = FAMILIES[fmt.family].suffix
    if target.suffix != expected:
        raise UsageError(f"--out {target} does not end in {expected}, the {fmt.name} file type",
                         f"name a {expected} file or a folder")
    return target


def requested_operating_point(run: Path, option: str | None) -> str | None:
    """The operating point an export records: the option, else the run recipe's
    `operating_point`; None for argmax (also when the option is "none")."""
    if option is None:
        from edgetl.runfolder import RunFolder

        folder = RunFolder(run)
        option = folder.recipe().operating_point if folder.exists() else None
    return None if option in (None, "none") else option


def export_run(run: str | Path, fmt: str, out: str | Path | None = None,
               options: ExportOptions | None = None) -> Any:
    """Export RUN's checkpoint as `fmt` to `out` (a file, a folder, or RUN/export/).

    Returns `edgetl.export.context.ExportResult`.
    """
    from edgetl.checkpoint import read_checkpoint_info
    from edgetl.export.context import ExportContext

    options = options or ExportOptions()
    options.validate()
    row = get_format(fmt)
    if options.qat and not row.quantisation_aware:
        aware = ", ".join(f.name for f in FORMATS.values() if f.quantisation_aware)
        raise UsageError(f"--qat does not apply to {fmt}", f"use it with {aware}")
    if row.family == "tensorrt":  # fail fast (exit 3) before loading anything heavy
        from edgetl.runtime.tensorrt_runner import require_tensorrt

        require_tensorrt()
    info = read_checkpoint_info(run, options.checkpoint)
    target = resolve_target(run, row, out, options.embed_preprocessing)
    decision = None
    requested = requested_operating_point(Path(run), options.operating_point)
    if requested is not None:
        from edgetl.export.operating_point import choose_for_export

        decision = choose_for_export(Path(run), info, requested)
    ctx = ExportContext(run=Path(run), info=info, fmt=row, options=options, target=target,
                        decision=decision)
    return importlib.import_module(row.module).export(ctx)
