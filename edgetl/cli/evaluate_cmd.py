"""`edgetl evaluate RUN_OR_ARTIFACT`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        target: Path = typer.Argument(..., help="Run folder or exported artifact."),
        data: str | None = typer.Option(None, "--data", help="Data source (default: the run's)."),
        split: str = typer.Option("test", "--split", help="Split to evaluate."),
        json_out: Path | None = typer.Option(None, "--json", help="Write metrics as JSON."),
        out: Path | None = typer.Option(None, "--out", help="Folder for the report and plots."),
    ) -> None:
        """Accuracy with a bootstrap interval, per-class P/R/F1, confusion matrix, ROC-AUC."""
        not_available("evaluate")
