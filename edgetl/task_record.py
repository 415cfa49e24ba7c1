"""The task record (`TaskRecord`): what a model's outputs mean (its task and class names), and
the task of a record that names none (`DEFAULT_TASK`).

Split from `spec` (the preprocessing contract), which re-exports both. Pure Python, like it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from edgetl import tasks
from edgetl.errors import SpecError

LABELS_SCHEMA = "edgetl.labels/1"


# The task of a record (recipe, data set) that names none: records from before edgetl knew other
# tasks are classifiers.
DEFAULT_TASK: str = tasks.classification.TASK.name


@dataclass(frozen=True)
class TaskRecord:
    """What a model's outputs mean: the task and the class names in output order.

    Index i of a classifier's logits, a detector's `labels` or a segmenter's mask values is
    `names[i]`. Semantic segmentation also records its `background` class (if one is named),
    the `ignore_index` that is never trained on nor scored, and a `palette` (RGB per class) for
    drawing masks. Travels beside the spec: run folder, checkpoints, every artifact.
    """

    names: tuple[str, ...]
    task: str = DEFAULT_TASK
    schema: str = field(default=LABELS_SCHEMA)
    background: int | None = None
    ignore_index: int | None = None
    palette: tuple[tuple[int, int, int], ...] | None = None

    def __post_init__(self) -> None:
        if isinstance(self.names, list):
            object.__setattr__(self, "names", tuple(self.names))
        if self.palette is not None:
            object.__setattr__(self, "palette", tuple(tuple(int(v) for v in c)
                                                      for c in self.palette))
        least = tasks.get(self.task, SpecError(f"unknown task {self.task!r}",
                                               f"use one of {', '.join(tasks.names())}")
                          ).min_classes
        if len(self.names) < least:
            raise SpecError(f"{self.task} needs at least {least} class(es), got "
                            f"{len(self.names)}")
        if len(set(self.names)) != len(self.names):
            raise SpecError(f"class names must be unique, got {list(self.names)}")
        if any(not isinstance(n, str) or not n for n in self.names):
            raise SpecError("class names must be non-empty strings")
        if self.background is not None and not 0 <= self.background < len(self.names):
            raise SpecError(f"background index {self.background} is not a class index")
        if self.ignore_index is not None and 0 <= self.ignore_index < len(self.names):
            raise SpecError(f"ignore index {self.ignore_index} is a class index; it must lie "
                            f"outside 0..{len(self.names) - 1}")
        if self.palette is not None and (len(self.palette) != len(self.names) or any(
                len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.palette)):
            raise SpecError("the palette needs one RGB colour (0..255) per class")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def index(self, name: str) -> int:
        try:
            return self.names.index(name)
        except ValueError as exc:
            raise SpecError(f"label {name!r} is not one of {list(self.names)}") from exc

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the dense tasks' fields only when set (a classifier's record is the
        same as before they existed)."""
        data: dict[str, Any] = {"names": list(self.names), "task": self.task,
                                "schema": self.schema}
        for key in ("background", "ignore_index"):
            if getattr(self, key) is not None:
                data[key] = getattr(self, key)
        if self.palette is not None:
            data["palette"] = [list(c) for c in self.palette]
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskRecord:
        if not isinstance(data, dict) or "names" not in data:
            raise SpecError("task record must be a JSON object with 'names'")
        palette = data.get("palette")
        return cls(names=tuple(data["names"]), task=data.get("task", DEFAULT_TASK),
                   schema=data.get("schema", LABELS_SCHEMA),
                   background=data.get("background"), ignore_index=data.get("ignore_index"),
                   palette=tuple(tuple(c) for c in palette) if palette else None)

    def fingerprint(self) -> str:
        text = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode("utf-8")).hexdigest()
