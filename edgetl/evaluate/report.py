"""`evaluate` on a run or an artifact, and writing its JSON and confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl import tasks
from edgetl.errors import ArtifactError
from edgetl.io import atomic_write_json
from edgetl.tasks import Task


def _evaluator(slot: str, task: str) -> Any:
    """The task's evaluator (`checkpoint_evaluator` or `artifact_evaluator`)."""
    from edgetl.errors import UsageError

    unknown = UsageError(f"evaluating {task} models is not available in this version")
    return tasks.get(task, unknown).load(slot)


def _operating_points(task: str, given: list[str] | None) -> dict[str, Any]:
    """The keyword for evaluators that analyse operating points (classifiers' only)."""
    if not given:
        return {}
    if not tasks.get(task).operating_points:
        from edgetl.errors import UsageError

        raise UsageError(f"--operating-point applies to classifiers, not to {task} models")
    return {"operating_points": list(given)}


def task_of_report(report: dict[str, Any]) -> Task:
    """The task a report is of: the one it names under "task", else the task whose reports
    name none (a classifier's: its report format predates the key)."""
    named = tasks.TASKS.get(report.get("task", ""))
    if named is not None:
        return named
    return next(t for t in tasks.TASKS.values() if not t.report_names_task)


def evaluate_checkpoint(run: Path, split: str = "test", data: str | None = None,
                        device: str = "cpu", operating_points: list[str] | None = None
                        ) -> dict[str, Any]:
    """The task's report for a run's best checkpoint."""
    from edgetl.checkpoint import read_checkpoint_info

    task = read_checkpoint_info(run).task_record.task
    return _evaluator("checkpoint_evaluator", task)(run, split=split, data=data, device=device,
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
        from edgetl.runtime.backends import default_backend

        return _evaluator("artifact_evaluator", task)(
            target, split=split, data=data, backend=default_backend(target),
            **_operating_points(task, operating_points))
    raise ArtifactError(f"nothing to evaluate at {target}",
                        "pass a run folder from 'edgetl finetune' or an exported .onnx file")


def write_report(report: dict[str, Any], json_out: Path | None, out_dir: Path | None) -> None:
    """The JSON report, and in `out_dir` the report plus its pictures (the task's
    `report_figures`: confusion matrix and precision-recall curves; for segmentation the worst
    images)."""
    if json_out is not None:
        atomic_write_json(json_out, report)
    if out_dir is None:
        return
    out_dir.mkdir(parents=True, exist_ok=True)
    split = report["split"]
    atomic_write_json(out_dir / f"metrics-{split}.json", report)
    task_of_report(report).load("report_figures")(report, out_dir, split)
