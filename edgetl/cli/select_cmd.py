"""`edgetl select RECIPE`: the most accurate candidate within a latency and a time budget."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.runtime.backends import ARTIFACT_BACKENDS, or_list


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
                                    help=f"{or_list(ARTIFACT_BACKENDS)} (as edgetl bench)."),
        batch: int = typer.Option(1, "--batch", help="Images per timed call."),
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
                                         "(default 160,224,288 for classification)."),
        phases: str = typer.Option("A", "--phases", help="A: the recipe's phase A on cached "
                                   "features; all: the recipe's phases."),
        overrides: list[str] = typer.Option([], "--set", help="Override a recipe key: "
                                            "a.b=value (as finetune)."),
        device: str = typer.Option("auto", "--device", help="Training device: auto, cpu, cuda."),
        threads: int | None = typer.Option(None, "--threads",
                                           help="CPU threads for timing (bench's --threads)."),
        bench_warmup: str = typer.Option("auto", "--bench-warmup",
                                         help="Warm-up calls per timing, or auto."),
        bench_min_time: float = typer.Option(2.0, "--bench-min-time",
                                             help="Seconds to time each precision for."),
        bench_iters: int | None = typer.Option(None, "--bench-iters",
                                               help="Time exactly N calls instead."),
        calibration_images: int = typer.Option(
            16, "--calibration-images", help="int8 calibration images of the untrained probe."),
        latency_only: bool = typer.Option(False, "--latency-only",
                                          help="Stop after the latency step (nothing trained)."),
        keep_artifacts: bool = typer.Option(
            False, "--keep-artifacts", help="Keep each probe's exported artifacts."),
    ) -> None:
        """Pick the most accurate backbone and input size within a latency budget on the target
        backend and a training-time budget; writes OUT/recipe.yaml for edgetl finetune.

        Exit 1 when no candidate is within the latency budget (select.json is still written),
        2 for bad usage or data, 3 when the backend is not on this machine.
        """
        from edgetl.bench.timing import parse_warmup
        from edgetl.cli.common import console
        from edgetl.interrupt import activity
        from edgetl.runfolder import RunFolder
        from edgetl.select.config import (
            BenchSettings,
            SelectConfig,
            parse_duration,
            parse_names,
            parse_sizes,
        )
        from edgetl.select.report import render_table
        from edgetl.select.run import run_select

        folder = out or Path("runs") / f"select-{recipe.stem}"
        config = SelectConfig(
            recipe=recipe, out=folder, budget_ms=budget_ms, overrides=tuple(overrides),
            data=data, budget_on=budget_on.lower(), backend=backend.lower(), batch=batch,
            precisions=tuple(p.lower() for p in parse_names(precision)),
            time_budget_s=parse_duration(time_budget) if time_budget is not None else None,
            backbones=parse_names(backbones), sizes=parse_sizes(sizes) if sizes else (),
            phases=phases, device=device,
            bench=BenchSettings(warmup=parse_warmup(bench_warmup), min_time=bench_min_time,
                                iters=bench_iters, threads=threads),
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
