"""Small helpers shared by the command modules (console, not-yet-available commands)."""

from __future__ import annotations

from rich.console import Console

from edgetl.errors import UsageError

console = Console(stderr=False)
err_console = Console(stderr=True)


def not_available(command: str) -> None:
    """Commands registered for the contract but not built yet exit 2 with this line."""
    raise UsageError(f"'edgetl {command}' is not available yet in this version")
