"""Which task this package reads for: objects with boxes alone, or objects that carry masks.

The detection readers serve every task whose `data_reader` is `load_detection`; a task's
`object_masks` says whether its objects carry masks. Asked here, so no reader spells a task.
"""

from __future__ import annotations

from edgetl import tasks

READER = "edgetl.data.detection:load_detection"


def dense_tasks() -> tuple[str, ...]:
    """The tasks whose data this package reads, in the tasks' order."""
    return tuple(t.name for t in tasks.TASKS.values() if t.data_reader == READER)


def reads_objects(task: str) -> bool:
    """True when this package reads `task`'s data (objects with boxes, perhaps masks)."""
    known = tasks.TASKS.get(task)
    return known is not None and known.data_reader == READER


def task_for(masks: bool) -> str:
    """The task this package reads objects with masks (True) or with boxes alone (False) for."""
    return next(t.name for t in tasks.TASKS.values()
                if t.data_reader == READER and t.object_masks == masks)


def has_masks(task: str) -> bool:
    """True when `task`'s objects carry masks (False for a name no task has)."""
    known = tasks.TASKS.get(task)
    return known is not None and known.object_masks
