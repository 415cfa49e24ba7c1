"""A run folder and everything a run keeps in it, behind one object.

`finetune` writes the folder; `evaluate`, `export` (calibration, int8 search), `verify`,
`bench` and `select` read it back. They all go through `RunFolder`, so the file names, the
split the run trained on and the task record are defined once:

    RUN/recipe.yaml      the resolved recipe (after --set)
    RUN/split.csv        the split the run trained on (dense tasks: their own split file)
    RUN/labels.json      the task record (task, class order, ignore index, palette)
    RUN/leakage.json     what the splitter kept apart
    RUN/metrics.jsonl    one line per finished epoch
    RUN/curves.png       the metrics plotted
    RUN/best/, RUN/last/ checkpoints (see `edgetl.checkpoint`; last/ also the training state)
    RUN/qat/             the quantisation-aware checkpoint export's int8 trains (its own
                         metrics.jsonl inside)
    RUN/phase_start.safetensors  the weights the current phase started from (spike guard)
    RUN/test_metrics.json, RUN/summary.json  the closing test report and the run's summary
    RUN/export/          artifacts `edgetl export` writes by default

`edgetl select` names its outputs with the same object: select.json, select.png, recipe.yaml
(the pick); its working folders (data/, latency/, candidates/, deploy/) are its own.
`run_entries()` lists every name a run writes, so `edgetl.train.resume` can tell a run's own
files from anything else.

Import-light: no torch; the data layer is imported inside the methods.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgetl.checkpoint import (
    BEST,
    LAST,
    QAT,
    TRAIN_STATE_FILE,
    CheckpointInfo,
    read_checkpoint_info,
)
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
TEST_REPORT_FILE = "test_metrics.json"
SUMMARY_FILE = "summary.json"
PHASE_START_FILE = "phase_start.safetensors"
FAILED_FILE = "failed.json"  # a run that stopped because it diverged (train/divergence.py)
EXPORT_FOLDER = "export"
CHECKPOINT_NAMES = (BEST, LAST)
TMP_SUFFIX, OLD_SUFFIX = ".tmp", ".old"  # a checkpoint folder mid-swap (train.state.replace_folder)
SELECT_RECORD_FILE = "select.json"
SELECT_SCATTER_FILE = "select.png"
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

    @property
    def test_report_path(self) -> Path:
        return self.path / TEST_REPORT_FILE

    @property
    def summary_path(self) -> Path:
        return self.path / SUMMARY_FILE

    @property
    def phase_start_path(self) -> Path:
        return self.path / PHASE_START_FILE

    @property
    def export_path(self) -> Path:
        return self.path / EXPORT_FOLDER

    def checkpoint_path(self, which: str = BEST) -> Path:
        """A checkpoint folder: `best` or `last`."""
        return self.path / which

    @property
    def qat_path(self) -> Path:
        """The quantisation-aware checkpoint (`edgetl.export.qat_phase`)."""
        return self.path / QAT

    @property
    def best_path(self) -> Path:
        return self.checkpoint_path(BEST)

    @property
    def last_path(self) -> Path:
        return self.checkpoint_path(LAST)

    @property
    def train_state_path(self) -> Path:
        """`last/`'s training state: present once an epoch was saved."""
        return self.last_path / TRAIN_STATE_FILE

    @property
    def select_record_path(self) -> Path:
        return self.path / SELECT_RECORD_FILE

    @property
    def select_scatter_path(self) -> Path:
        return self.path / SELECT_SCATTER_FILE

    def split_path(self, task: str | None = None) -> Path:
        """The split file; its name depends on the task (read from the task record)."""
        from edgetl.data.splitfile import split_file_name

        return self.path / split_file_name(task or self.task_record().task)

    @staticmethod
    def run_entries() -> frozenset[str]:
        """Every name `finetune` writes into a run folder (split files of every task included)."""
        from edgetl.data.splitnames import split_file_names

        checkpoints = {name + suffix for name in (BEST, LAST, QAT)
                       for suffix in ("", TMP_SUFFIX, OLD_SUFFIX)}
        return frozenset({RUN_MARKER, RECIPE_FILE, LABELS_FILE, LEAKAGE_FILE, METRICS_FILE,
                          CURVES_FILE, TEST_REPORT_FILE, SUMMARY_FILE, PHASE_START_FILE,
                          FAILED_FILE, *checkpoints, *split_file_names()})

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
