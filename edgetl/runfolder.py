"""A run folder and everything a run keeps in it, behind one object.

`finetune` writes the folder; `evaluate`, `export` (calibration, int8 search), `verify`,
`bench` and `select` read it back. They all go through `RunFolder`, so the file names, the
split the run trained on and the task record are defined once:

    RUN/recipe.yaml      the resolved recipe (after --set)
    RUN/split.csv        the split the run trained on (dense tasks: their own split file)
    RUN/labels.json      the task record (task, class order, ignore index, palette)
    RUN/leakage.json     what the splitter kept apart
    RUN/metrics.jsonl    one line per finished epoch
    RUN/best/, RUN/last/ checkpoints (see `edgetl.checkpoint`)

Import-light: no torch; the data layer is imported inside the methods.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgetl.checkpoint import CheckpointInfo, read_checkpoint_info
from edgetl.errors import ArtifactError, DataError, RecipeError, UsageError
from edgetl.io import atomic_write_json, atomic_write_text
from edgetl.spec import TaskRecord

if TYPE_CHECKING:
    from edgetl.data.samples import DataSet, Sample
    from edgetl.recipe import Recipe

RECIPE_FILE = "recipe.yaml"
METRICS_FILE = "metrics.jsonl"
LABELS_FILE = "labels.json"
LEAKAGE_FILE = "leakage.json"
CURVES_FILE = "curves.png"
RUN_MARKER = ".edgetl-run"  # written first into a new run folder (edgetl.train.resume)
SPLIT_NAMES = ("train", "val", "test")


@dataclass(frozen=True)
class RunFolder:
    """The files of one run; nothing is read until asked for."""

    path: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))

    # ---------------------------------------------------------------- names
    @property
    def recipe_path(self) -> Path:
        return self.path / RECIPE_FILE

    @property
    def metrics_path(self) -> Path:
        return self.path / METRICS_FILE

    @property
    def labels_path(self) -> Path:
        return self.path / LABELS_FILE

    @property
    def leakage_path(self) -> Path:
        return self.path / LEAKAGE_FILE

    @property
    def curves_path(self) -> Path:
        return self.path / CURVES_FILE

    def split_path(self, task: str | None = None) -> Path:
        """The split file; its name depends on the task (read from the task record)."""
        from edgetl.data.splitfile import split_file_name

        return self.path / split_file_name(task or self.task_record().task)

    # ---------------------------------------------------------------- reading
    def exists(self) -> bool:
        return self.recipe_path.is_file()

    def recipe(self) -> Recipe:
        from edgetl.recipe import load_recipe

        return load_recipe(self.recipe_path)

    def task_record(self) -> TaskRecord:
        """The run's task record (its class order is the model's output order)."""
        if not self.labels_path.is_file():
            raise ArtifactError(f"{self.path} has no {LABELS_FILE}",
                                "pass a run folder written by 'edgetl finetune'")
        try:
            return TaskRecord.from_dict(json.loads(self.labels_path.read_text()))
        except json.JSONDecodeError as exc:
            raise ArtifactError(f"{self.labels_path} is not valid JSON: {exc}") from exc

    def checkpoint(self, which: str = "best") -> CheckpointInfo:
        return read_checkpoint_info(self.path, which)

    def dataset(self) -> DataSet:
        """The run's data exactly as it was split (images were checked when the run began)."""
        from edgetl.data.splitfile import read_split

        record = self.task_record()
        path = self.split_path(record.task)
        if not path.is_file():
            raise DataError(f"the run's split file {path} is missing",
                            "it holds the exact images the run trained and tested on; restore "
                            "it or re-run finetune")
        return read_split(path, record)

    def samples(self, split: str) -> list[Sample]:
        """The samples of one split of the run, in split-file order."""
        if split not in SPLIT_NAMES:
            raise UsageError(f"unknown split {split!r}", "use train, val or test")
        samples = self.dataset().by_split(split)
        if not samples:
            raise DataError(f"the run {self.path} has no images in its {split} split",
                            "pick another split with --split")
        return samples

    # ---------------------------------------------------------------- writing
    def start(self, recipe: Recipe, resume: bool) -> Recipe:
        """New run: write the resolved recipe. Resume: the stored recipe wins; a different one
        is an error rather than a silent mix of two configurations."""
        if resume:
            if not self.recipe_path.is_file():
                raise RecipeError(f"nothing to resume in {self.path}: it has no {RECIPE_FILE}",
                                  "start the run without --resume")
            previous = self.recipe()
            if previous.sha256() != recipe.sha256():
                raise RecipeError(
                    f"--resume with a recipe that differs from the one {self.path} started with",
                    f"rerun with the same recipe and --set values, or use {self.recipe_path} "
                    "itself")
            return previous
        if self.path.exists() and any(p.name != RUN_MARKER for p in self.path.iterdir()):
            raise RecipeError(f"run folder {self.path} already exists and is not empty",
                              "pass --resume to continue it, or another --out")
        self.path.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.recipe_path, recipe.to_yaml())
        return recipe

    def write_split(self, data: DataSet, record: TaskRecord, leakage: dict) -> None:
        """Store the split, the task record and the leakage report (each atomically)."""
        from edgetl.data.splitfile import write_split

        atomic_write_json(self.leakage_path, leakage)
        write_split(data, self.split_path(record.task))
        atomic_write_json(self.labels_path, record.to_dict())

    def truncate_metrics(self, finished_epochs: int) -> None:
        """Keep exactly one line per finished epoch (a crash may have logged an unsaved one)."""
        if not self.metrics_path.is_file():
            return
        keep = [line for line in self.metrics_path.read_text().splitlines()
                if line.strip() and json.loads(line)["epoch"] <= finished_epochs]
        atomic_write_text(self.metrics_path, "".join(line + "\n" for line in keep))
