"""Small helpers shared by the command modules: consoles, the option vocabulary every command
speaks (docs/cli-options.md), and deprecated spellings that still work for one release."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from rich.console import Console

from edgetl.errors import UsageError

console = Console(stderr=False)
err_console = Console(stderr=True)

TASKS_WORDS = "classification, detection, semantic and instance segmentation"
JSON_HELP = "Write the report as JSON to this file ('-': standard output)."
DEVICE_HELP = "Where torch work runs: auto (CUDA when visible, else CPU), cpu or cuda."
DEVICES = ("auto", "cpu", "cuda")
WARMUP_HELP = "Warm-up calls per timing, or 'auto' (until timings settle)."
MIN_TIME_HELP = "Seconds to time each row for."
ITERS_HELP = "Time exactly N calls (instead of --min-time)."
BATCH_HELP = "Images per timed call, comma-separated for several, e.g. 1,8."
NEAR_DUP_HELP = ("Near-duplicate threshold: perceptual-hash (phash) Hamming distance 0-64, as "
                 "the recipe's data.near_duplicate_threshold; -1: exact duplicates only.")
NEAR_DUP_MIN, NEAR_DUP_MAX = -1, 64


def not_available(command: str) -> None:
    """Commands registered for the contract but not built yet exit 2 with this line."""
    raise UsageError(f"'edgetl {command}' is not available yet in this version")


def deprecated(old: str, new: str, old_value: Any, value: Any, default: Any = None) -> Any:
    """`value` of the option `new`, or `old_value` given under the old spelling `old` (with a
    deprecation note on stderr); both given with different values is a usage error."""
    if old_value is None or old_value == [] or old_value is False:
        return value
    sys.stderr.write(f"note: {old} is deprecated and will be removed after 0.2; use {new}\n")
    sys.stderr.flush()
    if value != default and value != old_value:
        raise UsageError(f"{old} and {new} are the same option given twice", f"give only {new}")
    return old_value


def check_device(device: str) -> str:
    if device not in DEVICES:
        raise UsageError(f"--device must be {', '.join(DEVICES[:-1])} or {DEVICES[-1]}, "
                         f"got {device!r}")
    return device


def check_near_dup(threshold: int) -> int:
    if not NEAR_DUP_MIN <= threshold <= NEAR_DUP_MAX:
        raise UsageError(f"--near-dup-threshold {threshold} is outside {NEAR_DUP_MIN}-"
                         f"{NEAR_DUP_MAX}", "give a phash Hamming distance 0-64 (default 6), "
                         "or -1 for exact duplicates only")
    return threshold


def json_target(value: str | None, option: str = "--json") -> Path | None:
    """`--json FILE|-`: a checked writable path, or None (nothing, or '-' for stdout)."""
    if value is None or value == "-":
        return None
    from edgetl.io import require_writable

    path = Path(value)
    require_writable(path, option)
    return path


def write_json_report(value: str | None, payload: Any) -> None:
    """Write `payload` as strict JSON where `--json` points ('-': stdout, nothing else there)."""
    if value is None:
        return
    import json

    if value == "-":
        sys.stdout.write(json.dumps(payload, indent=2, default=str) + "\n")
        sys.stdout.flush()
        return
    from edgetl.io import atomic_write_json

    atomic_write_json(Path(value), payload)


def backend_names() -> tuple[str, ...]:
    """Every backend name edgetl knows (edgetl.runtime's list), in one order for every command."""
    from edgetl.runtime import BACKENDS

    return tuple(BACKENDS)


DEFAULT_BACKEND = "Default: the artifact's own (ort-cpu for ONNX, ov-cpu for an OpenVINO IR)."


def backend_help(applies: tuple[str, ...], extra: str = "") -> str:
    """The same backend names on every command; says which of them this command runs."""
    every = backend_names()
    runs = [b for b in every if b in applies] + [b for b in applies if b not in every]
    return (f"Runtime: {', '.join(runs)} (of edgetl's backends {', '.join(every)})."
            + (f" {extra}" if extra else ""))


def check_backend(backend: str, applies: tuple[str, ...], command: str) -> str:
    if backend not in applies:
        known = backend in backend_names()
        raise UsageError(
            f"--backend {backend!r} " + (f"does not apply to {command}" if known
                                         else "is not a backend"),
            f"use one of {', '.join(applies)}")
    return backend


def _flags_without_placeholder() -> None:
    """Typer's rich help shows a type placeholder for every option, `<bool>` for flags too,
    which reads as if a flag took a value; flags (and --help) show none."""
    from typer.core import TyperOption

    shown = TyperOption.display_type_rich
    if getattr(shown, "_edgetl", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich._edgetl = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_without_placeholder()
