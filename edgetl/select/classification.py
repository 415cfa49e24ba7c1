"""The classification row of `edgetl select`: an untrained candidate, and a trained one scored.

The untrained checkpoint is exactly what `finetune` would start from (the backbone's offline
pretrained weights, a new head with the recipe's settings, the spec resolved from the weights
and the recipe by the same function), saved as an ordinary checkpoint so the ordinary
exporters turn it into the artifacts whose latency is measured.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.recipe import Recipe
from edgetl.runfolder import BEST, RunFolder
from edgetl.spec import PreprocessSpec, TaskRecord


def untrained_checkpoint(recipe: Recipe, record: TaskRecord, folder: Path,
                         data: dict[str, Any]) -> PreprocessSpec:
    """Write `folder/best/` for the recipe's backbone with a new, untrained head; its spec."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.checkpoint import save_checkpoint
    from edgetl.models import HeadConfig, build_classifier
    from edgetl.models.specs import training_spec

    head = HeadConfig(dropout=recipe.model.head.dropout, hidden=recipe.model.head.hidden)
    torch.manual_seed(recipe.train.seed)
    model, weights_spec = build_classifier(recipe.model.architecture, record.num_classes, head,
                                           weights=recipe.model.weights)
    spec = training_spec(recipe, weights_spec)
    save_checkpoint(RunFolder(folder).best_path, model.eval(),
                    architecture=recipe.model.architecture,
                    head={"dropout": head.dropout, "hidden": head.hidden}, spec=spec,
                    task_record=record,
                    extra={"data": data, "epoch": 0, "phase": "untrained (edgetl select)",
                           "metrics": {}})
    return spec


def score_on_validation(run_dir: Path, metric: str, device: str = "cpu") -> dict[str, Any]:
    """The best checkpoint on the run's validation split: the selection metric with its
    bootstrap interval, plus accuracy (with its interval), balanced accuracy and macro-F1.

    The figures are `edgetl evaluate RUN --split val`'s (same model loading, same transform)."""
    import numpy as np

    from edgetl.evaluate.run_eval import torch_probs
    from edgetl.metrics.classification import metric_interval, quick_metrics
    from edgetl.models.loading import load_model
    from edgetl.runfolder import RunFolder

    model, info = load_model(run_dir, BEST)
    samples = RunFolder(run_dir).samples("val")
    probs = torch_probs(model, info.spec, [s.path for s in samples], device)
    y = np.array([info.task_record.index(s.label) for s in samples])
    name = metric.removeprefix("val_")
    chosen = metric_interval(y, probs, name)
    accuracy = chosen if name == "accuracy" else metric_interval(y, probs, "accuracy")
    quick = quick_metrics(y, probs)
    return {
        "metric": metric, "value": chosen["value"], "ci95": chosen["ci95"],
        "interval": chosen["interval"], "n": chosen["n"],
        "val_accuracy": accuracy["value"], "val_accuracy_ci95": accuracy["ci95"],
        "val_balanced_accuracy": quick["balanced_accuracy"], "val_macro_f1": quick["macro_f1"],
        "val_loss": quick["loss"],
        "best_epoch": info.record.get("epoch"), "spec_fingerprint": info.spec.fingerprint(),
    }
