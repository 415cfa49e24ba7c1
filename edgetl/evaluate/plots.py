"""PNG figures people look at: learning curves and confusion matrices (matplotlib, Agg)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from edgetl.io import atomic_write_with


def _pyplot():
    # not at the top: matplotlib loads only when a figure is drawn
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_curves(metrics_jsonl: str | Path, out_png: str | Path) -> Path | None:
    """Loss and validation metrics per epoch, with a dashed line at each phase change."""
    path = Path(metrics_jsonl)
    if not path.is_file():
        return None
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    if not rows:
        return None
    plt = _pyplot()
    epochs = [r["epoch"] for r in rows]
    fig, (ax_loss, ax_metric) = plt.subplots(1, 2, figsize=(11, 4))
    ax_loss.plot(epochs, [r["train_loss"] for r in rows], marker="o", label="train loss")
    if "val_loss" in rows[0]:
        ax_loss.plot(epochs, [r.get("val_loss") for r in rows], marker="o", label="val loss")
    for key in [k for k in rows[0] if k.startswith("val_") and k != "val_loss"]:
        ax_metric.plot(epochs, [r.get(key) for r in rows], marker="o", label=key)
    for ax in (ax_loss, ax_metric):
        for prev, cur in zip(rows, rows[1:], strict=False):
            if cur["phase"] != prev["phase"]:
                ax.axvline(cur["epoch"] - 0.5, color="grey", linestyle="--", linewidth=1)
                ax.text(cur["epoch"] - 0.45, ax.get_ylim()[1], f"phase {cur['phase']}",
                        va="top", fontsize=8, color="grey")
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend()
    ax_loss.set_title("loss")
    ax_metric.set_title("validation")
    fig.tight_layout()
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(out_png)


def plot_confusion(matrix: list[list[int]], class_names: list[str], out_png: str | Path,
                   title: str = "confusion matrix") -> Path:
    """Counts with row-normalised shading (rows: true class, columns: predicted)."""
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(matrix, dtype=float)
    norm = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.7 * len(class_names) + 2)
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    for i in range(cm.shape[0]):
        for j in range(cm.shape[1]):
            ax.text(j, i, f"{int(cm[i, j])}\n{norm[i, j]:.0%}", ha="center", va="center",
                    color="white" if norm[i, j] > 0.5 else "black", fontsize=9)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    fig.tight_layout()
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(out_png)


def plot_pr_curves(curves: dict, out_png: str | Path, title: str = "precision-recall") -> Path:
    """Precision against recall per class (COCO's 101 recall points at one IoU)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, precision in curves["precision"].items():
        ax.plot(curves["recall"], precision, label=name)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title)
    fig.tight_layout()
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(out_png)


def plot_mask_rows(rows: list[tuple[str, Any, Any, float]], record: Any, out_png: str | Path,
                   title: str) -> Path:
    """One row per image: the photo, its ground truth and the prediction in the colours
    `predict` draws overlays with (ignored pixels black).
    rows: (image path, truth mask, predicted mask, image mIoU)."""
    import numpy as np
    from PIL import Image

    from edgetl.predict.segment import class_palette

    plt = _pyplot()
    colours = np.asarray(class_palette(record), dtype=np.uint8)
    fig, axes = plt.subplots(len(rows), 3, figsize=(11, 2.9 * len(rows)), squeeze=False)
    for (path, truth, guess, miou), (ax_img, ax_truth, ax_guess) in zip(rows, axes,
                                                                          strict=True):
        from edgetl.artifact.orientation import upright
        with Image.open(path) as img:
            ax_img.imshow(np.asarray(upright(img).convert("RGB")))
        valid = truth < record.num_classes
        shown = np.zeros((*truth.shape, 3), np.uint8)
        shown[valid] = colours[truth[valid].astype(np.int64)]
        ax_truth.imshow(shown)
        ax_guess.imshow(colours[np.clip(guess.astype(np.int64), 0, record.num_classes - 1)])
        ax_img.set_title(f"{Path(path).name} (mIoU {miou:.2f})", fontsize=8)
        ax_truth.set_title("ground truth", fontsize=8)
        ax_guess.set_title("prediction", fontsize=8)
        for ax in (ax_img, ax_truth, ax_guess):
            ax.axis("off")
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[i] / 255) for i in
               range(record.num_classes)]
    fig.legend(handles, list(record.names), loc="lower center", ncol=min(6, len(handles)),
               fontsize=8)
    fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.04, 1, 0.98))
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return Path(out_png)


def plot_class_pr_curves(curves: dict, out_png: str | Path, points: list[dict], split: str,
                         title: str = "precision-recall") -> Path:
    """A classifier's one-vs-rest precision-recall curve per class, with each operating
    point's figures on `split` marked."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 5))
    for name, curve in curves.items():
        if curve.get("average_precision") is None:
            continue
        ax.step(curve["recall"], curve["precision"], where="post",
                label=f"{name} (AP {curve['average_precision']:.3f})")
    for entry in points:
        got = entry.get(split) or {}
        if entry.get("threshold") is None or got.get("precision") is None:
            continue
        ax.plot(got["recall"], got["precision"], "o", color="black")
        ax.annotate(f"{entry['target']}\nthreshold {entry['threshold']:.3f}",
                    (got["recall"], got["precision"]), textcoords="offset points",
                    xytext=(-10, -24), ha="right", fontsize=8)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    ax.set_title(title)
    fig.tight_layout()
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=110, format="png"))
    plt.close(fig)
    return Path(out_png)
