"""Image classification: one label per image, a timm backbone with a new head."""

from __future__ import annotations

from edgetl.tasks.task import Task

TASK = Task(
    name="classification",
    summary="one label per image",
    min_classes=2,
    # --- data ---
    split_file="split.csv",
    select_metrics=("val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss"),
    dense=False,
    object_masks=False,
    data_reader="edgetl.data.sources:load_classification",
    split_writer="edgetl.data.detection.splitfile:write_split_file",
    data_inspector="edgetl.data.inspect:inspect_class_data",
    inspect_printer="edgetl.cli.data_cmd:print_class_inspect",
    # --- recipe ---
    recipe_rules="edgetl.recipe:classification_rules",
    # --- models ---
    skeleton="edgetl.models.head:skeleton_for",
    deployable="edgetl.models.deployable:classifier_deployable",
    # --- train ---
    trainer="edgetl.train.classification:ClassificationTrainer",
    # --- evaluate ---
    checkpoint_evaluator="edgetl.evaluate.run_eval:evaluate_checkpoint",
    artifact_evaluator="edgetl.evaluate.artifact_eval:evaluate_artifact",
    # --- export ---
    int8_judge="edgetl.export.onnx_int8:TopOneJudge",
    int8_float_postprocess=False,
    int8_sensitivity_ranking=True,
    artifact_logits=True,
    operating_point=True,
    # --- verify ---
    # --- predict ---
    # --- bench ---
    # --- select ---
    select_sizes=(160, 224, 288),
    select_probe="edgetl.select.classification:untrained_checkpoint",
    select_score="edgetl.select.classification:score_on_validation",
    select_interval_metrics=("val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss"),
    select_figures={"val_accuracy": "accuracy", "val_balanced_accuracy": "balanced_accuracy",
                    "val_macro_f1": "macro_f1", "val_loss": "loss"},
)
