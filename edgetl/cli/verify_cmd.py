"""`edgetl verify ARTIFACT --against RUN`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import (
    DEFAULT_BACKEND,
    JSON_HELP,
    backend_help,
    console,
    deprecated,
    json_target,
)
from edgetl.runtime import ARTIFACT_BACKENDS


def _budget_defaults() -> tuple[str, str]:
    """Each task's default budgets per precision, read from the tables verify gates with (its
    `verify_budgets`)."""
    from edgetl import tasks

    tables = [tasks.get(name).load("verify_budgets") for name in tasks.names()]
    return _listed(tables, "agreement_words", "agreement"), _listed(tables, "drop_words", "drop")


def _listed(tables: list, words: str, field: str) -> str:
    """"measure for task (defaults) and task (defaults), ...": tasks gated on the same
    measure share its name, in the order the tasks are listed."""
    groups: dict[str, list[str]] = {}
    for table in tables:
        groups.setdefault(getattr(table, words), []).append(
            f"{table.task_words} ({table.per_precision(getattr(table, field))})")
    return ", ".join(f"{measure} for {' and '.join(entries)}"
                     for measure, entries in groups.items())


_AGREEMENT, _DROP = _budget_defaults()


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        artifact: Path | None = typer.Argument(
            None, help="Exported artifact (.onnx, .xml or .engine); none with --device-report."),
        against: Path = typer.Option(..., "--against", help="Run folder it came from."),
        split: str = typer.Option("test", "--split", help="Split of the run to check on."),
        json_out: str | None = typer.Option(None, "--json", metavar="FILE|-", help=JSON_HELP),
        backend: str | None = typer.Option(None, "--backend",
                                           help=backend_help(ARTIFACT_BACKENDS, DEFAULT_BACKEND)),
        agreement_budget: float | None = typer.Option(
            None, "--agreement-budget",
            help="Parity gate: the smallest share, 0-1, of the PyTorch model's outputs the "
                 "artifact must agree with. Default by task (fp32/fp16/int8): "
                 + _AGREEMENT + "."),
        metric_drop_budget: float | None = typer.Option(
            None, "--metric-drop-budget",
            help="Dataset gate: the largest drop, in points, of the task's metric against the "
                 "PyTorch model. Default by task (fp32/fp16/int8): " + _DROP + "."),
        top1_budget: float | None = typer.Option(None, "--top1-budget", hidden=True),
        accuracy_budget: float | None = typer.Option(None, "--accuracy-budget", hidden=True),
        max_images: int | None = typer.Option(
            None, "--max-images", help="Check a subset of this many images (stratified by "
            "class for classification)."),
        threads: int | None = typer.Option(None, "--threads",
                                           help="onnxruntime intra-op threads."),
        device_report: Path | None = typer.Option(
            None, "--device-report", help="Read back the report a bundle's run.py wrote on a "
            "device (see `edgetl bundle`) instead of checking an artifact here."),
        baseline: Path | None = typer.Option(
            None, "--baseline", help="With --device-report: a bench or device report whose "
            "latency the device's may not regress from."),
        max_regression: float = typer.Option(
            0.10, "--max-regression", help="With --baseline: allowed p50 slowdown (0.10 = 10%), "
            "on top of the runs' measured spread, as bench gates it."),
    ) -> None:
        """Check an artifact against its run; exit 1 when a gate fails.

        For every task: the embedded spec, a preprocessing golden test, output parity with PyTorch
        (top-1 agreement, matched detections, pixel agreement, mask IoU) and the dataset gate
        (accuracy, mAP, mIoU, mask mAP). Exit 1 when a gate fails, after writing the report."""
        from edgetl.cli.common import check_backend, write_json_report
        from edgetl.errors import GateFailedError, UsageError
        from edgetl.verify import check_options

        agreement = deprecated("--top1-budget", "--agreement-budget", top1_budget,
                               agreement_budget)
        drop = deprecated("--accuracy-budget", "--metric-drop-budget", accuracy_budget,
                          metric_drop_budget)
        if device_report is not None:
            from edgetl.cli.bundle_cmd import verify_device_report

            check_options(split, agreement, drop, None)
            return verify_device_report(device_report, against, baseline, max_regression,
                                        agreement, drop)
        if artifact is None:
            raise UsageError("verify needs an ARTIFACT (or --device-report REPORT)")
        from edgetl.interrupt import activity
        from edgetl.runtime.backends import default_backend
        from edgetl.verify import verify_artifact

        backend = check_backend(backend or default_backend(artifact), ARTIFACT_BACKENDS,
                                "verify")
        check_options(split, agreement, drop, max_images)
        json_target(json_out)
        out = console if json_out != "-" else _stderr_console()
        with activity(f"verify of {artifact}",
                      "no report was written and the gate did not pass: run it again"):
            out.print(f"verifying {artifact} against {against} on the {split} split",
                      highlight=False)
            report = verify_artifact(
                artifact, against, split, backend, top1_budget=agreement,
                accuracy_budget=drop, max_images=max_images, threads=threads,
            )
            if json_out == "-":
                write_json_report("-", report.to_dict())
            elif json_out is not None:
                report.write_json(Path(json_out))
        report.render(out)
        if not report.passed:
            raise GateFailedError(f"verify failed: {report.failure_line()}")


def _stderr_console():  # noqa: ANN202 - rich Console
    from edgetl.cli.common import err_console

    return err_console
