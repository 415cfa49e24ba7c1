"""`evaluate` for segmenters: a run's checkpoint in torch, or an exported artifact on its runtime.

Both score predictions at each image's own resolution: the class map of the input is taken
back through the image's letterbox geometry (nearest) and compared with the ground-truth mask
decoded by the data set's mask record. Ignored pixels (void) are never scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from edgetl.data.samples import Sample
from edgetl.geometry import Geometry
from edgetl.metrics.semantic import DEFAULT_BOOTSTRAP, SegmentationEvaluator
from edgetl.tasks.semantic import TASK

EVAL_BATCH = 8
WORST_IMAGES = 6  # images shown in the report's worst-images figure


def torch_masks(model: Any, spec: Any, samples: list[Sample], device: str = "cpu"
                ) -> tuple[dict[str, np.ndarray], list[Geometry]]:
    """The segmenter's deployable `mask` output for files, through the training eval path."""
    # not at the top: importing this module loads no torch
    import torch

    from edgetl.artifact.postprocess import concat_outputs
    from edgetl.data.transforms import geometry_transform, load_image, normalize_transform
    from edgetl.geometry import geometry_for
    from edgetl.models.deployable import deployable

    module, _, _ = deployable(model, TASK.name)
    module = module.to(device).eval()
    to_input, normalize = geometry_transform(spec), normalize_transform(spec)
    parts, geometries = [], []
    with torch.inference_mode():
        for start in range(0, len(samples), EVAL_BATCH):
            batch = []
            for sample in samples[start:start + EVAL_BATCH]:
                image = load_image(sample.path, spec)
                geometries.append(geometry_for(image.height, image.width, spec))
                batch.append(normalize(to_input(image)))
            found = module(torch.stack(batch).to(device))
            parts.append({k: v.cpu().numpy() for k, v in found.items()})
    return concat_outputs(parts), geometries


def mask_record_of(run: Path | None, data: str | None) -> Any:
    """The mask record that decodes ground truth: the run's split (or the given data's)."""
    from edgetl.data.sources import load_data
    from edgetl.runfolder import RunFolder

    source = RunFolder(run).dataset() if data is None else load_data(data, task=TASK.name)
    return source.record


def score(record: Any, mask_record: Any, samples: list[Sample], predicted: list[np.ndarray],
          meta: dict[str, Any]) -> dict[str, Any]:
    """The report of predictions (class maps at each file's size) against the truth."""
    from edgetl.data.semantic import read_mask

    evaluator = SegmentationEvaluator(record)
    for sample, guess in zip(samples, predicted, strict=True):
        evaluator.update(read_mask(sample.target, mask_record), guess)
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    report.update(meta)
    order = np.argsort(report["per_image_miou"], kind="stable")[:WORST_IMAGES]
    report["worst_images"] = [{"path": samples[i].path, "miou": report["per_image_miou"][i]}
                              for i in order]
    return report


def draw_worst(report: dict[str, Any], out_png: Path) -> Path | None:
    """A figure of the report's worst images: the photo, the truth and the prediction in
    class colours. Predicts those few images again with the report's own target."""
    from edgetl.artifact.postprocess import masks_from_outputs
    from edgetl.data.semantic import read_mask
    from edgetl.evaluate.plots import plot_mask_rows
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.runfolder import RunFolder

    target = Path(report["target"])
    runner = None
    if target.is_dir():
        from edgetl.models.loading import load_model

        model, info = load_model(target, "best")
        run: Path | None = target
    else:
        from edgetl.predict import open_artifact, run_files

        runner, info = open_artifact(target, "ort-cpu")
        run = info.source_run
    try:
        own_split = run is not None and report["data"] == str(RunFolder(run).split_path())
        data = None if own_split else report["data"]
        samples, _ = evaluation_samples(run, report["split"], data, TASK.name)
        by_path = {s.path: s for s in samples}
        worst = [w for w in report.get("worst_images", []) if w["path"] in by_path]
        picked = [by_path[w["path"]] for w in worst]
        if not picked:
            return None
        if runner is None:
            predicted = masks_from_outputs(*torch_masks(model, info.spec, picked))
        else:
            predicted = masks_from_outputs(*run_files(runner, info, [s.path for s in picked]))
    finally:
        if runner is not None:
            runner.close()
    mask_record = mask_record_of(run, data)
    rows = [(s.path, read_mask(s.target, mask_record), guess, w["miou"])
            for s, guess, w in zip(picked, predicted, worst, strict=True)]
    return plot_mask_rows(rows, info.task_record, out_png,
                          title=f"{report['kind']} on {report['split']}: the "
                                f"{len(rows)} images with the lowest mIoU")


def evaluate_segmenter_checkpoint(run: str | Path, split: str = "test", data: str | None = None,
                                  device: str = "cpu") -> dict[str, Any]:
    """mIoU, Dice and the rest of a run's best checkpoint on `split`."""
    from edgetl.artifact.postprocess import masks_from_outputs
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.models.loading import load_model

    model, info = load_model(run, "best")
    samples, origin = evaluation_samples(Path(run), split, data, TASK.name)
    outputs, geometries = torch_masks(model, info.spec, samples, device)
    return score(info.task_record, mask_record_of(Path(run), data), samples,
                 masks_from_outputs(outputs, geometries),
                 {"target": str(Path(run)), "kind": "checkpoint", "split": split, "data": origin,
                  "spec_fingerprint": info.spec.fingerprint(),
                  "checkpoint_epoch": info.record.get("epoch")})


def evaluate_segmenter_artifact(path: str | Path, split: str = "test", data: str | None = None,
                                backend: str = "ort-cpu") -> dict[str, Any]:
    """The same report through an exported artifact (deployment preprocessing, its graph)."""
    from edgetl.artifact.postprocess import masks_from_outputs
    from edgetl.evaluate.samples import evaluation_samples
    from edgetl.predict import open_artifact, run_files

    runner, info = open_artifact(path, backend)
    try:
        samples, origin = evaluation_samples(info.source_run, split, data, TASK.name)
        outputs, geometries = run_files(runner, info, [s.path for s in samples])
    finally:
        runner.close()
    return score(info.task_record, mask_record_of(info.source_run, data), samples,
                 masks_from_outputs(outputs, geometries),
                 {"target": str(path), "kind": f"artifact ({info.format}, {info.precision})",
                  "split": split, "data": origin, "spec_fingerprint": info.spec.fingerprint()})
