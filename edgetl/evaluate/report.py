"""`evaluate` on a run or an artifact, and writing its JSON and confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.errors import ArtifactError
from edgetl.io import atomic_write_json

# task -> "module:function" evaluating a run's checkpoint / an exported artifact
CHECKPOINT_EVALUATORS: dict[str, str] = {
    "classification": "edgetl.evaluate.run_eval:evaluate_checkpoint",
    "detection": "edgetl.evaluate.detection_run:evaluate_detector_checkpoint",
    "semantic": "edgetl.evaluate.semantic_run:evaluate_segmenter_checkpoint",
    "instance": "edgetl.evaluate.instance_run:evaluate_instance_checkpoint",
}
ARTIFACT_EVALUATORS: dict[str, str] = {
    "classification": "edgetl.evaluate.artifact_eval:evaluate_artifact",
    "detection": "edgetl.evaluate.detection_run:evaluate_detector_artifact",
    "semantic": "edgetl.evaluate.semantic_run:evaluate_segmenter_artifact",
    "instance": "edgetl.evaluate.instance_run:evaluate_instance_artifact",
}


def _evaluator(table: dict[str, str], task: str) -> Any:
    import importlib

    from edgetl.errors import UsageError

    if task not in table:
        raise UsageError(f"evaluating {task} models is not available in this version")
    module, _, name = table[task].partition(":")
    return getattr(importlib.import_module(module), name)


def _operating_points(task: str, given: list[str] | None) -> dict[str, Any]:
    """The keyword for evaluators that analyse operating points (classification only)."""
    if not given:
        return {}
    if task != "classification":
        from edgetl.errors import UsageError

        raise UsageError(f"--operating-point applies to classifiers, not to {task} models")
    return {"operating_points": list(given)}


def evaluate_checkpoint(run: Path, split: str = "test", data: str | None = None,
                        device: str = "cpu", operating_points: list[str] | None = None
                        ) -> dict[str, Any]:
    """The task's report for a run's best checkpoint."""
    from edgetl.checkpoint import read_checkpoint_info

    task = read_checkpoint_info(run).task_record.task
    return _evaluator(CHECKPOINT_EVALUATORS, task)(run, split=split, data=data, device=device,
                                                   **_operating_points(task, operating_points))


def evaluate_target(target: Path, split: str = "test", data: str | None = None,
                    device: str = "cpu", operating_points: list[str] | None = None
                    ) -> dict[str, Any]:
    """Dispatch on what `target` is: a run/checkpoint folder, or an exported artifact file."""
    if target.is_dir():
        return evaluate_checkpoint(target, split=split, data=data, device=device,
                                   operating_points=operating_points)
    if target.is_file():
        from edgetl.artifact.manifest import read_artifact
        from edgetl.predict import refuse_edited

        info = read_artifact(target)
        refuse_edited(info)  # before any data is looked for: an edited artifact is refused
        task = info.task_record.task
        return _evaluator(ARTIFACT_EVALUATORS, task)(
            target, split=split, data=data, **_operating_points(task, operating_points))
    raise ArtifactError(f"nothing to evaluate at {target}",
                        "pass a run folder from 'edgetl finetune' or an exported .onnx file")


def write_report(report: dict[str, Any], json_out: Path | None, out_dir: Path | None) -> None:
    """The JSON report, and in `out_dir` the report plus its pictures (confusion matrix and
    precision-recall curves; for segmentation the worst images)."""
    from edgetl.evaluate.plots import plot_class_pr_curves, plot_confusion, plot_pr_curves

    if json_out is not None:
        atomic_write_json(json_out, report)
    if out_dir is None:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    split = report["split"]
    atomic_write_json(out_dir / f"metrics-{split}.json", report)
    if report.get("task") == "detection":
        confusion = report["confusion"]
        plot_confusion(confusion["matrix"], confusion["labels"],
                       out_dir / f"confusion-{split}.png",
                       title=f"{report['kind']} on {split}: detections matched at IoU "
                             f"{confusion['iou']} (n={report['n_images']})")
        plot_pr_curves(report["pr_curve"], out_dir / f"pr-curve-{split}.png",
                       title=f"{report['kind']} on {split}: precision-recall at IoU 0.5")
        return
    if report.get("task") == "instance":
        from edgetl.evaluate.instance_run import draw_worst as draw_worst_instances

        draw_worst_instances(report, out_dir / f"worst-{split}.png")
        return
    if report.get("task") == "semantic":
        from edgetl.evaluate.semantic_run import draw_worst

        plot_confusion(report["confusion_matrix"], report["class_names"],
                       out_dir / f"confusion-{split}.png",
                       title=f"{report['kind']} on {split}: pixels (n={report['n_images']} "
                             "images)")
        draw_worst(report, out_dir / f"worst-{split}.png")
        return
    plot_confusion(report["confusion_matrix"], report["class_names"],
                   out_dir / f"confusion-{split}.png",
                   title=f"{report['kind']} on {split} (n={report['n']})")
    plot_class_pr_curves(report["pr_curves"], out_dir / f"pr-curve-{split}.png",
                         report.get("operating_points", []), split,
                         title=f"{report['kind']} on {split}: one-vs-rest precision-recall")
