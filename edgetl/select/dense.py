"""The dense tasks' `edgetl select` slots: an untrained candidate, and a trained one scored.

The untrained checkpoint is the network `finetune` would start from: the backbone's offline
pretrained weights under a new neck and head built from the recipe's `model.detector`,
`model.instance` or `model.segmenter` settings, at the candidate's input size, with the spec
resolved from the weights and the recipe. The score is `edgetl evaluate RUN --split val`'s
report (COCO mAP, or mIoU): the selection metric with its bootstrap interval over images.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from edgetl import tasks
from edgetl.recipe import Recipe
from edgetl.spec import PreprocessSpec, TaskRecord


def _network(recipe: Recipe, record: TaskRecord) -> tuple[Any, PreprocessSpec, dict[str, Any]]:
    """The untrained model, its weights' spec and its head record, built by the task's trainer
    (its own `build_model` and `head_record`): the network `finetune` starts from."""
    trainer = tasks.get(recipe.task).load("trainer")
    hooks = SimpleNamespace(recipe=recipe, task_record=record)
    model, spec = trainer.build_model(hooks)
    return model, spec, trainer.head_record(hooks)


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


def untrained_detector(recipe: Recipe, record: TaskRecord, folder: Path,
                       data: dict[str, Any]) -> PreprocessSpec:
    """Write `folder/best/` for the recipe's backbone with a new, untrained neck and head, the
    FCOS head quieted (`background_head`): detection and instance models."""

    def quiet(model: Any) -> dict[str, Any]:
        if background_head(model) == 0:
            raise RuntimeError(f"{recipe.model.architecture}: no FCOS classification layer to "
                               "quiet for the latency probe (a bug)")
        return {}

    return _untrained_checkpoint(recipe, record, folder, data, quiet)


def untrained_segmenter(recipe: Recipe, record: TaskRecord, folder: Path,
                        data: dict[str, Any]) -> PreprocessSpec:
    """Write `folder/best/` for the recipe's backbone with a new, untrained decoder, with what
    the trainer records beside it: the masks' decoding."""
    from edgetl.runfolder import RunFolder

    def masks(model: Any) -> dict[str, Any]:
        return {"class_weights": None,
                "mask_record": RunFolder(folder).dataset().record.to_dict()}

    return _untrained_checkpoint(recipe, record, folder, data, masks)


def _untrained_checkpoint(recipe: Recipe, record: TaskRecord, folder: Path,
                          data: dict[str, Any], finish: Callable[[Any], dict[str, Any]]
                          ) -> PreprocessSpec:
    """Write `folder/best/` for the untrained network; `finish` readies the model for the probe
    and gives the task's extra checkpoint record."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.checkpoint import save_checkpoint
    from edgetl.models.specs import training_spec
    from edgetl.runfolder import RunFolder

    torch.manual_seed(recipe.train.seed)
    model, weights_spec, head = _network(recipe, record)
    extra = finish(model)
    spec = training_spec(recipe, weights_spec)
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

    task = tasks.get(RunFolder(run_dir).recipe().task)
    report = task.load("checkpoint_evaluator")(run_dir, split="val", device=device)
    extra = {name: report[key] for name, key in task.select_figures.items()}
    key = task.select_figures[metric]  # `tasks.check_metric` refused the others before work
    return {
        "metric": metric, "value": report[key], "ci95": report.get(f"{key}_ci95"),
        "interval": "95% bootstrap over validation images", "n": report["n_images"],
        **extra, "best_epoch": report.get("checkpoint_epoch"),
        "spec_fingerprint": report["spec_fingerprint"],
    }
