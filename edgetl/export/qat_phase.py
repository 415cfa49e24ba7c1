"""The quantisation-aware phase: from the run's best checkpoint to `RUN/qat/`, a checkpoint of
its own whose model carries NNCF's fake quantisers.

The steps every task shares are here: the deployed shape and the quantisers (`qat_model`),
calibrated on the same stratified training images as `onnx-int8`; the float model kept as the
teacher; a deadline; the checkpoint written to a fresh folder and swapped in whole, with the
phase's own `metrics.jsonl`. How a task trains (its data, its loss with distillation, its
validation figures) is the task's `qat_trainer`. A QAT checkpoint made from the same float
weights with the same settings is reused, so a second export does not train again.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edgetl import tasks
from edgetl.checkpoint import QUANTISERS_FILE, read_checkpoint_info, save_checkpoint
from edgetl.clock import Deadline, parse_duration
from edgetl.errors import ArtifactError
from edgetl.export.calibration import calibration_batches, select_calibration_samples
from edgetl.export.context import ExportContext
from edgetl.io import append_line, atomic_write_json, json_text
from edgetl.recipe_sections import QuantizeConfig
from edgetl.runfolder import METRICS_FILE, RunFolder
from edgetl.spec import PreprocessSpec, TaskRecord


@dataclass
class QatJob:
    """What a task's `qat_trainer` gets: both models, the run, the settings and where to log."""

    teacher: Any  # the float model (eval, frozen)
    student: Any  # the fake-quantised model it trains in place
    run: RunFolder
    spec: PreprocessSpec  # the run's (model input) spec, not an embedded one
    record: TaskRecord
    settings: QuantizeConfig
    batch_size: int
    seed: int
    deadline: Deadline
    log: Callable[[dict[str, Any]], None]  # one metrics line (the phase's metrics.jsonl)
    budgets: Any = None  # verify's default gates for the artifact being made (task's fields)
    console: Any = None


@dataclass
class QatTraining:
    """What a task's trainer returns: the state it chose, the validation figures before and
    after, and how long it trained."""

    state: dict[str, Any]
    before: dict[str, Any]
    after: dict[str, Any]
    epochs: float
    steps: int
    ended_by: str  # "planned length", "max_steps" or "time budget"
    chosen_epoch: int
    lines: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class QatCheckpoint:
    folder: Path
    record: dict[str, Any]  # the checkpoint record's `qat` entry
    reused: bool


def recipe_quantize(run: RunFolder) -> QuantizeConfig | None:
    """The run recipe's `quantize:` section (None: a run without a recipe, or without one)."""
    return run.recipe().quantize if run.recipe_path.is_file() else None


def _identity(ctx: ExportContext, settings: QuantizeConfig) -> dict[str, Any]:
    """What a QAT checkpoint depends on: the float weights, the settings, the seed."""
    return {"source_weights_sha256": ctx.info.weights_sha256(),
            "source_checkpoint": ctx.options.checkpoint,
            "settings": settings.model_dump(mode="json"), "seed": ctx.options.seed}


def _existing(folder: Path, identity: dict[str, Any]) -> dict[str, Any] | None:
    """The `qat` record of a complete QAT checkpoint made from the same inputs, else None."""
    try:
        record = read_checkpoint_info(folder).record.get("quantisation_aware") or {}
    except ArtifactError:
        return None
    if record.get("identity") != identity or not (folder / QUANTISERS_FILE).is_file():
        return None
    return record


def ensure_qat_checkpoint(ctx: ExportContext, settings: QuantizeConfig,
                          console: Any = None) -> QatCheckpoint:
    """RUN/qat/ for this float checkpoint and these settings: reused when it exists, trained
    otherwise (in a fresh folder swapped in at the end, so a stopped phase leaves none)."""
    from edgetl.train.state import replace_folder

    run = ctx.run_folder
    identity = _identity(ctx, settings)
    found = _existing(run.qat_path, identity)
    if found is not None:
        return QatCheckpoint(run.qat_path, found, reused=True)
    trainer = tasks.get(ctx.info.task_record.task).load("qat_trainer")
    written: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        written.update(_train_into(ctx, settings, trainer, tmp, identity, console))

    replace_folder(run.qat_path, write)
    return QatCheckpoint(run.qat_path, written, reused=False)


def _stderr_console() -> Any:
    from rich.console import Console

    return Console(stderr=True)


