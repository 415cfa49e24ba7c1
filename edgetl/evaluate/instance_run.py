"""`evaluate` for instance models: the scorer the generic evaluators (`outputs_eval`) are bound
to, and the worst-images figure.

A checkpoint's outputs (the training evaluation transform and the deployable module) and an
artifact's (the deployment reference and its graph) are read the same way: each image's
detections are mapped back to the file's pixels and their masks pasted there
(`postprocess.instances_from_outputs`), and pycocotools scores masks and boxes against the
truth masks at the file's size (`InstanceEvaluator`). The images with the lowest F1 at mask
IoU 0.5 are named in the report and drawn by `evaluate --out` (`draw_worst`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.postprocess import instances_from_outputs, merged_instances
from edgetl.data.samples import Sample
from edgetl.evaluate import outputs_eval
from edgetl.evaluate.outputs_eval import Evaluation
from edgetl.metrics.detection import DEFAULT_BOOTSTRAP
from edgetl.metrics.instance import MIN_SCORE, InstanceEvaluator, truth_masks
from edgetl.tasks.instance import TASK

WORST_IMAGES = 6


def score(run: Evaluation) -> dict[str, Any]:
    """The report of instances (mapped to the files' pixels) against the samples' truth."""
    found = (instances_from_outputs(run.outputs, run.geometries) if run.windows is None else
             merged_instances(run.outputs, run.geometries, run.windows))
    evaluator = InstanceEvaluator(run.info.task_record, _max_dets(run.info))
    evaluator.update(run.samples, found, truth_masks(run.samples, [f.size for f in found]))
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    if run.windows is not None:
        report["tiles"] = outputs_eval.tiles_record(run)
    return outputs_eval.with_worst(report, run.meta, run.samples, "per_image_f1", "f1",
                                   WORST_IMAGES)


def _max_dets(info: Any) -> int:
    head = getattr(info, "head", None) or {}
    post = getattr(info, "postprocess", None) or {}
    return int(head.get("max_detections") or post.get("max_detections") or 100)


evaluate_instance_checkpoint = outputs_eval.CheckpointEvaluator(score)
evaluate_instance_artifact = outputs_eval.ArtifactEvaluator(score)


def draw_worst(report: dict[str, Any], out_png: Path) -> Path | None:
    """A figure of the report's worst images: the photo, the truth instances and the
    predicted ones (score >= MIN_SCORE), each instance in its own colour over the photo."""
    from PIL import Image

    from edgetl.evaluate.plots import _pyplot
    from edgetl.io import atomic_write_with

    worst = report.get("worst_images", [])
    if not worst:
        return None
    by_path = {w["path"]: w for w in worst}
    _, _, samples = outputs_eval.report_samples(report, TASK.name)
    picked = [s for s in samples if s.path in by_path]
    if not picked:
        return None
    outputs, geometries, _ = outputs_eval.outputs_of(Path(report["target"]), picked)
    found = instances_from_outputs(outputs, geometries)
    plt = _pyplot()
    fig, axes = plt.subplots(len(picked), 3, figsize=(11, 3.2 * len(picked)), squeeze=False)
    for sample, guess, (ax_img, ax_truth, ax_guess) in zip(picked, found, axes, strict=True):
        from edgetl.artifact.orientation import upright
        with Image.open(sample.path) as img:
            photo = np.asarray(upright(img).convert("RGB"))
        truth = _truth_ids(sample, guess.size)
        ax_img.imshow(photo)
        ax_truth.imshow(overlay(photo, truth))
        ax_guess.imshow(overlay(photo, guess.id_map(MIN_SCORE)))
        ax_img.set_title(f"{Path(sample.path).name} (F1@0.5 {by_path[sample.path]['f1']:.2f})",
                         fontsize=8)
        ax_truth.set_title(f"ground truth ({int(truth.max())} instances)", fontsize=8)
        ax_guess.set_title(f"prediction ({int((guess.scores >= MIN_SCORE).sum())} with score "
                           f">= {MIN_SCORE})", fontsize=8)
        for ax in (ax_img, ax_truth, ax_guess):
            ax.axis("off")
    fig.suptitle(f"{report['kind']} on {report['split']}: the {len(picked)} images with the "
                 "lowest F1 at mask IoU 0.5")
    fig.tight_layout(rect=(0, 0, 1, 0.98))
    atomic_write_with(out_png, lambda tmp: fig.savefig(tmp, dpi=90, format="png"))
    plt.close(fig)
    return out_png


def _truth_ids(sample: Sample, size: tuple[int, int]) -> np.ndarray:
    from edgetl.data.detection.masks import instance_id_map

    return instance_id_map(list(sample.target.masks), size)


def overlay(photo: np.ndarray, ids: np.ndarray, alpha: float = 0.55) -> np.ndarray:
    """The photo with each instance id (> 0) tinted in a colour of its own (fixed per id)."""
    colours = np.random.default_rng(7).integers(40, 256, size=(int(ids.max()) + 1, 3))
    out = photo.astype(np.float64).copy()
    inside = ids > 0
    out[inside] = (1 - alpha) * out[inside] + alpha * colours[ids[inside]]
    return out.clip(0, 255).astype(np.uint8)
