"""Which file a run keeps its split in, per task (each task's `split_file`): its own module so
each task's split-file writer and the dispatching `edgetl.data.splitfile` both read it without
importing each other."""

from __future__ import annotations

from edgetl import tasks
from edgetl.errors import UsageError

# Task -> split file name, for the tasks known at import (`split_file_name` asks the task itself).
SPLIT_FILE_NAMES: dict[str, str] = {t.name: t.split_file for t in tasks.TASKS.values()}

# Files a split file's writer puts beside it: the semantic pixel-map sidecar, the box CSV's
# class order.
SPLIT_SIDECAR_NAMES: tuple[str, ...] = ("split.csv.json", "split.classes.txt")


def split_file_names() -> set[str]:
    """Every name a run's split may take on disk, over all tasks (sidecars included)."""
    return {*(t.split_file for t in tasks.TASKS.values()), *SPLIT_SIDECAR_NAMES}


def split_file_name(task: str) -> str:
    """The file name a run folder uses for the split of `task`."""
    unknown = UsageError(f"no split file format for task {task!r} in this version")
    return tasks.get(task, unknown).split_file
