"""From per-image annotations to a `DataSet`: class lists, stratum labels, one order.

Readers collect `Record`s (image, target, group, split) and a `ClassNames`; `assemble` turns
them into a `DataSet` whose samples are sorted by path (a data set does not depend on the order
a folder listing or a JSON file happened to have) and whose labels are the stratum keys the
splitter and the class-balanced helpers use.
"""

from __future__ import annotations

from dataclasses import dataclass

from edgetl.data.detection.problems import Problems
from edgetl.data.samples import DataSet, Sample, stratum_key
from edgetl.data.targets import BoxTarget, InstanceTarget
from edgetl.errors import DataError


@dataclass(frozen=True)
class Record:
    """One usable image and its annotation, before it becomes a `Sample`."""

    path: str
    target: BoxTarget | InstanceTarget
    group: str | None = None
    split: str | None = None


class ClassNames:
    """The class order: fixed by a file (other names are problems) or the sorted names found."""

    def __init__(self, fixed: list[str] | None = None, source: str = "") -> None:
        if fixed is not None and len(set(fixed)) != len(fixed):
            dup = next(n for n in fixed if fixed.count(n) > 1)
            raise DataError(f"{source} lists class {dup!r} twice", hint="one name per class")
        self.fixed = list(fixed) if fixed is not None else None
        self.source = source
        self.found: set[str] = set()

    def accept(self, name: str) -> bool:
        """True when `name` may be used (always, unless a fixed list lacks it)."""
        if self.fixed is not None and name not in self.fixed:
            return False
        self.found.add(name)
        return True

    def unknown(self, name: str) -> str:
        """The detail of an unknown-class problem."""
        return f"{name!r} is not in {self.source} ({', '.join(self.fixed or [])})"

    def order(self) -> list[str]:
        return list(self.fixed) if self.fixed is not None else sorted(self.found)


def to_boxes(target: BoxTarget | InstanceTarget) -> BoxTarget:
    """The boxes of an instance target (detection from an instance format)."""
    if isinstance(target, BoxTarget):
        return target
    return BoxTarget(boxes=target.boxes, labels=target.labels, crowd=target.crowd,
                     image_size=target.image_size)


def assemble(*, name: str, origin: str, task: str, classes: list[str], records: list[Record],
             problems: Problems, description: str, notes: list[str] | None = None) -> DataSet:
    """The `DataSet` of a reader (not validated, nothing warned yet: `load_detection` does it)."""
    samples = [Sample(path=r.path, label=stratum_key(r.target.classes()), group=r.group,
                      split=r.split, target=r.target)
               for r in sorted(records, key=lambda r: r.path)]
    return DataSet(name=name, classes=classes, samples=samples, origin=origin,
                   description=description, skipped=list(problems.items),
                   notes=list(notes or []), task=task)
