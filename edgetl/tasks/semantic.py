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
    dense=True,
    object_masks=False,
    supports_tiles=False,
    tiles_to_input_size=False,
    data_reader="edgetl.data.semantic.load:read_semantic",
    split_writer="edgetl.data.semantic.splitfile:write_split_file",
    data_inspector="edgetl.data.semantic.inspect:inspect_semantic_data",
    inspect_printer="edgetl.cli.data_cmd:print_semantic_inspect",
    # --- recipe ---
    recipe_rules="edgetl.recipe:semantic_rules",
    # --- models ---
    skeleton="edgetl.models.segmenter:skeleton_for",
    deployable="edgetl.models.deployable:segmenter_deployable",
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
    int8_judge="edgetl.export.int8_judges:MiouJudge",
    int8_float_postprocess=False,
    int8_sensitivity_ranking=False,
    qat_trainer="edgetl.export.qat_semantic:train_segmenter",
    artifact_logits=False,
    operating_point=False,
    # --- verify ---
    verify_budgets="edgetl.verify.semantic:BUDGETS",
    verify_gates=("parity", "miou"),
    verify_checks="edgetl.verify.semantic:verify_checks",
    # --- device ---
    device_labels="edgetl.device.semantic:sample_labels",
    device_checks="edgetl.device.semantic:device_checks",
    device_judge="edgetl.device.semantic:judge",
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
    select_probe="edgetl.select.dense:untrained_segmenter",
    select_score="edgetl.select.dense:score_on_validation",
    select_interval_metrics=("val_miou",),
    select_figures={"val_miou": "miou", "val_mdice": "mdice",
                    "val_pixel_accuracy": "pixel_accuracy"},
)
