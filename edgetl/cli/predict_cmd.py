"""`edgetl predict ARTIFACT IMAGE...` (never imports torch for ONNX artifacts)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from edgetl.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command("predict")
    def predict(
        artifact: Path = typer.Argument(..., help="Exported ONNX artifact."),
        images: list[Path] = typer.Argument(..., help="Image files."),
        top_k: int = typer.Option(3, "--top-k", help="Classes to show per image."),
        as_json: bool = typer.Option(False, "--json", help="Print JSON."),
        backend: str = typer.Option("ort-cpu", "--backend", help="ort-cpu, ort-cuda or tensorrt."),
        threads: int | None = typer.Option(None, "--threads",
                                           help="onnxruntime intra-op threads."),
        force: bool = typer.Option(False, "--force", help="Run an artifact whose embedded spec "
                                   "was edited after export (with a warning)."),
    ) -> None:
        """Labels and probabilities from the artifact and its embedded spec only (no torch)."""
        from edgetl.interrupt import activity
        from edgetl.predict import predict_images

        with activity(f"predict with {artifact}", "nothing was printed: run it again"):
            results = predict_images(artifact, images, top_k=top_k, backend=backend,
                                     threads=threads, force=force)
        if as_json:
            typer.echo(json.dumps({"artifact": str(artifact),
                                   "predictions": [r.to_dict() for r in results]}, indent=2))
            return
        from rich.table import Table

        table = Table(title=f"predict {artifact.name}")
        table.add_column("image", overflow="fold")
        for rank in range(1, min(top_k, len(results[0].labels) if results else 1) + 1):
            table.add_column(f"#{rank}")
        for r in results:
            cells = [f"{label} {prob:.1%}"
                     for label, prob in zip(r.labels, r.probabilities, strict=True)]
            table.add_row(r.image, *cells)
        console.print(table)
