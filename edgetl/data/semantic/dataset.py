"""The semantic data set and the pair rows it is read from: their own module so the loader and
the split file share them without importing each other."""

from __future__ import annotations

from dataclasses import dataclass, field

from edgetl import tasks
from edgetl.data.samples import DataSet
from edgetl.data.semantic.problems import Problem
from edgetl.data.semantic.record import MaskRecord

SEMANTIC_TASK: str = tasks.semantic.TASK.name  # the task every data set of this package serves


@dataclass
class SemanticDataSet(DataSet):
    """A `DataSet` of semantic samples plus the record that decodes their masks.

    `record` is what `read_mask` needs (and what a split file's sidecar and the task record
    store); `problems` keeps the structured form of `skipped` for the inspector;
    `rasterised_from` names the COCO JSON when the masks were painted from it.
    """

    task: str = SEMANTIC_TASK
    record: MaskRecord | None = None
    problems: list[Problem] = field(default_factory=list)
    rasterised_from: str | None = None

    def replace(self, **changes: object) -> SemanticDataSet:
        changes.setdefault("problems", list(self.problems))
        return super().replace(**changes)  # type: ignore[return-value]


@dataclass(frozen=True)
class Row:
    """A pair waiting to be checked: image, mask, group and split."""

    image: str
    mask: str
    group: str | None = None
    split: str | None = None
