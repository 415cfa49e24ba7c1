"""`edgetl evaluate RUN_OR_ARTIFACT`."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer

from edgetl.cli.common import DEVICE_HELP, JSON_HELP, check_device, json_target


def register(app: typer.Typer) -> None:
    @app.command("evaluate")
    def evaluate(
        target: Path = typer.Argument(..., help="Run folder or exported artifact (.onnx)."),
        data: str | None = typer.Option(None, "--data", help="Data source (default: the run's "
                                        "own); any source finetune --data accepts."),
        split: str = typer.Option("test", "--split", help="Split to evaluate."),
        split_from: Path | None = typer.Option(
            None, "--split-from",
            help="Score this run's split (its split file) instead of --data: for data "
                 "without train/val/test folders. `--split all` scores every image."),
        json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP),
        out: Path | None = typer.Option(None, "--out", help="Folder for the report and its "
                                        "plots."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP + " Runs only (an "
                                   "artifact runs on onnxruntime's CPU)."),
        operating_points: list[str] = typer.Option(
            [], "--operating-point",
            help="Classification: CLASS:recall=R or CLASS:precision=P; the threshold is chosen "
                 "on the run's validation split and scored here (repeatable; default: the "
                 "recipe's operating_point)."),
    ) -> None:
        """Score a run or an artifact on a split: accuracy, mAP, mIoU or mask mAP, by task.

        With bootstrap intervals: classification accuracy, per-class P/R/F1, confusion matrix,
        ROC-AUC and PR curves (an artifact's operating point decides its predictions); detection
        mAP, AP50/AP75 and per-class AP; semantic segmentation mIoU, Dice and pixel accuracy;
        instance segmentation mask mAP and box mAP."""
        import sys

        from edgetl.cli.common import console, write_json_report
        from edgetl.cli.render import print_report_summary
        from edgetl.data.samples import SPLITS
        from edgetl.errors import UsageError
        from edgetl.evaluate.report import evaluate_target, write_report
        from edgetl.evaluate.samples import ALL
        from edgetl.interrupt import activity
        from edgetl.io import outputs_together, require_writable

        if split not in (*SPLITS, ALL):
            raise UsageError(f"--split {split!r} is not a split",
                             f"use {', '.join(SPLITS)} or {ALL}")
        if split_from is not None:
            data = split_file_of(split_from, data)
        check_device(device)
        if target.is_dir():  # runs evaluate with torch on this device: is it here?
            from edgetl.devices import resolve_device

            device = resolve_device(device)
        else:
            device = "cpu"
        json_path = json_target(json_out)
        if json_out == "-":
            console.file = sys.stderr  # standard output carries the JSON alone
        if out is not None:
            require_writable(out, "--out", folder=True)
        from edgetl.decision import Target

        for text in operating_points:
            Target.parse(text)
        with activity(f"evaluate of {target}", "no report was written: run it again"):
            report = evaluate_target(target, split=split, data=data, device=device,
                                     operating_points=operating_points)
            for note in report.get("warnings", []):  # imbalance checks (classification)
                warnings.warn(f"{split} split: {note}", stacklevel=1)
            print_report_summary(report, title=f"{report['kind']} {target} on {split}")
            extra = (out / f"metrics-{split}.json", out / f"confusion-{split}.png",
                     out / f"pr-curve-{split}.png", out / f"worst-{split}.png") if out else ()
            with outputs_together(json_path, *extra):
                write_report(report, json_path, out)
            if json_out == "-":
                write_json_report("-", report)


def split_file_of(run: Path, data: str | None) -> str:
    """The split file of `run` (for --split-from), checked before any work."""
    from edgetl.errors import EdgetlError, UsageError
    from edgetl.runfolder import RunFolder

    if data is not None:
        raise UsageError("--split-from and --data both name the images to score",
                         "pass one of them")
    try:
        path: Path | None = RunFolder(run).split_path()
    except (EdgetlError, OSError):  # no task record: not a run
        path = None
    if path is None or not path.is_file():
        raise UsageError(f"--split-from {run}: not a run folder with a split file",
                         "pass the folder of a run made by 'edgetl finetune'")
    return str(path)
