"""Instance segmentation: a box, a class and a mask per object (FCOS plus a mask branch)."""

from __future__ import annotations

from edgetl.tasks.task import Task

TASK = Task(
    name="instance",
    summary="a box, a class and a mask for each object",
    min_classes=1,
    # --- data ---
    split_file="split.json",
    select_metrics=("val_mask_map", "val_map", "val_loss"),
    dense=True,
    object_masks=True,
    supports_tiles=True,
    tiles_to_input_size=False,
    data_reader="edgetl.data.detection:load_detection",
    split_writer="edgetl.data.detection.splitfile:write_split_file",
    data_inspector="edgetl.data.detection.inspect:inspect_detection",
    inspect_printer="edgetl.cli.data_dense:print_dense_inspect",
    # --- recipe ---
    recipe_rules="edgetl.recipe:instance_rules",
    # --- models ---
    skeleton="edgetl.models.instance:skeleton_for",
    deployable="edgetl.models.deployable:instance_deployable",
    # --- train ---
    trainer="edgetl.train.instance:InstanceTrainer",
    # --- evaluate ---
    checkpoint_evaluator="edgetl.evaluate.instance_run:evaluate_instance_checkpoint",
    artifact_evaluator="edgetl.evaluate.instance_run:evaluate_instance_artifact",
    operating_points=False,
    report_names_task=True,
    report_figures="edgetl.evaluate.figures:instance_figures",
    report_summary="edgetl.cli.render:print_instance",
    # --- export ---
    int8_judge="edgetl.export.int8_judges:MaskMapJudge",
    int8_float_postprocess=True,
    int8_sensitivity_ranking=False,
    qat_trainer="edgetl.export.qat_instance:train_instance",
    artifact_logits=False,
    operating_point=False,
    # --- verify ---
    verify_budgets="edgetl.verify.instance:BUDGETS",
    verify_gates=("parity", "mask_parity", "mask_map"),
    verify_checks="edgetl.verify.instance:verify_checks",
    # --- device ---
    device_labels="edgetl.device.instance:sample_labels",
    device_checks="edgetl.device.instance:device_checks",
    device_judge="edgetl.device.instance:judge",
    # --- predict ---
    predictor="edgetl.predict.instances:predict",
    predict_draws=True,
    predict_masks=True,
    prediction_writer="edgetl.predict.instances:write_outputs",
    prediction_printer="edgetl.cli.predict_cmd:print_detections",
    # --- bench ---
    bench_results="edgetl.bench.e2e:instance_rles",
    bench_path="detections in image pixels, masks pasted and RLE-encoded",
    # --- select ---
    select_sizes=(256, 320, 384, 512),
    select_probe="edgetl.select.dense:untrained_detector",
    select_score="edgetl.select.dense:score_on_validation",
    select_interval_metrics=("val_mask_map", "val_map"),
    select_figures={"val_mask_map": "mask_map", "val_mask_map50": "mask_map50",
                    "val_map": "box_map"},
)
