"""The pictures `evaluate --out` writes beside a report, one function per task (the task's
`report_figures` slot names it). Plotting modules are imported inside: reading a report needs
no matplotlib."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def classifier_figures(report: dict[str, Any], out_dir: Path, split: str) -> None:
    """The confusion matrix and the one-vs-rest precision-recall curves (with any operating
    points)."""
    from edgetl.evaluate.plots import plot_class_pr_curves, plot_confusion

    plot_confusion(report["confusion_matrix"], report["class_names"],
                   out_dir / f"confusion-{split}.png",
                   title=f"{report['kind']} on {split} (n={report['n']})")
    plot_class_pr_curves(report["pr_curves"], out_dir / f"pr-curve-{split}.png",
                         report.get("operating_points", []), split,
                         title=f"{report['kind']} on {split}: one-vs-rest precision-recall")


def detector_figures(report: dict[str, Any], out_dir: Path, split: str) -> None:
    """The confusion of matched detections and the precision-recall curves at IoU 0.5."""
    from edgetl.evaluate.plots import plot_confusion, plot_pr_curves

    confusion = report["confusion"]
    plot_confusion(confusion["matrix"], confusion["labels"],
                   out_dir / f"confusion-{split}.png",
                   title=f"{report['kind']} on {split}: detections matched at IoU "
                         f"{confusion['iou']} (n={report['n_images']})")
    plot_pr_curves(report["pr_curve"], out_dir / f"pr-curve-{split}.png",
                   title=f"{report['kind']} on {split}: precision-recall at IoU 0.5")


def segmenter_figures(report: dict[str, Any], out_dir: Path, split: str) -> None:
    """The pixel confusion matrix and the worst images."""
    from edgetl.evaluate.plots import plot_confusion
    from edgetl.evaluate.semantic_run import draw_worst

    plot_confusion(report["confusion_matrix"], report["class_names"],
                   out_dir / f"confusion-{split}.png",
                   title=f"{report['kind']} on {split}: pixels (n={report['n_images']} "
                         "images)")
    draw_worst(report, out_dir / f"worst-{split}.png")


def instance_figures(report: dict[str, Any], out_dir: Path, split: str) -> None:
    """The worst images, their instances drawn."""
    from edgetl.evaluate.instance_run import draw_worst

    draw_worst(report, out_dir / f"worst-{split}.png")
