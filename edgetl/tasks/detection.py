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
    supports_tiles=True,
    tiles_to_input_size=True,
    data_reader="edgetl.data.detection:load_detection",
    split_writer="edgetl.data.detection.splitfile:write_split_file",
    data_inspector="edgetl.data.detection.inspect:inspect_detection",
    inspect_printer="edgetl.cli.data_dense:print_dense_inspect",
    # --- recipe ---
    recipe_rules="edgetl.recipe:detection_rules",
    # --- models ---
    skeleton="edgetl.models.detector:skeleton_for",
    deployable="edgetl.models.deployable:detector_deployable",
    # --- train ---
    trainer="edgetl.train.detection:DetectionTrainer",
    # --- evaluate ---
    checkpoint_evaluator="edgetl.evaluate.detection_run:evaluate_detector_checkpoint",
    artifact_evaluator="edgetl.evaluate.detection_run:evaluate_detector_artifact",
    operating_points=False,
    report_names_task=True,
    report_figures="edgetl.evaluate.figures:detector_figures",
    report_summary="edgetl.cli.render:print_detection",
    # --- export ---
    int8_judge="edgetl.export.int8_judges:MapJudge",
    int8_float_postprocess=True,
    int8_sensitivity_ranking=False,
    qat_trainer="edgetl.export.qat_detection:train_detector",
    artifact_logits=False,
    operating_point=False,
    # --- verify ---
    verify_budgets="edgetl.verify.detection:BUDGETS",
    verify_gates=("parity", "map"),
    verify_checks="edgetl.verify.detection:verify_checks",
    # --- device ---
    device_labels="edgetl.device.detection:sample_labels",
    device_checks="edgetl.device.detection:device_checks",
    device_judge="edgetl.device.detection:judge",
    # --- predict ---
    predictor="edgetl.predict.detect:predict",
    predict_draws=True,
    predict_masks=False,
    prediction_writer="edgetl.predict.detect:write_outputs",
    prediction_printer="edgetl.cli.predict_cmd:print_detections",
    # --- bench ---
    bench_results="edgetl.bench.e2e:detections",
    bench_path="detections in image pixels",
    # --- select ---
    select_sizes=(256, 320, 384, 512),
    select_probe="edgetl.select.dense:untrained_detector",
    select_score="edgetl.select.dense:score_on_validation",
    select_interval_metrics=("val_map", "val_map50"),
    select_figures={"val_map": "map", "val_map50": "map50"},
)
