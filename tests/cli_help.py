"""The real CLI's commands, their help texts and options, read from the Typer app itself."""

from __future__ import annotations

import re

import typer.main
from typer.testing import CliRunner

from edgetl.cli.main import app


def commands() -> dict:
    """'evaluate', 'data inspect', ... -> the click command the app builds."""
    root = typer.main.get_command(app)
    found: dict = {}

    def walk(command, words: tuple[str, ...]) -> None:  # noqa: ANN001 - Typer's click
        if hasattr(command, "commands"):
            for name, sub in command.commands.items():
                walk(sub, (*words, name))
        else:
            found[" ".join(words)] = command

    walk(root, ())
    return found


def help_text(words: str) -> str:
    """`edgetl WORDS --help` as a user reads it, on one line (box drawing removed)."""
    result = CliRunner().invoke(app, [*words.split(), "--help"], terminal_width=1000,
                                env={"COLUMNS": "1000", "NO_COLOR": "1", "TERM": "dumb"})
    assert result.exit_code == 0, result.output
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", result.output).split())


def visible_options(command) -> dict:  # noqa: ANN001
    """Long option name -> option, for the options `--help` shows (deprecated ones hidden)."""
    out: dict = {}
    for param in command.params:
        if param.param_type_name == "option" and not param.hidden:
            for name in param.opts:
                if name.startswith("--"):
                    out[name] = param
    return out


def hidden_options(command) -> list[str]:  # noqa: ANN001
    return [name for param in command.params
            if param.param_type_name == "option" and param.hidden
            for name in param.opts if name.startswith("--")]
