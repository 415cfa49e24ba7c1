"""Typed errors, each bound to one exit code and one actionable stderr line.

The CLI catches `EdgetlError` at the top and prints `error: <message>` on one line; the exit code
comes from the class, so library code never calls `sys.exit` itself.
"""

from __future__ import annotations

import errno

EXIT_OK = 0
EXIT_GATE_FAILED = 1
EXIT_USAGE = 2
EXIT_UNAVAILABLE = 3
EXIT_INTERRUPTED = 130
EXIT_INTERNAL = 70  # an unexpected exception: a bug, not a user error


class DataWarning(UserWarning):
    """Something in the data was skipped or looks wrong, but the data set is still usable.

    Sources report through `warnings.warn(..., DataWarning)` (not a logger) so library users see
    them by default and tests can catch them; the CLI shows each as one `warning:` line.
    """


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


_OS_WORDS: dict[int, tuple[str, str]] = {
    errno.ENOSPC: ("no space left on the device holding {path}",
                   "free some space or write elsewhere; nothing half-written was kept"),
    errno.EDQUOT: ("disk quota exceeded writing {path}", "free some space or write elsewhere"),
    errno.EROFS: ("{path} is on a read-only file system", "write elsewhere"),
    errno.EACCES: ("permission denied: {path}", "write elsewhere or fix its permissions"),
    errno.EPERM: ("operation not permitted: {path}", "write elsewhere or fix its permissions"),
    errno.EEXIST: ("{path} is in the way: a file exists where a folder is needed",
                   "choose another path or remove it"),
    errno.ENOTDIR: ("{path}: a part of it is a file, not a folder",
                    "choose another path or remove the file"),
    errno.EISDIR: ("{path} is a folder, not a file", "name a file"),
    errno.ENOENT: ("no such file or folder: {path}", None),
    errno.ENAMETOOLONG: ("file name too long: {path}", "choose a shorter path"),
}


def os_error_line(exc: OSError) -> str:
    """One line for a file-system error (full or read-only disk, a file in the way): these are
    the user's environment, not bugs, so the CLI exits 2 with this instead of a traceback."""
    path = exc.filename if exc.filename is not None else "the output"
    words, hint = _OS_WORDS.get(exc.errno or -1, (f"{exc.strerror or exc}: {{path}}", None))
    strerror = exc.strerror or ""
    if exc.errno in (errno.ENOTDIR, errno.EISDIR) and strerror and " is a " in strerror:
        words = strerror.replace("{", "{{").replace("}", "}}")  # require_writable's own words
    return EdgetlError(words.format(path=path), hint).one_line()