def _calibration_tensors(ctx: ExportContext, images: int) -> list[Any]:
    import torch

    from edgetl.export.calibration import training_samples

    samples = select_calibration_samples(training_samples(ctx.run), images, ctx.options.seed)
    return [torch.from_numpy(batch[i:i + 1]) for batch in
            calibration_batches(samples, ctx.info.spec, 32) for i in range(len(batch))]


def _train_into(ctx: ExportContext, settings: QuantizeConfig, trainer: Callable[..., Any],
                folder: Path, identity: dict[str, Any], console: Any) -> dict[str, Any]:
    """Build the fake-quantised model, let the task train it, write the checkpoint."""
    import torch

    from edgetl.export.preprocess_graph import example_input
    from edgetl.export.qat_model import (
        SCHEME,
        deployed_shape,
        insert_quantisers,
        network_parts,
        quantiser_config,
    )
    from edgetl.models.deployable import deployable

    started = time.perf_counter()
    torch.manual_seed(ctx.options.seed)
    info = ctx.info
    teacher = ctx.load_model().eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    student = ctx.load_model()
    shape = deployed_shape(student, example_input(info.spec))
    calibration = _calibration_tensors(ctx, settings.calibration_images)
    parts = network_parts(student, info.task_record.task)
    network, _, _ = deployable(student, info.task_record.task)
    student = insert_quantisers(student, calibration, len(calibration), parts, network.eval())
    prepared_s = time.perf_counter() - started
    recipe = ctx.run_folder.recipe() if ctx.run_folder.recipe_path.is_file() else None
    batch = settings.batch_size or (recipe.train.batch_size if recipe else 32)
    budget = parse_duration(settings.time_budget, "quantize.time_budget") \
        if settings.time_budget else None
    metrics = folder / METRICS_FILE

    job = QatJob(teacher=teacher, student=student, run=ctx.run_folder, spec=info.spec,
                 record=info.task_record, settings=settings, batch_size=batch,
                 seed=ctx.options.seed, deadline=Deadline(budget),
                 log=lambda line: append_line(metrics, json_text({"phase": "QAT", **line})),
                 budgets=tasks.get(info.task_record.task).load("verify_budgets").default(
                     ctx.fmt.name, ctx.fmt.precision),
                 console=console or _stderr_console())
    training: QatTraining = trainer(job)
    student.load_state_dict(training.state)
    student.eval()
    record = {
        "identity": identity,
        "scheme": SCHEME,
        **shape,
        "calibration_images": len(calibration),
        "quantised_parts": parts,
        "batch_size": batch,
        "epochs": round(training.epochs, 3),
        "steps": training.steps,
        "ended_by": training.ended_by,
        "chosen_epoch": training.chosen_epoch,
        "validation_before": training.before,
        "validation_after": training.after,
        "prepare_seconds": round(prepared_s, 1),
        "seconds": round(time.perf_counter() - started, 1),
    }
    atomic_write_json(folder / QUANTISERS_FILE, quantiser_config(student, parts))
    save_checkpoint(folder, student, architecture=info.architecture, head=info.head,
                    spec=info.spec, task_record=info.task_record,
                    extra={"data": info.record.get("data"), "phase": "QAT",
                           "quantisation_aware": record})
    return record


def no_qat_trainer(job: QatJob) -> QatTraining:
    """The `qat_trainer` of a task whose quantisation-aware training is not built yet."""
    from edgetl.errors import UsageError

    raise UsageError(f"quantisation-aware training is not available for {job.record.task} "
                     "models yet", "export without --qat (post-training int8 with its "
                     "float-layer search)")


def load_qat_checkpoint(folder: Path) -> Any:
    """The fake-quantised model of a QAT checkpoint (eval, CPU)."""
    from safetensors.torch import load_file

    from edgetl.checkpoint import check_weights
    from edgetl.export.preprocess_graph import example_input
    from edgetl.export.qat_model import load_qat_model
    from edgetl.models.loading import build_skeleton

    info = read_checkpoint_info(folder)
    check_weights(info)
    try:
        config = json.loads((info.folder / QUANTISERS_FILE).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ArtifactError(f"{info.folder / QUANTISERS_FILE} cannot be read: {exc}",
                            "delete the qat folder; export will train it again") from exc
    return load_qat_model(build_skeleton(info), example_input(info.spec), config,
                          load_file(str(info.weights_path)))
