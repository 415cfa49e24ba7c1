"""`edgetl finetune RECIPE`: thin wrapper over `edgetl.train.finetune.run_finetune`."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("finetune")
    def finetune(
        recipe: Path = typer.Argument(..., help="Recipe YAML (see recipes/)."),
        overrides: list[str] = typer.Option([], "--set", help="Override a recipe key: a.b=value "
                                            "(phases by name: phases.B.epochs=5)."),
        data: str | None = typer.Option(None, "--data",
                                        help="Data source overriding the recipe's."),
        out: Path | None = typer.Option(None, "--out", help="Run folder (default runs/<name>)."),
        device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
        seed: int | None = typer.Option(None, "--seed",
                                        help="Random seed overriding the recipe's."),
        resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run."),
    ) -> None:
        """Fine-tune a pretrained backbone in phases (A head, B last blocks, C all)."""
        from edgetl.cli.common import console
        from edgetl.cli.render import print_report_summary
        from edgetl.errors import UsageError
        from edgetl.interrupt import activity
        from edgetl.recipe import load_recipe
        from edgetl.train.finetune import run_finetune

        if device not in ("auto", "cpu", "cuda"):
            raise UsageError(f"--device must be auto, cpu or cuda, got {device!r}")
        extra = list(overrides)
        if data is not None:
            extra.append(f"data.source={data}")
        if seed is not None:
            extra.append(f"train.seed={seed}")
        resolved = load_recipe(recipe, extra)
        run_dir = out or Path("runs") / resolved.name
        with activity(f"finetune of {run_dir}", lambda: _resume_hint(run_dir)):
            result = run_finetune(resolved, run_dir, device=device, resume=resume,
                                  console=console)
        if not result.test_report:  # a non-zero rank under torchrun: rank 0 reports
            return
        print_report_summary(result.test_report, title=f"test split, best checkpoint "
                             f"(epoch {result.best_epoch})")
        console.print(f"training wall time {result.train_seconds:.1f} s; run folder {run_dir}")


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
