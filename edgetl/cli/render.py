"""Rich rendering of evaluation reports (shared by finetune and evaluate)."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from edgetl.cli.common import console


def print_report_summary(report: dict[str, Any], title: str = "evaluation") -> None:
    """The task's headline metrics, per-class table and confusion matrix as text (the task's
    `report_summary`)."""
    from edgetl.evaluate.report import task_of_report

    task_of_report(report).load("report_summary")(report, title)


def print_classification(report: dict[str, Any], title: str) -> None:
    """A classifier's accuracy with its interval, per-class table, confusion matrix and any
    operating points."""
    lo, hi = report["accuracy_ci95"]
    auc = (report.get("roc_auc") or {}).get("value")
    console.print(
        f"[bold]{title}[/]: accuracy [bold]{report['accuracy']:.2%}[/] "
        f"(95% CI {lo:.2%}-{hi:.2%}), balanced accuracy {report['balanced_accuracy']:.2%}, "
        f"macro-F1 {report['macro_f1']:.4f}"
        + (f", ROC-AUC {auc:.4f}" if auc is not None else "") + f", n={report['n']}"
    )
    baseline = report.get("majority_baseline")
    if baseline:
        console.print(f"majority-class baseline {baseline['accuracy']:.2%} (always "
                      f"'{baseline['class']}')", markup=False)
    for note in report.get("warnings", []):
        console.print(f"warning: {note}", markup=False, style="yellow")
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
    decision = report.get("decision") or {}
    if decision.get("rule") == "operating_point":
        console.print(f"decisions: {decision['description']} (threshold "
                      f"{decision['threshold']:.4f}, {decision['target']})", highlight=False)
    for entry in report.get("operating_points", []):
        _print_operating_point(entry, report.get("split", "test"))


def _share(value: float | None, interval: list[float] | None = None) -> str:
    if value is None:
        return "-"
    text = f"{value:.1%}"
    return text + (f" (95% CI {interval[0]:.1%}-{interval[1]:.1%})" if interval else "")


def _print_operating_point(entry: dict[str, Any], split: str) -> None:
    """One line per target: the validation threshold and what it gives on the split."""
    if entry.get("threshold") is None:
        console.print(f"operating point {entry['target']}: not reachable: {entry['reason']}",
                      highlight=False)
        return
    seen, got = entry["chosen_on"], entry[split]
    console.print(
        f"operating point {entry['target']}: threshold {entry['threshold']:.4f} (validation, "
        f"{seen['images']} images: recall {_share(seen['recall'])}); on {split} "
        f"({got['images']} images, {got['positives']} {entry['class']}): recall "
        f"{_share(got['recall'], got.get('recall_ci95'))}, precision "
        f"{_share(got['precision'], got.get('precision_ci95'))}, false-alarm rate "
        f"{_share(got['false_alarm_rate'], got.get('false_alarm_rate_ci95'))}; argmax gave "
        f"recall {_share(got['argmax']['recall'])}, false-alarm rate "
        f"{_share(got['argmax']['false_alarm_rate'])}", highlight=False)


def _interval(report: dict[str, Any], key: str) -> str:
    interval = report.get(f"{key}_ci95")
    return f" (95% CI {interval[0]:.3f}-{interval[1]:.3f})" if interval else ""


def print_detection(report: dict[str, Any], title: str) -> None:
    """A detector's mAP figures, per-class AP and the matched-detection confusion."""
    console.print(
        f"[bold]{title}[/]: mAP@[.5:.95] [bold]{report['map']:.3f}[/]{_interval(report, 'map')}, "
        f"AP50 {report['map50']:.3f}{_interval(report, 'map50')}, AP75 {report['map75']:.3f}, "
        f"AP small/medium/large {report['map_small']:.3f}/{report['map_medium']:.3f}/"
        f"{report['map_large']:.3f}, AR@100 {report['ar100']:.3f}; "
        f"{report['n_images']} images, {report['n_boxes']} boxes")
    table = Table("class", "AP", "AP50", "boxes")
    for row in report["per_class"]:
        table.add_row(row["name"], f"{row['ap']:.3f}", f"{row['ap50']:.3f}", str(row["n_boxes"]))
    console.print(table)
    confusion = report.get("confusion")
    if confusion:
        cm = Table(title=f"detections (score >= {confusion['min_score']}) matched at IoU "
                         f"{confusion['iou']}: rows true, columns detected")
        cm.add_column("")
        for name in confusion["labels"]:
            cm.add_column(name, justify="right")
        for name, row in zip(confusion["labels"], confusion["matrix"], strict=True):
            cm.add_row(name, *[str(v) for v in row])
        console.print(cm)


def print_semantic(report: dict[str, Any], title: str) -> None:
    """A segmenter's mIoU figures and per-class IoU and Dice."""
    console.print(
        f"[bold]{title}[/]: mIoU [bold]{report['miou']:.4f}[/]{_interval(report, 'miou')}, "
        f"mean Dice {report['mdice']:.4f}, pixel accuracy {report['pixel_accuracy']:.4f}, "
        f"frequency-weighted IoU {report['fw_iou']:.4f}; {report['n_images']} images")
    table = Table("class", "IoU", "Dice", "pixels")
    for row in report["per_class"]:
        iou = "-" if row["iou"] is None else f"{row['iou']:.4f}"
        dice = "-" if row["dice"] is None else f"{row['dice']:.4f}"
        table.add_row(row["name"], iou, dice, str(row["pixels"]))
    console.print(table)


def print_instance(report: dict[str, Any], title: str) -> None:
    """An instance model's mask and box mAP and per-class AP."""
    console.print(
        f"[bold]{title}[/]: mask mAP@[.5:.95] [bold]{report['mask_map']:.3f}[/]"
        f"{_interval(report, 'mask_map')}, mask AP50 {report['mask_map50']:.3f}"
        f"{_interval(report, 'mask_map50')}; box mAP {report['box_map']:.3f}"
        f"{_interval(report, 'box_map')}, box AP50 {report['box_map50']:.3f}; "
        f"{report['n_images']} images, {report['n_instances']} instances (up to "
        f"{report['max_detections_scored']} detections per image scored)")
    table = Table("class", "mask AP", "mask AP50", "box AP", "box AP50", "instances")
    for row in report["per_class"]:
        table.add_row(row["name"], f"{row['mask_ap']:.3f}", f"{row['mask_ap50']:.3f}",
                      f"{row['box_ap']:.3f}", f"{row['box_ap50']:.3f}", str(row["n_instances"]))
    console.print(table)
