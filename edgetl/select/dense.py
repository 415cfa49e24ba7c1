"""The dense rows of `edgetl select`: an untrained candidate, and a trained one scored.

The untrained checkpoint is the network `finetune` would start from: the backbone's offline
pretrained weights under a new neck and head built from the recipe's `model.detector`,
`model.instance` or `model.segmenter` settings, at the candidate's input size, with the spec
resolved from the weights and the recipe. The score is `edgetl evaluate RUN --split val`'s
report (COCO mAP, or mIoU): the selection metric with its bootstrap interval over images.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.recipe import Recipe
from edgetl.spec import PreprocessSpec, TaskRecord

# The selection metric's key in the task's evaluation report.
REPORT_KEYS = {
    "detection": {"val_map": "map", "val_map50": "map50"},
    "instance": {"val_mask_map": "mask_map", "val_map": "box_map"},
    "semantic": {"val_miou": "miou"},
}


def _network(recipe: Recipe, record: TaskRecord) -> tuple[Any, PreprocessSpec, dict[str, Any]]:
    """The untrained model, its weights' spec and its head record (as the trainer builds them)."""
    from edgetl.models.specs import DENSE_INPUT_SIZE

    size = recipe.model.input_size or DENSE_INPUT_SIZE
    if recipe.task == "semantic":
        from edgetl.models.segmenter import SegmenterSettings, build_segmenter

        segmenter = SegmenterSettings(**recipe.model.segmenter.model_dump())
        model, spec = build_segmenter(recipe.model.architecture, record.num_classes, segmenter,
                                      recipe.model.weights)
        return model, spec, segmenter.to_dict()
    if recipe.task == "detection":
        from edgetl.models.detector import DetectorSettings, build_detector

        settings = DetectorSettings.from_dict(recipe.model.detector.model_dump())
        model, spec = build_detector(recipe.model.architecture, record.num_classes, settings,
                                     (size, size), recipe.model.weights)
    else:
        from edgetl.models.instance import InstanceSettings, build_instance_model

        settings = InstanceSettings.from_dict(recipe.model.instance.model_dump())
        model, spec = build_instance_model(recipe.model.architecture, record.num_classes,
                                           settings, (size, size), recipe.model.weights)
    return model, spec, settings.to_dict()


# The probe head's classification bias: every position scores about 1e-4, far below any
# score threshold, so no candidate reaches NMS (or, for instance models, the mask branch).
BACKGROUND_LOGIT = -20.0


def background_head(model: Any) -> int:
    """Make the untrained head call every position background, as a trained head does for
    almost all of them; the number of classification layers changed.

    Untrained, the FCOS prior (0.01) times the centre-ness (0.5) scores every position about
    0.07, above the default 0.05 threshold: every anchor reaches NMS and the full detection
    count reaches the mask branch, a cost no trained model on ordinary images pays. With the
    head quiet the probe times the network, decoding and an empty NMS: a lower bound of the
    trained artifact's latency (so a candidate over budget here is over budget trained), and
    the pick's trained artifact is timed on real images before it is named (`deploy.py`)."""
    # not at the top: importing this module loads no torch
    import torch

    changed = 0
    with torch.no_grad():
        for name, module in model.named_modules():
            if name.endswith("classification_head.cls_logits") and module.bias is not None:
                module.bias.fill_(BACKGROUND_LOGIT)
                changed += 1
    return changed


def untrained_checkpoint(recipe: Recipe, record: TaskRecord, folder: Path,
                         data: dict[str, Any]) -> PreprocessSpec:
    """Write `folder/best/` for the recipe's backbone with a new, untrained neck and head."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.checkpoint import save_checkpoint
    from edgetl.models.specs import resolve_spec
    from edgetl.runfolder import RunFolder

    torch.manual_seed(recipe.train.seed)
    model, weights_spec, head = _network(recipe, record)
    extra: dict[str, Any] = {}
    if recipe.task == "semantic":  # what the trainer records: the masks' decoding
        extra = {"class_weights": None,
                 "mask_record": RunFolder(folder).dataset().record.to_dict()}
    elif background_head(model) == 0:
        raise RuntimeError(f"{recipe.model.architecture}: no FCOS classification layer to "
                           "quiet for the latency probe (a bug)")
    spec = resolve_spec(recipe, weights_spec)
    save_checkpoint(RunFolder(folder).best_path, model.eval(),
                    architecture=recipe.model.architecture,
                    head=head, spec=spec, task_record=record,
                    extra={"data": data, **extra, "epoch": 0,
                           "phase": "untrained (edgetl select)", "metrics": {}})
    return spec


def score_on_validation(run_dir: Path, metric: str, device: str = "cpu") -> dict[str, Any]:
    """The best checkpoint's COCO report on the run's validation split: the selection metric
    with its 95% bootstrap interval (images resampled), and the report's headline figures."""
    from edgetl.runfolder import RunFolder

    task = RunFolder(run_dir).recipe().task
    if task == "semantic":
        from edgetl.evaluate.semantic_run import evaluate_segmenter_checkpoint

        report = evaluate_segmenter_checkpoint(run_dir, split="val", device=device)
        extra = {"val_miou": report["miou"], "val_mdice": report["mdice"],
                 "val_pixel_accuracy": report["pixel_accuracy"]}
    elif task == "detection":
        from edgetl.evaluate.detection_run import evaluate_detector_checkpoint

        report = evaluate_detector_checkpoint(run_dir, split="val", device=device)
        extra = {"val_map": report["map"], "val_map50": report["map50"]}
    else:
        from edgetl.evaluate.instance_run import evaluate_instance_checkpoint

        report = evaluate_instance_checkpoint(run_dir, split="val", device=device)
        extra = {"val_mask_map": report["mask_map"], "val_mask_map50": report["mask_map50"],
                 "val_map": report["box_map"]}
    key = REPORT_KEYS[task][metric]  # `tasks.check_metric` refused the others before work
    return {
        "metric": metric, "value": report[key], "ci95": report.get(f"{key}_ci95"),
        "interval": "95% bootstrap over validation images", "n": report["n_images"],
        **extra, "best_epoch": report.get("checkpoint_epoch"),
        "spec_fingerprint": report["spec_fingerprint"],
    }
