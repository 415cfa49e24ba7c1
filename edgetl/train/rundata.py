"""The run's data, split once: loaded, split leakage-safe, stored in the run folder, reused.

A resumed run reads the stored split and task record back verbatim (a CSV alone would sort the
classes), so it trains on exactly the images it started with.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

from edgetl import tasks
from edgetl.data.samples import DataSet
from edgetl.recipe import Recipe
from edgetl.runfolder import RunFolder
from edgetl.spec import TaskRecord


def task_record_of(data: DataSet) -> TaskRecord:
    """The task record a data set implies: its task and class order (semantic: also the
    ignore index and, for palette masks, each class's colour)."""
    mask_record = getattr(data, "record", None)
    if mask_record is not None and tasks.get(data.task).dense:  # a pixel map's record
        colours = mask_record.class_colours()
        return TaskRecord(tuple(data.classes), task=data.task,
                          ignore_index=mask_record.ignore_index,
                          palette=tuple(colours) if colours else None)
    return TaskRecord(tuple(data.classes), task=data.task)


def _source(recipe: Recipe) -> str:
    """The recipe's data source; the built-in aerial tree set is tiled to the input size."""
    from edgetl.data.detection.neon import NEON_NAME
    from edgetl.models.specs import DENSE_INPUT_SIZE
    from edgetl.recipe import require_data_source

    source = require_data_source(recipe)
    if source.lower() == NEON_NAME and tasks.get(recipe.task).tiles_to_input_size:
        return f"{NEON_NAME}:{recipe.model.input_size or DENSE_INPUT_SIZE}"
    return source


@dataclass(frozen=True)
class SplitData:
    """A data set split leakage-safe, its task record and the leakage report that proves it."""

    data: DataSet
    record: TaskRecord
    leakage: dict[str, Any]


def make_split(recipe: Recipe) -> SplitData:
    """Load the recipe's data and split it (seeded, stratified, grouped, near-duplicates kept
    together). For classification it depends only on the data, the fractions, the seed and
    the near-duplicate threshold, so every recipe that shares them (any backbone or input size)
    gets this split; the built-in neon-trees detection set is tiled to the input size."""
    from edgetl.data.samples import DataWarning
    from edgetl.data.sources import load_data
    from edgetl.data.split import conflict_warning, leakage_report, make_splits
    from edgetl.errors import DataError

    data = load_data(_source(recipe), task=recipe.task)
    if recipe.data.group_from_name is not None:
        from edgetl.data.grouping import group_from_name

        data = group_from_name(data, recipe.data.group_from_name)
    data = make_splits(data, recipe.data.val_fraction, recipe.data.test_fraction,
                       recipe.train.seed, recipe.data.near_duplicate_threshold)
    leakage = leakage_report(data, near_dup_threshold=recipe.data.near_duplicate_threshold)
    same = [c for c in leakage["label_conflicts"] if c["exact"]]  # near-duplicates may differ
    if same:  # what `data inspect` lists, said where it matters
        said = conflict_warning(same)
        if recipe.data.label_conflicts == "refuse":
            raise DataError(said, "or set data.label_conflicts: warn to train on them anyway")
        warnings.warn(said, DataWarning, stacklevel=2)
    return SplitData(data, task_record_of(data), leakage)


def split_once(recipe: Recipe, run: RunFolder, resume: bool,
               given: SplitData | None = None) -> tuple[DataSet, TaskRecord]:
    """Load and split the recipe's data (or take the `given` split, made once for several
    runs by `edgetl select`), store it in the run folder; a resumed run reads it back."""
    if resume and run.labels_path.is_file():
        record = run.task_record()
        if run.split_path(record.task).is_file():
            return run.dataset(), record
    split = given if given is not None else make_split(recipe)
    run.write_split(split.data, split.record, split.leakage)
    return split.data, split.record
