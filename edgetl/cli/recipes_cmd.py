"""`edgetl recipes list` and `edgetl recipes keys`: the shipped recipes, and every recipe key."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import typer

from edgetl.cli.common import JSON_HELP, console

app = typer.Typer(help="The shipped recipes (every task) and the reference of recipe keys.",
                  no_args_is_help=True)


@app.command("list")
def list_recipes(
    folder: Path | None = typer.Argument(None, help="Recipes folder (default: recipes/ here, "
                                         "else the one of this installation)."),
    json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP),
) -> None:
    """The recipes with their task (classification, detection, semantic or instance
    segmentation), backbone, input size and the measured figure each cites (accuracy, mAP,
    mIoU or mask mAP, with where it was measured)."""
    import sys

    from rich.table import Table

    from edgetl.cli.common import json_target, write_json_report
    from edgetl.recipe_keys import recipe_folder, summarize

    json_target(json_out)
    rows = summarize(folder or recipe_folder())
    if json_out is not None:
        write_json_report(json_out, [dataclasses.asdict(r) for r in rows])
        if json_out == "-":
            console.file = sys.stderr
    table = Table(title="recipes")
    for column in ("recipe", "task", "backbone", "input", "measured"):
        table.add_column(column, overflow="fold")
    for r in rows:
        table.add_row(r.path, r.task, r.backbone, r.input_size, r.measured)
    console.print(table)


@app.command("keys")
def keys(
    markdown: Path | None = typer.Option(None, "--markdown", help="Write the reference as a "
                                         "markdown table (docs/recipe-keys.md is this file)."),
    json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP),
) -> None:
    """Every recipe key, for every task (classification, detection, semantic and instance
    segmentation), from the schema: key path, type, default and description. Override any
    with finetune --set key=value."""
    import sys

    from rich.table import Table

    from edgetl.cli.common import json_target, write_json_report
    from edgetl.io import atomic_write_text, require_writable
    from edgetl.recipe_keys import keys_markdown, schema_keys

    json_target(json_out)
    if markdown is not None:
        require_writable(markdown, "--markdown")
    rows = schema_keys()
    if json_out is not None:
        write_json_report(json_out, [dataclasses.asdict(k) for k in rows])
        if json_out == "-":
            console.file = sys.stderr
    if markdown is not None:
        atomic_write_text(markdown, keys_markdown(rows))
        console.print(f"wrote {markdown}")
        return
    table = Table(title="recipe keys")
    for column in ("key", "type", "default", "description"):
        table.add_column(column, overflow="fold")
    for k in rows:
        table.add_row(k.path, k.type, k.default, k.description)
    console.print(table)
