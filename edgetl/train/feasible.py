"""Can this run be trained and scored? Checked before the first epoch, not after the last.

Four images used to train to the end and then fail on an empty test split; a class with one
image trained with no validation or test sample and no word about it. Fatal: nothing to train
(every phase 0 epochs), an empty test split (the run ends with the test report). Warned: no
validation split, and classes a validation or test split cannot score.
"""

from __future__ import annotations

import warnings
from typing import Any

from edgetl.errors import DataError, RecipeError


def check_recipe(recipe: Any) -> None:
    """A recipe whose phases train nothing is an error (its run would have no checkpoint)."""
    if not any(phase.trains for phase in recipe.phases):
        names = ", ".join(phase.name for phase in recipe.phases)
        raise RecipeError(f"every phase ({names}) has 0 epochs: nothing would be trained",
                          "give at least one phase epochs >= 1, e.g. --set phases.A.epochs=1")


def check_splits(data: Any, classes: tuple[str, ...], val_fraction: float,
                 test_fraction: float, metric: str = "val_accuracy") -> list[str]:
    """Raise for a split the run cannot do without; return warnings for what it cannot score
    (`metric`: the run's selection metric, named as it is: val_map, val_miou, ...)."""
    sizes = {name: len(data.by_split(name)) for name in ("train", "val", "test")}
    total = sum(sizes.values())
    if not sizes["test"]:
        raise DataError(
            f"the test split is empty ({total} images: {sizes['train']} train, {sizes['val']} "
            f"val): the run would train and then have nothing to report on",
            f"add images, give a test split, or raise data.test_fraction ({test_fraction})")
    notes: list[str] = []
    if not sizes["val"]:
        notes.append(f"the validation split is empty (data.val_fraction {val_fraction}): "
                     "every epoch counts as best and early stopping never triggers")
    for name, what in (("val", f"the validation metric {metric}"), ("test", "the test report")):
        if not sizes[name]:
            continue
        present = {c for s in data.by_split(name) for c in s.classes}
        missing = [c for c in classes if c not in present]
        if missing:
            notes.append(f"the {name} split has no image of class(es) {', '.join(missing)}: "
                         f"{what} cannot score them")
    for note in notes:
        warnings.warn(note, stacklevel=2)
    return notes
