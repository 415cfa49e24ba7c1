"""The `edgetl` entry point: registers every command and maps errors to exit codes.

Command modules import heavy libraries (torch, onnxruntime) inside their functions so that
`edgetl --help` stays fast.
"""

from __future__ import annotations

import os
import sys
import traceback
import warnings

import typer

from edgetl import __version__, interrupt
from edgetl.cli import (
    bench_cmd,
    bundle_cmd,
    data_cmd,
    evaluate_cmd,
    export_cmd,
    finetune_cmd,
    models_cmd,
    predict_cmd,
    recipes_cmd,
    select_cmd,
    verify_cmd,
)
from edgetl.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    EdgetlError,
    os_error_line,
)

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
app.add_typer(recipes_cmd.app, name="recipes")
finetune_cmd.register(app)
evaluate_cmd.register(app)
export_cmd.register(app)
verify_cmd.register(app)
bundle_cmd.register(app)
bench_cmd.register(app)
predict_cmd.register(app)
select_cmd.register(app)


def _fail(line: str, code: int) -> None:
    sys.stderr.write(f"error: {line}\n")
    sys.stderr.flush()
    raise SystemExit(code)


def _show_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int,
                  file: object = None, line: str | None = None) -> None:
    """Data warnings and edgetl's own in the CLI's voice (`warning: ...`, one line); warnings
    of other libraries keep Python's format."""
    ours = category.__name__ == "DataWarning" or os.sep + "edgetl" + os.sep in filename
    if not ours:
        _python_showwarning(message, category, filename, lineno, file, line)
        return
    sys.stderr.write("warning: " + " ".join(str(message).split()) + "\n")
    sys.stderr.flush()


_python_showwarning = warnings.showwarning


def _command_name() -> str:
    words = [a for a in sys.argv[1:3] if not a.startswith("-")]
    return "edgetl " + " ".join(words[:2] if words[:1] == ["data"] else words[:1])


def run() -> None:
    """Console-script entry: run the app; one stderr line and a typed exit code on error."""
    debug = os.environ.get("EDGETL_DEBUG") == "1"
    interrupt.install()
    warnings.showwarning = _show_warning
    # decode_image warns about very large images itself, naming the file
    warnings.filterwarnings("ignore", message="Image size .* could be decompression bomb")
    try:
        code = app(standalone_mode=False)
    except EdgetlError as exc:
        if debug:
            traceback.print_exc()
        _fail(exc.one_line(), exc.exit_code)
    except KeyboardInterrupt:
        _fail(interrupt.interrupted_line(_command_name()), EXIT_INTERRUPTED)
    except typer.Exit as exc:
        raise SystemExit(exc.exit_code) from None
    except typer.Abort:
        _fail(interrupt.interrupted_line(_command_name()), EXIT_INTERRUPTED)
    except OSError as exc:  # full or read-only disk, a file in the way: the user's environment
        if debug:
            traceback.print_exc()
        _fail(os_error_line(exc), EXIT_USAGE)
    except MemoryError as exc:
        if debug:
            traceback.print_exc()
        _fail(f"out of memory ({exc or 'MemoryError'}) (use smaller batches or images)",
              EXIT_USAGE)
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
    # Without standalone mode Typer returns the exit code of a `typer.Exit` or of Ctrl-C (130)
    # instead of raising it; dropping it made an interrupted command exit 0.
    if code == EXIT_INTERRUPTED or interrupt.fired():
        _fail(interrupt.interrupted_line(_command_name()), EXIT_INTERRUPTED)
    if isinstance(code, int) and code:
        raise SystemExit(code)


if __name__ == "__main__":
    run()
