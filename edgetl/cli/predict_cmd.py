"""`edgetl predict ARTIFACT IMAGE...`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        artifact: Path = typer.Argument(..., help="Exported ONNX artifact."),
        images: list[Path] = typer.Argument(..., help="Image files."),
        top_k: int = typer.Option(3, "--top-k", help="Classes to show per image."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
    ) -> None:
        """Labels and probabilities from the artifact and its embedded spec only (no torch)."""
        not_available("predict")
