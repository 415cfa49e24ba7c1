"""Object detection: boxes and classes, an FCOS head on a timm backbone with an FPN."""

from __future__ import annotations

from edgetl.tasks.task import Task

TASK = Task(
    name="detection",
    summary="boxes and a class for each object",
    min_classes=1,
    # --- data ---
    split_file="split.csv",
    select_metrics=("val_map", "val_map50", "val_loss"),
    dense=True,
    object_masks=False,
    data_reader="edgetl.data.detection:load_detection",
    split_writer="edgetl.data.detection.splitfile:write_split_file",
    data_inspector="edgetl.data.detection.inspect:inspect_detection",
    inspect_printer="edgetl.cli.data_dense:print_dense_inspect",
    # --- recipe ---
    recipe_rules="edgetl.recipe:detection_rules",
    # --- models ---
    skeleton="edgetl.models.detector:skeleton_for",
    # --- train ---
    trainer="edgetl.train.detection:DetectionTrainer",
    # --- evaluate ---
    checkpoint_evaluator="edgetl.evaluate.detection_run:evaluate_detector_checkpoint",
    artifact_evaluator="edgetl.evaluate.detection_run:evaluate_detector_artifact",
    # --- export ---
    int8_judge="edgetl.export.onnx_int8:MapJudge",
    # --- verify ---
    # --- predict ---
    # --- bench ---
    # --- select ---
    select_sizes=(256, 320, 384, 512),
    select_probe="edgetl.select.dense:untrained_checkpoint",
    select_score="edgetl.select.dense:score_on_validation",
    select_interval_metrics=("val_map", "val_map50"),
)
