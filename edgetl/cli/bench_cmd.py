"""`edgetl bench ARTIFACT`: latency per backend/precision/batch/mode, and a regression gate."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import (
    BATCH_HELP,
    ITERS_HELP,
    JSON_HELP,
    MIN_TIME_HELP,
    WARMUP_HELP,
    backend_help,
    backend_names,
    console,
    err_console,
)
from edgetl.runfolder import BEST

# bench also times through onnxruntime's TensorRT provider, and picks one itself with auto
_BENCH_BACKENDS = ("auto", *backend_names(), "ort-trt")


def _image_files(values: list[Path]) -> tuple[Path, ...]:
    """--images values: files as given, folders expanded to the images inside (as predict)."""
    from edgetl.predict.image_paths import image_files

    return tuple(image_files(values))


def register(app: typer.Typer) -> None:
    @app.command("bench")
    def bench(
        artifact: Path = typer.Argument(..., help="Exported artifact (.onnx/.engine) or run "
                                        "folder (torch, or its export/model.onnx)."),
        backend: list[str] = typer.Option(
            ["auto"], "--backend", help=backend_help(
                _BENCH_BACKENDS, "Repeatable or a comma list; auto: the fastest this machine "
                "has for the artifact; ort-trt: onnxruntime's TensorRT provider.")),
        batch: str = typer.Option("1", "--batch", help=BATCH_HELP),
        threads: int | None = typer.Option(None, "--threads",
                                           help="CPU intra-op threads (default: the runtime's)."),
        mode: list[str] = typer.Option(
            ["compute"], "--mode", help="compute (the model alone) or e2e (as predict: decode, "
            "preprocessing, inference and the task's post-processing: softmax and top-k for "
            "classification, boxes mapped back for detection, masks mapped back for semantic "
            "and instance segmentation); repeatable or a comma list."),
        warmup: str = typer.Option("auto", "--warmup", help=WARMUP_HELP),
        min_time: float = typer.Option(2.0, "--min-time", help=MIN_TIME_HELP),
        iters: int | None = typer.Option(None, "--iters", help=ITERS_HELP),
        images: list[Path] = typer.Option(
            [], "--images", help="Image files or folders to feed (repeatable); default: the "
            "source run's test images."),
        json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP),
        markdown: Path | None = typer.Option(None, "--markdown", help="Write a markdown table."),
        histogram: Path | None = typer.Option(
            None, "--histogram", help="Latency histogram PNG (default: beside --json)."),
        baseline: Path | None = typer.Option(None, "--baseline",
                                             help="Earlier JSON report to gate against."),
        max_regression: float = typer.Option(
            0.10, "--max-regression", help="Allowed p50 slowdown (0.10 = 10%), on top of the "
            "runs' measured spread and the machine load measured beside each row."),
        allow_missing: bool = typer.Option(
            False, "--allow-missing", help="Baseline rows this run lacks do not fail the gate."),
        allow_different_spec: bool = typer.Option(
            False, "--allow-different-spec",
            help="Compare with a baseline whose preprocessing spec differs."),
        normalize: bool = typer.Option(
            False, "--normalize", help="Rows get p50 / a fixed reference workload timed beside "
            "them, and the gate compares those ratios: for baselines from another machine."),
        checkpoint: str = typer.Option(BEST, "--checkpoint",
                                       help="torch: best or last checkpoint of the run."),
    ) -> None:
        """Latency per backend and batch size, with a regression gate.

        Latency of an artifact or a run of any task (classification, detection, semantic or instance
        segmentation) per backend, precision, batch size and mode, with a regression gate against a
        baseline.

        Exit 1 when the gate fails (after writing the reports), 3 when a backend is not available
        here."""
        import sys

        from edgetl.bench.runner import BenchConfig, parse_batches, run_bench, split_list
        from edgetl.bench.timing import parse_warmup
        from edgetl.cli.common import write_json_report
        from edgetl.errors import UsageError
        from edgetl.interrupt import activity
        from edgetl.io import require_writable

        if json_out == "-":
            console.file = sys.stderr  # standard output carries the JSON alone
        json_path = Path(json_out) if json_out not in (None, "-") else None
        config = BenchConfig(
            artifact=artifact, backends=split_list(backend), batches=parse_batches(batch),
            modes=split_list(mode), threads=threads, warmup=parse_warmup(warmup),
            min_time=min_time, iters=iters, images=_image_files(images), normalize=normalize,
            checkpoint=checkpoint,
        )
        if max_regression < 0:
            raise UsageError(f"--max-regression must be >= 0, got {max_regression}")
        for path, option in ((json_path, "--json"), (markdown, "--markdown"),
                             (histogram, "--histogram")):
            if path is not None:
                require_writable(path, option)
        comparison = None
        baseline_report = None
        if baseline is not None:  # read it first: a bad baseline should not cost a bench run
            from edgetl.device.readback import load_baseline

            baseline_report = load_baseline(baseline)  # a bench or a device report

        def progress(row: dict) -> None:
            err_console.print(f"timed {row['backend']} {row['precision']} batch {row['batch']} "
                              f"{row['mode']}: p50 {row['p50_ms']:.3f} ms, {row['iters']} calls",
                              highlight=False)

        with activity(f"bench of {artifact}", "no report was written and no gate passed: run "
                      "it again"):
            # printed inside the activity: a Ctrl-C right after this line names the bench
            console.print(f"benchmarking {artifact}: batch {batch}, backend "
                          f"{', '.join(config.backends)}, mode {', '.join(config.modes)}",
                          highlight=False)
            result = run_bench(config, progress)
            report = result.report
            if baseline_report is not None:
                from edgetl.bench.compare import compare_reports

                comparison = compare_reports(
                    baseline_report, report, max_regression, allow_missing=allow_missing,
                    allow_different_spec=allow_different_spec, baseline_path=str(baseline))
                report["comparison"] = comparison.to_dict()
            finish(report, result.samples_ms, json_path, markdown, histogram)
            if json_out == "-":
                write_json_report("-", report)
        if comparison is not None and not comparison.passed:
            from edgetl.errors import GateFailedError

            raise GateFailedError(comparison.failure_line())


def finish(report: dict, samples_ms: list, json_out: Path | None, markdown: Path | None,
           histogram: Path | None) -> None:
    """Write the requested files, then print the table (and the gate, if any)."""
    from edgetl.bench.report import (
        default_histogram_path,
        render_comparison,
        render_table,
        write_histogram,
        write_json,
        write_markdown,
    )
    from edgetl.io import outputs_together

    if histogram is None and json_out is not None:
        histogram = default_histogram_path(json_out)
    with outputs_together(histogram, json_out, markdown):  # all of them, or none
        if histogram is not None:
            report["histogram"] = str(histogram)
            write_histogram(report["rows"], samples_ms, histogram)
        if json_out is not None:
            write_json(report, json_out)
        if markdown is not None:
            write_markdown(report, markdown)
    render_table(report, console)
    if report.get("comparison"):
        render_comparison(report["comparison"], console)
    written = [str(p) for p in (json_out, markdown, histogram) if p is not None]
    if written:
        console.print("wrote " + ", ".join(written), highlight=False)
