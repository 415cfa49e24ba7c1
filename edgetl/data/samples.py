"""The records every data source produces: `Sample` (one image) and `DataSet` (all of them).

Sources, the splitter and training only exchange these two types, so a folder tree, a CSV
manifest and a built-in data set look the same to everything downstream. Pure Python on purpose.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# defined with the errors so `edgetl.artifact.reference` warns without importing `data`
from edgetl.errors import DataWarning as DataWarning
from edgetl.spec import DEFAULT_TASK

if TYPE_CHECKING:
    from edgetl.data.targets import Target

SPLITS: tuple[str, ...] = ("train", "val", "test")
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp"}
)


def is_image_name(name: str) -> bool:
    """True for file names with an image extension (case-insensitive); hidden files excluded."""
    base = os.path.basename(name)
    return not base.startswith(".") and os.path.splitext(base)[1].lower() in IMAGE_EXTENSIONS


NO_CLASS = "(none)"  # the stratum of a dense-task image that holds no annotated class


def stratum_key(classes: tuple[str, ...]) -> str:
    """One string for a set of classes ('car+person'; '(none)' when empty)."""
    return "+".join(sorted(classes)) or NO_CLASS


@dataclass(frozen=True)
class Sample:
    """One image: absolute path, label, optional group, optional split, optional target.

    `group` ties samples that must stay in one split (same patient, module, scene); `split` is
    'train', 'val', 'test' or None (not assigned yet, or held out by the splitter).
    Classification: `label` is the class and `target` is None. Dense tasks: `target` holds the
    annotation (`edgetl.data.targets`) and `label` its stratum (`stratum_key` of the classes it
    holds), which is what class-stratified helpers (calibration picks, bench images) balance.
    """

    path: str
    label: str
    group: str | None = None
    split: str | None = None
    target: Target | None = None

    def __post_init__(self) -> None:
        if self.split is not None and self.split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS} or None, not {self.split!r}")

    @property
    def classes(self) -> tuple[str, ...]:
        """The classes this image holds: its label, or its target's classes."""
        return (self.label,) if self.target is None else self.target.classes()

    def with_split(self, split: str | None) -> Sample:
        return dataclasses.replace(self, split=split)


@dataclass
class DataSet:
    """A labelled image collection plus where it came from.

    `origin` re-opens the same source through `load_data` (it is what checkpoints record):
    'elpv', 'elpv:4class', an absolute folder path or an absolute CSV path. `classes` fixes the
    label order (index i is class i): sorted unless the source defines its own order. `task`
    says what the samples are labelled for (a name `edgetl.tasks.get` knows).
    """

    name: str
    classes: list[str]
    samples: list[Sample]
    origin: str
    description: str = ""
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)
    notes: list[str] = field(default_factory=list)  # what loading/splitting decided, for humans
    task: str = DEFAULT_TASK

    @property
    def has_splits(self) -> bool:
        """True when at least one sample carries a split."""
        return any(s.split is not None for s in self.samples)

    def by_split(self, name: str) -> list[Sample]:
        """Samples of one split, in data-set order."""
        if name not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, not {name!r}")
        return [s for s in self.samples if s.split == name]

    def counts(self, split: str | None = None) -> dict[str, int]:
        """Images per class in class order (zeros included); one split when `split` is given.

        Dense tasks count the images that hold each class (an image may count for several).
        """
        counts = dict.fromkeys(self.classes, 0)
        for sample in self.samples if split is None else self.by_split(split):
            for name in sample.classes:
                counts[name] = counts.get(name, 0) + 1
        return counts

    def split_counts(self) -> dict[str, dict[str, int]]:
        """Per split, images per class; only the splits that hold samples."""
        return {name: self.counts(name) for name in SPLITS if self.by_split(name)}

    def class_index(self) -> dict[str, int]:
        """Label -> index in `classes` (the order a model's outputs follow)."""
        return {name: i for i, name in enumerate(self.classes)}

    def replace(self, **changes: object) -> DataSet:
        """A copy with some fields changed (lists are copied, never shared)."""
        fields = {
            "samples": list(self.samples),
            "classes": list(self.classes),
            "skipped": list(self.skipped),
            "notes": list(self.notes),
        }
        fields.update(changes)
        return dataclasses.replace(self, **fields)
