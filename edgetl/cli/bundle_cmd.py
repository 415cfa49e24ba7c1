"""`edgetl bundle ARTIFACT --against RUN --out DIR` and the read-back of a device's report
(`edgetl verify --device-report REPORT --against RUN`)."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import console


def register(app: typer.Typer) -> None:
    @app.command("bundle")
    def bundle(
        artifact: Path = typer.Argument(..., help="Exported artifact (.onnx)."),
        against: Path = typer.Option(..., "--against", help="Run folder it came from."),
        out: Path = typer.Option(..., "--out", help="New folder to write the bundle to."),
        samples: int = typer.Option(24, "--samples", help="Test images to carry (stratified "
                                                          "by class)."),
        agreement_budget: float | None = typer.Option(
            None, "--agreement-budget", help="Parity gate on the device, as verify's flag "
            "(default: verify's for the task and precision)."),
        metric_drop_budget: float | None = typer.Option(
            None, "--metric-drop-budget", help="Dataset gate on the device, in points, as "
            "verify's flag (default: verify's for the task and precision)."),
    ) -> None:
        """Write a torch-free folder that checks the artifact on the device it will run on.

        Every task: parity with the torch model and the task's metric on a labelled sample
        (accuracy, mAP, mIoU, mask mAP) with verify's gates. Copy DIR there and run
        `python run.py` (numpy, Pillow and the artifact's runtime are all it needs); read its
        report back with `edgetl verify --device-report` (with the same budget flags)."""
        from edgetl.device.build import build_bundle
        from edgetl.errors import UsageError
        from edgetl.interrupt import activity
        from edgetl.verify import check_options

        if samples < 1:
            raise UsageError(f"--samples {samples} carries nothing", "give at least 1")
        check_options("test", agreement_budget, metric_drop_budget, None)
        with activity(f"bundle of {artifact}", "the bundle folder is incomplete: delete it"):
            path = build_bundle(artifact, against, out, samples, agreement_budget,
                                metric_drop_budget)
        console.print(f"bundle written to {path}; on the device: python run.py", highlight=False)


def verify_device_report(report_path: Path, run: Path, baseline: Path | None,
                         max_regression: float, agreement: float | None = None,
                         drop: float | None = None) -> None:
    """Print the device's verdict and environment; exit 1 when a gate fails. `agreement` /
    `drop`: verify's budget flags, which the gates are judged again with."""
    from rich.table import Table

    from edgetl.device.readback import (
        as_bench_report,
        check_report,
        environment_line,
        load_baseline,
        load_device_report,
    )
    from edgetl.errors import GateFailedError

    report = load_device_report(report_path)
    checks = check_report(report, run, agreement, drop)
    failures = [f"{c.name}: {c.summary}" for c in checks if not c.passed]
    if baseline is not None:
        from edgetl.bench.compare import compare_reports

        comparison = compare_reports(load_baseline(baseline), as_bench_report(report),
                                     max_regression, baseline_path=str(baseline))
        failures += [f"latency: {f}" for f in comparison.failures]
    table = Table(title=f"device report {report_path.name} against {run}")
    for column in ("check", "result", "figures"):
        table.add_column(column, overflow="fold")
    for c in checks:
        table.add_row(c.name, "pass" if c.passed else "FAIL", c.summary)
    console.print(table)
    console.print(environment_line(report), highlight=False)
    for backend, row in report["backends"].items():
        if "latency" in row:
            console.print(f"{backend}: p50 {row['latency']['p50_ms']:.3f} ms, p90 "
                          f"{row['latency']['p90_ms']:.3f} ms", highlight=False)
    if failures:
        raise GateFailedError("device report failed: " + "; ".join(failures))
    console.print("device report: PASSED")
