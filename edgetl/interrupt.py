"""Ctrl-C: which work was interrupted, and how to resume it.

Typer turns a `KeyboardInterrupt` into a *returned* exit code 130 when the app runs with
`standalone_mode=False`, and that return value used to be dropped, so an interrupted command
exited 0 with nothing on stderr. The CLI now installs `install()`'s SIGINT handler, which
remembers the innermost `activity(...)` at the moment of the signal before raising
`KeyboardInterrupt`; when the command has unwound (atomic writes removed their temporary files,
`outputs_together` removed a half-written set), `interrupted_line()` says what was cut short and
how to resume. Commands only declare activities; the exit code and the message live in one place.
A signal that lands while a module imports is held back until the import has finished (a SIGALRM
retry every 50 ms), because an exception inside an extension's initialisation aborts the process;
the message then names the activity the held interrupt is raised in, since that is the work it
cuts short.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import FrameType

Hint = str | Callable[[], str] | None


@dataclass(frozen=True)
class Activity:
    """What is running (`what`) and what to do after an interrupt (`resume`, maybe lazy)."""

    what: str
    resume: Hint = None

    def line(self) -> str:
        resume = self.resume() if callable(self.resume) else self.resume
        return f"interrupted: {self.what}" + (f" ({resume})" if resume else "")


_RETRY_S = 0.05
_stack: list[Activity] = []
_deferred = threading.Event()
_fired: list[Activity] = []


@contextmanager
def activity(what: str, resume: Hint = None) -> Iterator[None]:
    """Declare the work inside the block, for the message an interrupt prints."""
    _stack.append(Activity(what, resume))
    try:
        yield
    finally:
        _stack.pop()


def _importing(frame: FrameType | None) -> bool:
    """True while a module is being imported: a C extension's initialisation (onnx's nanobind
    module, for one) aborts the whole process if a Python exception surfaces inside it."""
    while frame is not None:
        if frame.f_code.co_filename.startswith("<frozen importlib"):
            return True
        frame = frame.f_back
    return False


def _on_sigint(signum: int, frame: FrameType | None) -> None:
    if not _fired:
        _fired.append(_stack[-1] if _stack else Activity("the command"))
    if _importing(frame) and hasattr(signal, "setitimer"):
        _deferred.set()
        signal.setitimer(signal.ITIMER_REAL, _RETRY_S)
        return
    raise KeyboardInterrupt


def _on_retry(signum: int, frame: FrameType | None) -> None:
    """Raise the deferred interrupt once no import is running any more."""
    if not _deferred.is_set():
        return
    if _importing(frame):
        signal.setitimer(signal.ITIMER_REAL, _RETRY_S)
        return
    _deferred.clear()
    if _stack:  # the work this interrupt now cuts short, not whatever ran when it was sent
        _fired[:] = [_stack[-1]]
    raise KeyboardInterrupt


def install() -> None:
    """Route SIGINT through `_on_sigint` (main thread only; others keep Python's default)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, _on_sigint)
        if hasattr(signal, "SIGALRM"):
            signal.signal(signal.SIGALRM, _on_retry)


def interrupted_line(fallback: str = "the command") -> str:
    """The one stderr line for an interrupt (the innermost activity when the signal came)."""
    return (_fired[0] if _fired else Activity(fallback)).line()


def fired() -> bool:
    return bool(_fired)
