"""`edgetl data inspect` and `edgetl data split`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import not_available

app = typer.Typer(help="Inspect data sets and make leakage-safe splits.", no_args_is_help=True)


@app.command("inspect")
def inspect(
    data: str = typer.Argument(..., help="Folder tree, CSV manifest, or built-in name (elpv, elpv:4class)."),
    json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
) -> None:
    """Counts per class, image sizes/modes, unreadable files, duplicates and near-duplicates."""
    not_available("data inspect")


@app.command("split")
def split(
    data: str = typer.Argument(..., help="Folder tree, CSV manifest, or built-in name."),
    out: Path = typer.Option(..., "--out", help="Where to write the split manifest CSV."),
) -> None:
    """Seeded stratified/grouped split that keeps near-duplicates together, with a leakage report."""
    not_available("data split")
