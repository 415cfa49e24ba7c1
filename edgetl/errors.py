"""Typed errors, each bound to one exit code and one actionable stderr line.

The CLI catches `EdgetlError` at the top and prints `error: <message>` on one line; the exit code
comes from the class, so library code never calls `sys.exit` itself.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # an unexpected exception: a bug, not a user error


class EdgetlError(Exception):
    """Base class: a message that says what went wrong and what to do about it."""

    exit_code: int = EXIT_USAGE

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def one_line(self) -> str:
        """The single stderr line shown to the user."""
        text = self.message.rstrip(".")
        if self.hint:
            text += f" ({self.hint.rstrip('.')})"
        return " ".join(text.split())


class UsageError(EdgetlError):
    """Bad command-line usage or a command that is not available yet."""


class RecipeError(EdgetlError):
    """A recipe that does not validate (unknown key, wrong type, impossible value)."""


class DataError(EdgetlError):
    """Missing data, an empty class, an unreadable manifest."""


class SpecError(EdgetlError):
    """A preprocessing or label spec that is missing or invalid."""


class WeightsError(EdgetlError):
    """Pretrained weights that cannot be found offline or do not fit the architecture."""


class ArtifactError(EdgetlError):
    """An artifact or run folder that is missing, incomplete or inconsistent."""


class BackendUnavailableError(EdgetlError):
    """A backend or device this machine does not have (TensorRT, CUDA)."""

    exit_code = EXIT_UNAVAILABLE


class GateFailedError(EdgetlError):
    """A verify or bench gate failed: the work ran, the result is not acceptable."""

    exit_code = EXIT_GATE_FAILED
