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
    # --- recipe ---
    # --- models ---
    skeleton="edgetl.models.detector:skeleton_for",
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
    int8_judge="edgetl.export.onnx_int8:MapJudge",
    # --- verify ---
    verify_budgets="edgetl.verify.detection:verify_budgets",
    verify_gates=("parity", "map"),
    verify_checks="edgetl.verify.detection:verify_checks",
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
    select_probe="edgetl.select.dense:untrained_checkpoint",
    select_score="edgetl.select.dense:score_on_validation",
    select_interval_metrics=("val_map", "val_map50"),
)
