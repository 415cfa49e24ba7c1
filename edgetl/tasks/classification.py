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
    supports_tiles=False,
    tiles_to_input_size=False,
    data_reader="edgetl.data.sources:load_classification",
    split_writer="edgetl.data.image_list:write_image_list",
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
    operating_points=True,
    report_names_task=False,
    report_figures="edgetl.evaluate.figures:classifier_figures",
    report_summary="edgetl.cli.render:print_classification",
    # --- export ---
    int8_judge="edgetl.export.int8_judges:TopOneJudge",
    int8_float_postprocess=False,
    int8_sensitivity_ranking=True,
    qat_trainer="edgetl.export.qat_classifier:train_classifier",
    artifact_logits=True,
    operating_point=True,
    # --- verify ---
    verify_budgets="edgetl.verify.classification:BUDGETS",
    verify_gates=("parity", "accuracy"),
    verify_checks="edgetl.verify.classification:verify_checks",
    # --- device ---
    device_labels="edgetl.device.classification:sample_labels",
    device_checks="edgetl.device.classification:device_checks",
    device_judge="edgetl.device.classification:judge",
    # --- predict ---
    predictor="edgetl.predict.classify:predict",
    predict_draws=False,
    predict_masks=False,
    prediction_writer="edgetl.predict.classify:write_outputs",
    prediction_printer="edgetl.cli.predict_cmd:print_classes",
    # --- bench ---
    bench_results="edgetl.bench.e2e:top_classes",
    bench_path="softmax + top-k",
    # --- select ---
    select_sizes=(160, 224, 288),
    select_probe="edgetl.select.classification:untrained_checkpoint",
    select_score="edgetl.select.classification:score_on_validation",
    select_interval_metrics=("val_accuracy", "val_balanced_accuracy", "val_macro_f1", "val_loss"),
    select_figures={"val_accuracy": "accuracy", "val_balanced_accuracy": "balanced_accuracy",
                    "val_macro_f1": "macro_f1", "val_loss": "loss"},
)
