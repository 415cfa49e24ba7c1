"""Rich rendering of evaluation reports (shared by finetune and evaluate)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from edgetl.cli.common import console


def print_report_summary(report: dict[str, Any], title: str = "evaluation") -> None:
    """Headline metrics, per-class table and the confusion matrix as text."""
    lo, hi = report["accuracy_ci95"]
    auc = (report.get("roc_auc") or {}).get("value")
    console.print(
        f"[bold]{title}[/]: accuracy [bold]{report['accuracy']:.2%}[/] "
        f"(95% CI {lo:.2%}-{hi:.2%}), balanced accuracy {report['balanced_accuracy']:.2%}, "
        f"macro-F1 {report['macro_f1']:.4f}"
        + (f", ROC-AUC {auc:.4f}" if auc is not None else "") + f", n={report['n']}"
    )
    table = Table("class", "precision", "recall", "F1", "support")
    for name, row in report["per_class"].items():
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}",
                      f"{row['f1']:.3f}", str(row["support"]))
    console.print(table)
    names = report["class_names"]
    cm = Table(title="confusion matrix (rows true, columns predicted)")
    cm.add_column("")
    for name in names:
        cm.add_column(name, justify="right")
    for name, row in zip(names, report["confusion_matrix"], strict=True):
        cm.add_row(name, *[str(v) for v in row])
    console.print(cm)
