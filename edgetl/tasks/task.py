"""The `Task` record: what a task states for every layer (slots), and how a code slot is
imported."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field, fields
from typing import Any

CODE = {"code": True}  # field metadata: the slot holds a "module:attr" string


@dataclass(frozen=True)
class Task:
    """One task's definition. Code slots are `"module:attr"` strings (see `load`)."""

    name: str
    summary: str  # one line, for help text and docs
    min_classes: int  # the fewest classes a model of this task can learn

    # --- data ---
    split_file: str  # the file a run folder keeps its split in
    select_metrics: tuple[str, ...]  # what the recipe may select on; the first is the default
    # The target marks parts of the image (objects or pixels): the whole image is letterboxed
    # into a square input, --input-size applies, splits are the task's own data format. False:
    # one label per image (the weights' resize/crop; a CSV manifest keeps its extra columns).
    dense: bool
    # Each object carries a mask, not a box alone: how the detection/instance readers, split
    # files and inspection tell instances from boxes.
    object_masks: bool
    # The built-in aerial set (neon-trees) is read as tiles of the input size: the run's data
    # source gets the input size appended (boxes alone; the reader refuses other tasks).
    tiles_to_input_size: bool
    # The recipe's `tile:` section applies: training cuts images into tiles (boxes cut with
    # min_visible) and evaluation and prediction run the spec's tile rule and merge.
    supports_tiles: bool
    # fn(data, task, *, check_images, group_column) -> DataSet: what `load_data` calls
    data_reader: str = field(metadata=CODE)
    split_writer: str = field(metadata=CODE)  # fn(DataSet, path) -> Path: the run's split file
    # fn(DataSet, input_size, *, near_dup_threshold, progress) -> report (`data inspect`)
    data_inspector: str = field(metadata=CODE)
    inspect_printer: str = field(metadata=CODE)  # fn(report) -> None: the report on the terminal

    # --- recipe ---
    # fn(Recipe) -> None: raises ValueError for a setting that does not apply to the task
    recipe_rules: str = field(metadata=CODE)

    # --- models ---
    # fn(CheckpointInfo) -> nn.Module: the untrained model a checkpoint fills
    skeleton: str = field(metadata=CODE)
    # fn(model, raw) -> (module, output names, post-processing record): what an artifact is
    # made of (export traces it; verify, bench and evaluate run it)
    deployable: str = field(metadata=CODE)

    # --- train ---
    trainer: str = field(metadata=CODE)  # PhasedTrainer subclass

    # --- evaluate ---
    # fn(run, split, data, device, **kw) -> report
    checkpoint_evaluator: str = field(metadata=CODE)
    # fn(artifact, run, split, data, backend, **kw) -> report
    artifact_evaluator: str = field(metadata=CODE)
    operating_points: bool  # its evaluators analyse --operating-point (classifier thresholds)
    report_names_task: bool  # its report says its task under "task" (a classifier's does not)
    # fn(report, out_dir, split) -> None: the report's pictures in `evaluate --out`
    report_figures: str = field(metadata=CODE)
    # fn(report, title) -> None: the report as text (finetune and evaluate print it)
    report_summary: str = field(metadata=CODE)

    # --- export ---
    int8_judge: str = field(metadata=CODE)  # int8 judge class (how much int8 damage is acceptable)
    # int8 keeps every node outside the network's modules (decoding, NMS, RoI arithmetic) float
    int8_float_postprocess: bool
    # int8 may rank nodes by measured sensitivity (a logits decision on validation images)
    int8_sensitivity_ranking: bool
    # fn(QatJob) -> QatTraining: trains the fake-quantised model (edgetl.export.qat_phase)
    qat_trainer: str = field(metadata=CODE)
    # the artifact's output is logits [batch, classes] (the export smoke test checks the shape)
    artifact_logits: bool
    # an operating point (a threshold on one class's probability) can be chosen at export
    operating_point: bool

    # --- verify ---
    # an `edgetl.verify.budgets.BudgetTable`, called (artifact_info, agreement, points) ->
    # (budgets, their record): the default gates with the --agreement-budget /
    # --metric-drop-budget overrides; help text lists its rows
    verify_budgets: str = field(metadata=CODE)
    verify_gates: tuple[str, ...]  # the parity and dataset gates, failed when it cannot run
    # fn(side, info, samples, budgets, run, point, reference, artifact, outputs) -> checks: the
    # outputs check and the task's gates, in report order
    verify_checks: str = field(metadata=CODE)

    # --- device (`edgetl bundle`, its runner, `verify --device-report`) ---
    # fn(samples, info, run, geometries) -> (arrays, fields): the sample's labels as arrays the
    # device reads with numpy alone (the bundle's labels.npz) and fields for bundle.json
    device_labels: str = field(metadata=CODE)
    # fn(bundle, truth, reference, artifact, geometries) -> checks: the task's verify gates on
    # the sample from the stored torch outputs and the artifact's, on the device. Its module
    # and what that imports at module level are copied into the bundle: torch-free.
    device_checks: str = field(metadata=CODE)
    # fn(name, details, budgets) -> bool: a device check's gate judged again from its figures
    # with this machine's budgets (a check it does not gate passes)
    device_judge: str = field(metadata=CODE)

    # --- predict ---
    # fn(runner, artifact_info, images, options: PredictOptions) -> one result per image
    predictor: str = field(metadata=CODE)
    predict_draws: bool  # --draw applies
    predict_masks: bool  # --masks applies
    # fn(artifact, results, draw, masks) -> None: writes --draw / --masks pictures
    prediction_writer: str = field(metadata=CODE)
    # fn(artifact, results, top_k) -> None: the results as a table
    prediction_printer: str = field(metadata=CODE)

    # --- bench ---
    # fn(outputs, geometries, artifact_info) -> results: e2e reads the outputs as predict does
    bench_results: str = field(metadata=CODE)
    bench_path: str  # what e2e's results are, after "edgetl.predict.run_files + "

    # --- select ---
    select_sizes: tuple[int, ...]  # default candidate input sizes (pixels, square)
    select_probe: str = field(metadata=CODE)  # fn(recipe, record, folder, data) -> PreprocessSpec
    select_score: str = field(metadata=CODE)  # fn(run_dir, metric, device) -> dict
    # the selection metrics select_score gives an interval for
    select_interval_metrics: tuple[str, ...]
    # the validation figures select_score reports, each with the key of the task's evaluation
    # report it is read from (the interval metrics among them)
    select_figures: dict[str, str]

    extra: dict[str, Any] = field(default_factory=dict)  # for tasks added by plug-ins and tests

    def load(self, slot: str) -> Any:
        """The code a slot names, imported now."""
        return load_ref(getattr(self, slot))

    def code_slots(self) -> dict[str, str]:
        """Every slot that names code, by slot name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if f.metadata.get("code")}


def load_ref(ref: str) -> Any:
    """Import `"module:attr"` (attr may be dotted) and return the attribute."""
    module, _, attr = ref.partition(":")
    value: Any = importlib.import_module(module)
    for part in attr.split("."):
        value = getattr(value, part)
    return value

