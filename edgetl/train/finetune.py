"""The phased fine-tuning run: data -> split -> model -> phases A/B/C -> checkpoints -> test report.

Resumable: every finished epoch leaves `last/` (weights, optimizer, phase/epoch state) complete on
disk, and `--resume` rebuilds the phase's frozen state from the recipe before loading it, so a
resumed run never trains what the recipe froze (the failure Lightning #21901 describes).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgetl.errors import RecipeError
from edgetl.io import atomic_write_json, atomic_write_text
from edgetl.recipe import Recipe
from edgetl.spec import LabelSpec, PreprocessSpec

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
SPLIT_FILE = "split.csv"
LABELS_FILE = "labels.json"


@dataclass
class RunResult:
    run_dir: Path
    test_report: dict[str, Any]
    best_epoch: int | None
    best_value: float | None
    train_seconds: float


# ---------------------------------------------------------------------------- run folder
def prepare_run_folder(out: Path, recipe: Recipe, resume: bool) -> Recipe:
    """New run: write the resolved recipe. Resume: the stored recipe wins; a different one is an
    error rather than a silent mix of two configurations."""
    from edgetl.recipe import load_recipe

    stored = out / RECIPE_FILE
    if resume:
        if not stored.is_file():
            raise RecipeError(f"nothing to resume in {out}: it has no {RECIPE_FILE}",
                              "start the run without --resume")
        previous = load_recipe(stored)
        if previous.sha256() != recipe.sha256():
            raise RecipeError(
                f"--resume with a recipe that differs from the one {out} started with",
                f"rerun with the same recipe and --set values, or use {stored} itself",
            )
        return previous
    if out.exists() and any(p.name != ".edgetl-run" for p in out.iterdir()):  # runfolder.MARKER
        raise RecipeError(f"run folder {out} already exists and is not empty",
                          "pass --resume to continue it, or another --out")
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stored, recipe.to_yaml())
    return recipe


def truncate_metrics(path: Path, finished_epochs: int) -> None:
    """Keep exactly one line per finished epoch (a crash may have logged an unsaved epoch)."""
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines()
            if line.strip() and json.loads(line)["epoch"] <= finished_epochs]
    atomic_write_text(path, "".join(line + "\n" for line in keep))


# ---------------------------------------------------------------------------- set-up pieces
def resolve_device(requested: str) -> str:
    import torch

    from edgetl.errors import BackendUnavailableError

    if requested == "cuda" and not torch.cuda.is_available():
        raise BackendUnavailableError("--device cuda was asked for but no CUDA device is visible",
                                      "use --device cpu or auto")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def resolve_spec(recipe: Recipe, weights_spec: PreprocessSpec) -> PreprocessSpec:
    """The weights' spec, overridden only by what the recipe says (recorded in `source`)."""
    spec = weights_spec
    changes: list[str] = []
    if recipe.model.input_size and recipe.model.input_size != spec.input_size[0]:
        spec = spec.at_size(recipe.model.input_size)
        changes.append(f"input_size={recipe.model.input_size}")
    overrides = {k: v for k, v in recipe.preprocess.model_dump().items() if v is not None}
    crop_pct = overrides.pop("crop_pct", None)
    if crop_pct is not None:
        spec = spec.with_crop_pct(crop_pct)
        changes.append(f"crop_pct={crop_pct}")
    if overrides:
        spec = spec.with_overrides(**overrides)
        changes.extend(f"{k}={v}" for k, v in overrides.items())
    if changes:
        spec = spec.with_overrides(source=f"{weights_spec.source}; recipe: {', '.join(changes)}")
    return spec


def split_data(recipe: Recipe, out: Path, resume: bool):  # noqa: ANN201 - (DataSet, LabelSpec)
    """Load and split the data once. The split manifest and the class order are stored in the run
    folder; a resumed run reuses both verbatim (a CSV alone would sort the classes)."""
    from edgetl.data.sources import load_data
    from edgetl.data.split import leakage_report, make_splits, write_manifest

    split_file, labels_file = out / SPLIT_FILE, out / LABELS_FILE
    if resume and split_file.is_file() and labels_file.is_file():
        labels = LabelSpec.from_dict(json.loads(labels_file.read_text()))
        return load_data(str(split_file), check_images=False), labels
    data = load_data(recipe.data.source)
    data = make_splits(data, recipe.data.val_fraction, recipe.data.test_fraction,
                       recipe.train.seed, recipe.data.near_duplicate_threshold)
    labels = LabelSpec(tuple(data.classes))
    atomic_write_json(out / "leakage.json",
                      leakage_report(data, near_dup_threshold=recipe.data.near_duplicate_threshold))
    write_manifest(data, split_file)
    atomic_write_json(labels_file, labels.to_dict())
    return data, labels


def label_indices(samples: list, labels: LabelSpec) -> list[int]:
    return [labels.index(s.label) for s in samples]


def is_better(metric: str, value: float, best: float | None, min_delta: float = 0.0) -> bool:
    if best is None:
        return True
    return value < best - min_delta if metric == "val_loss" else value > best + min_delta


# ---------------------------------------------------------------------------- the run
def run_finetune(
    recipe: Recipe,
    out: str | Path,
    *,
    device: str = "auto",
    resume: bool = False,
    console: Any = None,
) -> RunResult:
    """Train the recipe's phases into `out`; returns the test report of the best checkpoint."""
    from rich.console import Console

    from edgetl.train.runfolder import discard_failed_start, discard_partial_report
    from edgetl.train.trainer import PhasedTrainer

    try:
        trainer = PhasedTrainer(recipe, Path(out), device=device, resume=resume,
                                console=console or Console())
        return trainer.run()
    except BaseException:  # failed or interrupted before its first epoch: nothing blocks a retry
        discard_failed_start(Path(out))
        discard_partial_report(Path(out))
        raise
