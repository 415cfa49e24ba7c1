"""`edgetl verify ARTIFACT --against RUN`."""

from __future__ import annotations

from pathlib import Path

import typer

from edgetl.cli.common import console
from edgetl.runtime.backends import ARTIFACT_BACKENDS, or_list


def register(app: typer.Typer) -> None:
    @app.command("verify")
    def verify(
        artifact: Path = typer.Argument(..., help="Exported artifact."),
        against: Path = typer.Option(..., "--against", help="Run folder it came from."),
        split: str = typer.Option("test", "--split", help="Split to check on."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the report as JSON."),
        backend: str = typer.Option("ort-cpu", "--backend", help=f"{or_list(ARTIFACT_BACKENDS)}."),
        top1_budget: float | None = typer.Option(
            None, "--top1-budget",
            help="Minimum top-1 agreement with PyTorch, 0-1 (default by precision: fp32 1.0, "
                 "fp16 0.995, int8 0.98)."),
        accuracy_budget: float | None = typer.Option(
            None, "--accuracy-budget",
            help="Largest accuracy drop in points (default: 0.5 fp32/fp16, 1.0 int8)."),
        max_images: int | None = typer.Option(
            None, "--max-images", help="Check a stratified subset of this many images."),
        threads: int | None = typer.Option(None, "--threads",
                                           help="onnxruntime intra-op threads."),
    ) -> None:
        """Spec, preprocessing golden test, output parity and accuracy gates (exit 1 on failure)."""
        from edgetl.errors import GateFailedError
        from edgetl.interrupt import activity
        from edgetl.io import require_writable
        from edgetl.verify import check_options, verify_artifact

        check_options(split, top1_budget, accuracy_budget, max_images)
        if json_out is not None:
            require_writable(json_out, "--json")
        with activity(f"verify of {artifact}",
                      "no report was written and the gate did not pass: run it again"):
            console.print(f"verifying {artifact} against {against} on the {split} split",
                          highlight=False)
            report = verify_artifact(
                artifact, against, split, backend, top1_budget=top1_budget,
                accuracy_budget=accuracy_budget, max_images=max_images, threads=threads,
            )
            if json_out is not None:
                report.write_json(json_out)
        report.render(console)
        if not report.passed:
            raise GateFailedError(f"verify failed: {report.failure_line()}")
