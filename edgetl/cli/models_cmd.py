"""`edgetl models list`: the packaged backbones, their weight sources and specs."""

from __future__ import annotations

import typer

from edgetl.cli.common import console
from edgetl.io import json_text

app = typer.Typer(help="Backbones, their weight sources and preprocessing specs.",
                  no_args_is_help=True)


@app.command("list")
def list_models(as_json: bool = typer.Option(
        False, "--json", help="Print the list as JSON on standard output.")) -> None:
    """List backbones (for every task: classification, detection, semantic and instance
    segmentation), their weight sources, and whether their weights are available offline now."""
    from edgetl.models.registry import list_backbones

    rows = list_backbones()
    if as_json:
        typer.echo(json_text(rows, indent=2))
        return
    from rich import box
    from rich.table import Table

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False,
                  caption="any other timm architecture: weights from a file or timm's cache")
    for column in ("name", "M params", "input", "weights (pip)", "offline", "spec"):
        table.add_column(column, no_wrap=not column.startswith("weights"), overflow="fold")
    for row in rows:
        height, width = row["input_size"]
        table.add_row(
            row["name"], f"{row['params']:.2f}", f"{height}x{width}", row["weight_package"],
            "[green]yes[/green]" if row["available"] else f"[red]no[/red] ({row['install']})",
            row["spec_fingerprint"][:8],
        )
    console.print(table)
