"""`edgetl finetune RECIPE`: thin wrapper over `edgetl.train.finetune.run_finetune`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import DEVICE_HELP, check_device

DATA_HELP = ("Data source overriding the recipe's data.source. Classification: a folder tree "
             "(one subfolder per class, optionally under train/ val/ test/), a CSV image list "
             "(path,label[,split,group]) or a built-in name (elpv). Detection: Pascal VOC, "
             "COCO JSON, YOLO, a box CSV (a prefix voc:, coco:, yolo:, csv: forces one) or "
             "neon-trees. Semantic segmentation: an image folder with a mask folder "
             "(class-index or palette PNGs) or COCO. Instance segmentation: COCO polygons/RLE, "
             "instance-id mask PNGs, VIA or YOLO segmentation (prefix coco:, masks:, via:, "
             "yolo:). Also the split file edgetl data split wrote (CSV; instance: COCO JSON).")
GROUP_HELP = ("Group images by their file name so a group stays in one split (frames of one "
              "video, one patient): a regular expression searched in the base name; its first "
              "capture group (or the whole match) is the group, e.g. '^([^_]+)_'. Every task; "
              "sets the recipe's data.group_from_name.")
TIME_BUDGET_HELP = ("Wall-clock budget for the run (set-up, phases, validation; the test "
                    "report runs after it): 5m, 300s, 1h30m or seconds. Each phase is sized from "
                    "its measured step time (earlier phases shortened in proportion when the "
                    "plan does not fit, the last takes the time left) and ends at an epoch "
                    "boundary when the next epoch would not fit; the best checkpoint is kept. "
                    "With --resume the run gets the whole budget again, counted from the resume.")


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    def finetune(
        recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/)."),
        overrides: list[str] = typer.Option([], "--set", help="Override a recipe key: a.b=value "
                                            "(phases by name: phases.B.epochs=5)."),
        data: str | None = typer.Option(None, "--data", help=DATA_HELP),
        group_from_name: str | None = typer.Option(None, "--group-from-name", help=GROUP_HELP),
        out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<name>)."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        seed: int | None = typer.Option(None, "--seed",
                                        help="Random seed overriding the recipe's."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
        time_budget: str | None = typer.Option(None, "--time-budget", help=TIME_BUDGET_HELP),
    ) -> None:
        """Fine-tune a pretrained backbone for the recipe's task, in phases.

        Any task (classification, detection, semantic or instance segmentation), in phases (A head,
        B last blocks, C all); the run folder holds the checkpoints, the split and the test report
        (accuracy, mAP, mIoU or mask mAP)."""
        from edgetl.cli.common import console
        from edgetl.cli.render import print_report_summary
        from edgetl.clock import parse_duration
        from edgetl.interrupt import activity
        from edgetl.recipe import load_recipe, require_data_source
        from edgetl.train.finetune import run_finetune

        check_device(device)
        budget_s = parse_duration(time_budget) if time_budget is not None else None
        extra = list(overrides)
        if data is not None:
            extra.append(f"data.source={_yaml_string(data)}")
        if group_from_name is not None:
            extra.append(f"data.group_from_name={_yaml_string(group_from_name)}")
        if seed is not None:
            extra.append(f"train.seed={seed}")
        resolved = load_recipe(recipe, extra)
        require_data_source(resolved, recipe)
        run_dir = out or Path("runs") / resolved.name
        with activity(f"finetune of {run_dir}", lambda: _resume_hint(run_dir)):
            result = run_finetune(resolved, run_dir, device=device, resume=resume,
                                  console=console, time_budget_s=budget_s)
        if not result.test_report:  # a non-zero rank under torchrun: rank 0 reports
            return
        print_report_summary(result.test_report, title=f"test split, best checkpoint "
                             f"(epoch {result.best_epoch})")
        console.print(f"training wall time {result.train_seconds:.1f} s; run folder {run_dir}")


def _yaml_string(text: str) -> str:
    """A --set value that YAML reads back as exactly this string (a regex, a path)."""
    import json

    return json.dumps(text)


def _resume_hint(run_dir: Path) -> str:
    """After Ctrl-C: what the run folder holds now, and the command that continues it."""
    import json

    from edgetl.runfolder import RunFolder

    state = RunFolder(run_dir).train_state_path
    if not state.is_file():
        return "no epoch was saved, nothing of the run blocks a retry: run the same command again"
    try:
        epochs = json.loads(state.read_text()).get("global_epoch")
    except (OSError, ValueError):
        epochs = None
    saved = f"{epochs} epoch(s)" if epochs is not None else "the last finished epoch"
    return (f"{saved} saved in {RunFolder(run_dir).last_path}; no test report was written: "
            "continue with the same command and --resume")
