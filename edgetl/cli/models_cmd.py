"""`edgetl models list`."""

from __future__ import annotations

import typer

from edgetl.cli.common import not_available

app = typer.Typer(help="Backbones, their weight sources and preprocessing specs.",
                  no_args_is_help=True)


@app.command("list")
def list_models(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List backbones, weight sources, and whether their weights are available offline now."""
    not_available("models list")
