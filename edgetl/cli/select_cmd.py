"""`edgetl select RECIPE`: the most accurate candidate within a latency and a time budget."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import (
    BATCH_HELP,
    DEVICE_HELP,
    ITERS_HELP,
    JSON_HELP,
    MIN_TIME_HELP,
    WARMUP_HELP,
    backend_help,
)
from edgetl.runtime import ARTIFACT_BACKENDS


def _default_sizes() -> str:
    from edgetl import tasks

    return "; ".join(f"{task.name} {','.join(map(str, task.select_sizes))}"
                     for task in tasks.TASKS.values())


def register(app: typer.Typer) -> None:
    @app.command("select")
    def select(
        recipe: Path = typer.Argument(..., help="Recipe YAML every candidate is trained with "
                                      "(its backbone and input size are what select varies)."),
        budget_ms: float = typer.Option(..., "--budget-ms", help="Latency budget per call "
                                        "(of --batch images) in milliseconds."),
        data: str | None = typer.Option(None, "--data",
                                        help="Data source overriding the recipe's."),
        budget_on: str = typer.Option("p90", "--budget-on",
                                      help="The statistic the budget applies to: p90 or p50."),
        backend: str = typer.Option("ort-cpu", "--backend",
                                    help=backend_help(ARTIFACT_BACKENDS)),
        batch: str = typer.Option("1", "--batch", help=BATCH_HELP + " select times one "
                                  "batch size, the one the budget is for."),
        precision: str = typer.Option(
            "fp32,int8", "--precision", help="Precisions to export and time, in order of "
            "preference (the first within budget is the one deployed)."),
        time_budget: str | None = typer.Option(
            None, "--time-budget", help="Time for training and scoring the candidates, e.g. "
            "30m, 1h, 90s: no new candidate starts when its estimate does not fit what is left."),
        out: Path | None = typer.Option(None, "--out",
                                        help="Output folder (default runs/select-<name>)."),
        backbones: str | None = typer.Option(
            None, "--backbones", help="Comma list of timm architectures (default: every "
            "registry backbone with offline weights, and the recipe's)."),
        sizes: str | None = typer.Option(None, "--sizes", help="Comma list of input sizes "
                                         "(default by task: " + _default_sizes() + ")."),
        phases: str = typer.Option("A", "--phases", help="A: the recipe's phase A on cached "
                                   "features; all: the recipe's phases."),
        overrides: list[str] = typer.Option([], "--set", help="Override a recipe key: "
                                            "a.b=value (as finetune)."),
        device: str = typer.Option("auto", "--device", help=DEVICE_HELP),
        threads: int | None = typer.Option(None, "--threads",
                                           help="CPU threads for timing (bench's --threads)."),
        warmup: str = typer.Option("auto", "--warmup", help=WARMUP_HELP),
        min_time: float = typer.Option(2.0, "--min-time", help=MIN_TIME_HELP),
        iters: int | None = typer.Option(None, "--iters", help=ITERS_HELP),
        bench_warmup: str | None = typer.Option(None, "--bench-warmup", hidden=True),
        bench_min_time: float | None = typer.Option(None, "--bench-min-time", hidden=True),
        bench_iters: int | None = typer.Option(None, "--bench-iters", hidden=True),
        json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP
                                            + " The same record as OUT/select.json."),
        calibration_images: int = typer.Option(
            16, "--calibration-images", help="int8 calibration images of the untrained probe."),
        latency_only: bool = typer.Option(False, "--latency-only",
                                          help="Stop after the latency step (nothing trained)."),
        keep_artifacts: bool = typer.Option(
            False, "--keep-artifacts", help="Keep each probe's exported artifacts."),
    ) -> None:
        """Pick the most accurate backbone and input size within a latency budget.

        On the target backend and within a training-time budget, for every task (scored on
        validation accuracy, mAP, mIoU or mask mAP); writes OUT/recipe.yaml for edgetl finetune.

        Exit 1 when no candidate is within the latency budget (select.json is still written), 2 for
        bad usage or data, 3 when the backend is not on this machine."""
        import sys

        from edgetl.bench.runner import parse_batches
        from edgetl.bench.timing import parse_warmup
        from edgetl.cli.common import console, deprecated, json_target, write_json_report
        from edgetl.clock import parse_duration
        from edgetl.errors import UsageError
        from edgetl.interrupt import activity
        from edgetl.runfolder import RunFolder
        from edgetl.select.config import (
            BenchSettings,
            SelectConfig,
            parse_names,
            parse_sizes,
        )
        from edgetl.select.report import render_table
        from edgetl.select.run import run_select

        warmup = deprecated("--bench-warmup", "--warmup", bench_warmup, warmup, "auto")
        min_time = deprecated("--bench-min-time", "--min-time", bench_min_time, min_time, 2.0)
        iters = deprecated("--bench-iters", "--iters", bench_iters, iters)
        batches = parse_batches(batch)
        if len(batches) != 1:
            raise UsageError(f"--batch {batch}: select times one batch size",
                             "give the batch the latency budget is for, e.g. --batch 1")
        json_target(json_out)
        if json_out == "-":
            console.file = sys.stderr  # standard output carries the JSON alone
        folder = out or Path("runs") / f"select-{recipe.stem}"
        config = SelectConfig(
            recipe=recipe, out=folder, budget_ms=budget_ms, overrides=tuple(overrides),
            data=data, budget_on=budget_on.lower(), backend=backend.lower(), batch=batches[0],
            precisions=tuple(p.lower() for p in parse_names(precision)),
            time_budget_s=parse_duration(time_budget) if time_budget is not None else None,
            backbones=parse_names(backbones), sizes=parse_sizes(sizes) if sizes else (),
            phases=phases, device=device,
            bench=BenchSettings(warmup=parse_warmup(warmup), min_time=min_time,
                                iters=iters, threads=threads),
            calibration_images=calibration_images, latency_only=latency_only,
            keep_artifacts=keep_artifacts,
        )
        config.validate()
        outputs = RunFolder(folder)  # select's output folder: its file names

        def say(line: str) -> None:
            console.print(line, highlight=False)

        with activity(f"select into {folder}", "select.json was not written: run it again "
                      "with another --out"):
            try:
                result = run_select(config, say)
            except Exception as exc:
                from edgetl.errors import GateFailedError

                if isinstance(exc, GateFailedError) and outputs.select_record_path.is_file():
                    import json

                    render_table(json.loads(outputs.select_record_path.read_text()), console)
                raise
        record = result.record
        write_json_report(json_out, record)
        render_table(record, console)
        pick = record.get("pick")
        if pick is not None:
            lo, hi = pick["ci95"]
            say(f"[bold green]pick[/] {pick['id']} as {pick['format']}: "
                f"{record['config']['budget_on']} "
                f"{pick['latency_ms'][record['config']['budget_on']]:.3f} ms untrained, "
                f"{pick['deployed_latency_ms'][record['config']['budget_on']]:.3f} ms trained "
                f"and exported, {pick['metric']} {pick['value']:.4f} (95% interval "
                f"{lo:.4f}-{hi:.4f})")
            if record["alternatives"]:
                say("faster and within the pick's interval on validation: "
                    + ", ".join(record["alternatives"]))
            say(f"next: edgetl finetune {outputs.recipe_path} --out runs/NAME && edgetl "
                f"export runs/NAME --format {pick['format']}")
        say(f"wrote {outputs.select_record_path}, {outputs.select_scatter_path}"
            + (f", {outputs.recipe_path}" if pick else ""))
