"""`edgetl verify ARTIFACT --against RUN`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        artifact: Path = typer.Argument(..., help="Exported artifact."),
        against: Path = typer.Option(..., "--against", help="Run folder it came from."),
        split: str = typer.Option("test", "--split", help="Split to check on."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
    ) -> None:
        """Spec, preprocessing golden test, output parity and accuracy gates (exit 1 on failure)."""
        not_available("verify")
