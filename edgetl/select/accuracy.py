"""Accuracy next: the same short training for every surviving candidate, scored on validation.

Comparable by construction: one split (made once, written into each candidate's run folder,
exactly the split `finetune` makes from the same recipe), one recipe apart from the backbone,
its weights and input size, the same seed. By default the training is the recipe's phase A on
cached features (the frozen backbone runs once per image; the head trains on pooled features),
which is cheap and ranks backbones by how well their pretrained features separate the classes;
`--phases all` trains the recipe's phases instead. Each candidate folder is an ordinary run
folder (best/, last/, metrics.jsonl, split) without a test report: select never looks at the
test split.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgetl.recipe import PhaseConfig, Recipe
from edgetl.train.rundata import SplitData

DEFAULT_A_EPOCHS = 10  # phase A of a recipe that has none


def training_phases(base: Recipe, phases: str) -> list[dict[str, Any]]:
    """The phases every candidate trains. 'A': the recipe's phase A (a default head phase if
    it has none) without augmentation, so its frozen part runs once and is cached; 'all': the
    recipe's phases as they are."""
    if phases == "all":
        return [p.model_dump(mode="json") for p in base.phases]
    first = next((p for p in base.phases if p.name == "A"), None)
    if first is None:
        first = PhaseConfig(name="A", epochs=DEFAULT_A_EPOCHS, unfreeze="head")
    return [first.model_copy(update={"augment": False, "cache_frozen": True})
            .model_dump(mode="json")]


def train_and_score(recipe: Recipe, split: SplitData, folder: Path, device: str,
                    score: Any) -> dict[str, Any]:
    """Train `recipe` into `folder` on the given split, then score its best checkpoint on the
    validation split; the score record with the seconds both took."""
    from rich.console import Console

    from edgetl.train.resume import discard_failed_start
    from edgetl.train.trainer import trainer_for

    started = time.perf_counter()
    trainer = trainer_for(recipe)(recipe, folder, device=device, resume=False,
                                  console=Console(quiet=True), given_split=split)
    try:
        trainer.fit()
    except BaseException:
        discard_failed_start(folder)
        raise
    fitted = time.perf_counter() - started
    result = score(folder, recipe.selection_metric, trainer.dev)
    result.update(run=str(folder), best_epoch=trainer.state.best_epoch,
                  fit_seconds=round(fitted, 2),
                  seconds=round(time.perf_counter() - started, 2),
                  train_seconds=round(trainer.train_seconds, 2))
    return result
