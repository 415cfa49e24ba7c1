"""The `edgetl` entry point: registers every command and maps errors to exit codes.

Command modules import heavy libraries (torch, onnxruntime) inside their functions so that
`edgetl --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback

import typer

from edgetl import __version__
from edgetl.cli import (
    bench_cmd,
    data_cmd,
    evaluate_cmd,
    export_cmd,
    finetune_cmd,
    models_cmd,
    predict_cmd,
    verify_cmd,
)
from edgetl.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, EdgetlError

app = typer.Typer(
    name="edgetl",
    help="Fine-tune compact pretrained vision backbones and ship them to edge devices, "
    "with the preprocessing contract carried from training to every exported artifact.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"edgetl {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                 help="Print the version and exit."),
) -> None:
    """Exit codes: 0 ok; 1 a gate failed; 2 bad usage, recipe or data; 3 backend not available here;
    130 interrupted. EDGETL_DEBUG=1 shows tracebacks."""


app.add_typer(models_cmd.app, name="models")
app.add_typer(data_cmd.app, name="data")
finetune_cmd.register(app)
evaluate_cmd.register(app)
export_cmd.register(app)
verify_cmd.register(app)
bench_cmd.register(app)
predict_cmd.register(app)


def _fail(line: str, code: int) -> None:
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def run() -> None:
    """Console-script entry: run the app; one stderr line and a typed exit code on error."""
    debug = os.environ.get("EDGETL_DEBUG") == "1"
    try:
        app(standalone_mode=False)
    except EdgetlError as exc:
        if debug:
            traceback.print_exc()
        _fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        _fail("interrupted", EXIT_INTERRUPTED)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        _fail("aborted", EXIT_INTERRUPTED)
    except Exception as exc:  # click usage errors and anything unexpected
        # Typer may ship its own click; recognise usage errors by shape, not by class.
        if type(exc).__name__ == "NoArgsIsHelpError":
            raise SystemExit(EXIT_USAGE) from None
        if hasattr(exc, "format_message") and hasattr(exc, "exit_code"):
            if debug:
                traceback.print_exc()
            _fail(exc.format_message().replace("\n", " "), EXIT_USAGE)
        if debug:
            traceback.print_exc()
        _fail(f"internal error {type(exc).__name__}: {exc} (a bug: rerun with EDGETL_DEBUG=1 "
              "and report the traceback)", EXIT_INTERNAL)


if __name__ == "__main__":
    run()
