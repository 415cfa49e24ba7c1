"""`edgetl export RUN --format F`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("export")
    def export(
        run: Path = typer.Argument(..., help="Run folder written by finetune."),
        fmt: str = typer.Option("onnx", "--format",
                                help="onnx, onnx-fp16, onnx-int8, tensorrt-fp16 or tensorrt-int8."),
        out: Path | None = typer.Option(None, "--out", help="Artifact path."),
    ) -> None:
        """Export the best checkpoint with its preprocessing spec embedded."""
        not_available("export")
