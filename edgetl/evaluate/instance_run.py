"""`evaluate` for instance models: a run's checkpoint in torch, or an exported artifact.

Both go through detection's paths (the checkpoint: the training evaluation transform and the
deployable module; the artifact: the deployment reference and its graph), then each image's
detections are mapped back to the file's pixels and their masks pasted there
(`postprocess.instances_from_outputs`), and pycocotools scores masks and boxes against the
truth masks at the file's size (`InstanceEvaluator`). The images with the lowest F1 at mask
IoU 0.5 are named in the report and drawn by `evaluate --out` (`draw_worst`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.postprocess import Instances, instances_from_outputs
from edgetl.data.samples import Sample
from edgetl.metrics.detection import DEFAULT_BOOTSTRAP
from edgetl.metrics.instance import MIN_SCORE, InstanceEvaluator, truth_masks
from edgetl.tasks.instance import TASK

WORST_IMAGES = 6


def score(record: Any, samples: list[Sample], found: list[Instances], meta: dict[str, Any],
          max_dets: int) -> dict[str, Any]:
    """The report of instances (in the files' pixels) against the samples' truth."""
    evaluator = InstanceEvaluator(record, max_dets)
    evaluator.update(samples, found, truth_masks(samples, [f.size for f in found]))
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    report.update(meta)
    order = np.argsort(report["per_image_f1"], kind="stable")[:WORST_IMAGES]
    report["worst_images"] = [{"path": samples[i].path, "f1": report["per_image_f1"][i]}
                              for i in order]
    return report


def _outputs_of(target: Path, samples: list[Sample], device: str = "cpu"
                ) -> tuple[list[Instances], Any]:
    """Instances of `samples` from a run's checkpoint (a folder) or an artifact (a file)."""
    if target.is_dir():
        from edgetl.evaluate.detection_run import torch_detections
        from edgetl.models.loading import load_model

        model, info = load_model(target, "best")
        outputs, geometries = torch_detections(model, info.spec, samples, device, TASK.name)
        return instances_from_outputs(outputs, geometries), info
    from edgetl.predict import open_artifact, run_files

    runner, info = open_artifact(target, "ort-cpu")
    try:
        outputs, geometries = run_files(runner, info, [s.path for s in samples])
    finally:
        runner.close()
    return instances_from_outputs(outputs, geometries), info


def _max_dets(info: Any) -> int:
    head = getattr(info, "head", None) or {}
    post = getattr(info, "postprocess", None) or {}
    return int(head.get("max_detections") or post.get("max_detections") or 100)


def evaluate_instance_checkpoint(run: str | Path, split: str = "test", data: str | None = None,
                                 device: str = "cpu") -> dict[str, Any]:
    """Mask and box mAP of a run's best checkpoint on `split` (its own split unless `data`)."""
    from edgetl.evaluate.samples import evaluation_samples

    samples, origin = evaluation_samples(Path(run), split, data, TASK.name)
    found, info = _outputs_of(Path(run), samples, device)
    return score(info.task_record, samples, found, {
        "target": str(Path(run)), "kind": "checkpoint", "split": split, "data": origin,
        "spec_fingerprint": info.spec.fingerprint(), "checkpoint_epoch": info.record.get("epoch")},
        _max_dets(info))


def evaluate_instance_artifact(path: str | Path, split: str = "test", data: str | None = None,
                               backend: str = "ort-cpu") -> dict[str, Any]:
    """The same report through an exported artifact (deployment preprocessing, its graph)."""
    from edgetl.artifact.manifest import read_artifact
    from edgetl.evaluate.samples import evaluation_samples

    info = read_artifact(Path(path))
    samples, origin = evaluation_samples(info.source_run, split, data, TASK.name)
    found, info = _outputs_of(Path(path), samples)
    return score(info.task_record, samples, found, {
        "target": str(path), "kind": f"artifact ({info.format}, {info.precision})",
        "split": split, "data": origin, "spec_fingerprint": info.spec.fingerprint()},
        _max_dets(info))


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
    target = Path(report["target"])
    run = target if target.is_dir() else None
    if run is None:
        from edgetl.artifact.manifest import read_artifact

        run = read_artifact(target).source_run
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.runfolder import RunFolder

    own_split = run is not None and report["data"] == str(RunFolder(run).split_path())
    samples, _ = evaluation_samples(run, report["split"], None if own_split else report["data"],
                                    TASK.name)
    picked = [s for s in samples if s.path in by_path]
    if not picked:
        return None
    found, _ = _outputs_of(target, picked)
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
