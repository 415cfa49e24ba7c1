"""`edgetl finetune RECIPE`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    def finetune(
        recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/)."),
        overrides: list[str] = typer.Option([], "--set", help="Override a recipe key: a.b=value."),
        data: str | None = typer.Option(None, "--data", help="Data source overriding the recipe's."),
        out: Path | None = typer.Option(None, "--out", help="Run folder."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        seed: int | None = typer.Option(None, "--seed", help="Random seed overriding the recipe's."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    ) -> None:
        """Fine-tune a pretrained backbone in phases (A head, B last blocks, C all)."""
        not_available("finetune")
