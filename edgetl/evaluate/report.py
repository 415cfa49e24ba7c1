"""`evaluate` on a run or an artifact, and writing its JSON and confusion-matrix PNG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.errors import ArtifactError
from edgetl.io import atomic_write_json


def evaluate_target(target: Path, split: str = "test", data: str | None = None,
                    device: str = "cpu") -> dict[str, Any]:
    """Dispatch on what `target` is: a run/checkpoint folder, or an exported artifact file."""
    if target.is_dir():
        from edgetl.evaluate.run_eval import evaluate_checkpoint

        return evaluate_checkpoint(target, split=split, data=data, device=device)
    if target.is_file():
        from edgetl.evaluate.artifact_eval import evaluate_artifact

        return evaluate_artifact(target, split=split, data=data)
    raise ArtifactError(f"nothing to evaluate at {target}",
                        "pass a run folder from 'edgetl finetune' or an exported .onnx file")


def write_report(report: dict[str, Any], json_out: Path | None, out_dir: Path | None) -> None:
    from edgetl.evaluate.plots import plot_confusion

    if json_out is not None:
        atomic_write_json(json_out, report)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out_dir / f"metrics-{report['split']}.json", report)
        plot_confusion(report["confusion_matrix"], report["class_names"],
                       out_dir / f"confusion-{report['split']}.png",
                       title=f"{report['kind']} on {report['split']} (n={report['n']})")
