"""The tasks edgetl knows, one module each: what every layer needs from a task, in one place.

Layers ask the task (`get(name)`) instead of branching on its name. A slot that names code holds
a `"module:attr"` string, imported only when a layer asks for it (`Task.load`): the definitions
import nothing but this package, so the lowest layer can read them, torch stays out of the
deployment path, and no import cycle closes through here.
"""

from __future__ import annotations

from edgetl.errors import UsageError
from edgetl.tasks import classification, detection, instance, semantic
from edgetl.tasks.task import CODE, Task, load_ref

__all__ = ["CODE", "TASKS", "Task", "get", "load_ref", "names", "register", "unregister"]

TASKS: dict[str, Task] = {t.name: t for t in (classification.TASK, detection.TASK,
                                              semantic.TASK, instance.TASK)}


def names() -> tuple[str, ...]:
    """Every task this edgetl knows, in the order help text lists them."""
    return tuple(TASKS)


def get(name: str, unknown: Exception | None = None) -> Task:
    """The task called `name`. An unknown name raises `unknown` (the caller's own error and
    message), else one line listing the known ones (exit 2)."""
    if name not in TASKS:
        if unknown is not None:
            raise unknown
        raise UsageError(f"unknown task {name!r}", f"use one of {', '.join(TASKS)}")
    return TASKS[name]


def register(task: Task) -> Task:
    """Add a task (a plug-in's or a test's); its name must be new."""
    if task.name in TASKS:
        raise UsageError(f"task {task.name!r} is already defined")
    TASKS[task.name] = task
    return task


def unregister(name: str) -> None:
    """Remove a task `register` added (tests clean up with it)."""
    TASKS.pop(name, None)
