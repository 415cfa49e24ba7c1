"""Semantic segmentation: a class per pixel, an LR-ASPP head on a timm backbone."""

from __future__ import annotations

from edgetl.tasks.task import Task

TASK = Task(
    name="semantic",
    summary="a class for every pixel",
    min_classes=2,
    # --- data ---
    split_file="split.csv",
    select_metrics=("val_miou", "val_loss"),
    # --- recipe ---
    # --- models ---
    skeleton="edgetl.models.segmenter:skeleton_for",
    # --- train ---
    trainer="edgetl.train.semantic:SemanticTrainer",
    # --- evaluate ---
    checkpoint_evaluator="edgetl.evaluate.semantic_run:evaluate_segmenter_checkpoint",
    artifact_evaluator="edgetl.evaluate.semantic_run:evaluate_segmenter_artifact",
    operating_points=False,
    report_names_task=True,
    report_figures="edgetl.evaluate.figures:segmenter_figures",
    report_summary="edgetl.cli.render:print_semantic",
    # --- export ---
    int8_judge="edgetl.export.onnx_int8:MiouJudge",
    # --- verify ---
    verify_budgets="edgetl.verify.semantic:verify_budgets",
    verify_gates=("parity", "miou"),
    verify_checks="edgetl.verify.semantic:verify_checks",
    # --- predict ---
    predictor="edgetl.predict.segment:predict",
    predict_draws=True,
    predict_masks=True,
    prediction_writer="edgetl.predict.segment:write_outputs",
    prediction_printer="edgetl.cli.predict_cmd:print_shares",
    # --- bench ---
    bench_results="edgetl.bench.e2e:class_maps",
    bench_path="class maps at the image's size",
    # --- select ---
    select_sizes=(256, 320, 384, 512),
    select_probe="edgetl.select.dense:untrained_checkpoint",
    select_score="edgetl.select.dense:score_on_validation",
    select_interval_metrics=("val_miou",),
)
