"""`edgetl evaluate RUN_OR_ARTIFACT`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        target: Path = typer.Argument(..., help="Run folder or exported artifact (.onnx)."),
        data: str | None = typer.Option(None, "--data", help="Data source (default: the run's)."),
        split: str = typer.Option("test", "--split", help="Split to evaluate."),
        json_out: Path | None = typer.Option(None, "--json", help="Write metrics as JSON."),
        out: Path | None = typer.Option(None, "--out", help="Folder for the report and plots."),
        device: str = typer.Option("cpu", "--device", help="cpu or cuda (runs only)."),
    ) -> None:
        """Accuracy with a bootstrap interval, per-class P/R/F1, confusion matrix, ROC-AUC."""
        from edgetl.cli.render import print_report_summary
        from edgetl.evaluate.report import evaluate_target, write_report

        report = evaluate_target(target, split=split, data=data, device=device)
        print_report_summary(report, title=f"{report['kind']} {target} on {split}")
        write_report(report, json_out, out)
