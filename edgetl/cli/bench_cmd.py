"""`edgetl bench ARTIFACT`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        artifact: Path = typer.Argument(..., help="Exported artifact or run folder."),
        backend: list[str] = typer.Option(["auto"], "--backend", help="Backend(s) to time."),
        batch: str = typer.Option("1", "--batch", help="Comma-separated batch sizes."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
    ) -> None:
        """Latency per backend and batch size, with a regression gate against a baseline."""
        not_available("bench")
