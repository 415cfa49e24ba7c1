"""`evaluate` for segmenters: the scorer the generic evaluators (`outputs_eval`) are bound to,
and the worst-images figure.

Both a checkpoint's and an artifact's predictions are scored at each image's own resolution: the
class map of the input is taken back through the image's letterbox geometry (nearest) and
compared with the ground-truth mask decoded by the data set's mask record. Ignored pixels
(void) are never scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from edgetl.artifact.postprocess import masks_from_outputs
from edgetl.evaluate import outputs_eval
from edgetl.evaluate.outputs_eval import Evaluation
from edgetl.metrics.semantic import DEFAULT_BOOTSTRAP, SegmentationEvaluator
from edgetl.tasks.semantic import TASK

WORST_IMAGES = 6  # images shown in the report's worst-images figure


def mask_record_of(run: Path | None, data: str | None) -> Any:
    """The mask record that decodes ground truth: the run's split (or the given data's)."""
    from edgetl.data.sources import load_data
    from edgetl.runfolder import RunFolder

    source = RunFolder(run).dataset() if data is None else load_data(data, task=TASK.name)
    return source.record


def score(run: Evaluation) -> dict[str, Any]:
    """The report of predictions (class maps at each file's size) against the truth."""
    from edgetl.data.semantic import read_mask

    mask_record = mask_record_of(run.run, run.data)
    evaluator = SegmentationEvaluator(run.info.task_record)
    for sample, guess in zip(run.samples, masks_from_outputs(run.outputs, run.geometries),
                             strict=True):
        evaluator.update(read_mask(sample.target, mask_record), guess)
    report = evaluator.compute(bootstrap=DEFAULT_BOOTSTRAP).to_dict()
    return outputs_eval.with_worst(report, run.meta, run.samples, "per_image_miou", "miou",
                                   WORST_IMAGES)


def draw_worst(report: dict[str, Any], out_png: Path) -> Path | None:
    """A figure of the report's worst images: the photo, the truth and the prediction in
    class colours. Predicts those few images again with the report's own target."""
    from edgetl.data.semantic import read_mask
    from edgetl.evaluate.plots import plot_mask_rows

    run, data, samples = outputs_eval.report_samples(report, TASK.name)
    by_path = {s.path: s for s in samples}
    worst = [w for w in report.get("worst_images", []) if w["path"] in by_path]
    picked = [by_path[w["path"]] for w in worst]
    if not picked:
        return None
    outputs, geometries, info = outputs_eval.outputs_of(Path(report["target"]), picked)
    predicted = masks_from_outputs(outputs, geometries)
    mask_record = mask_record_of(run, data)
    rows = [(s.path, read_mask(s.target, mask_record), guess, w["miou"])
            for s, guess, w in zip(picked, predicted, worst, strict=True)]
    return plot_mask_rows(rows, info.task_record, out_png,
                          title=f"{report['kind']} on {report['split']}: the "
                                f"{len(rows)} images with the lowest mIoU")


evaluate_segmenter_checkpoint = outputs_eval.CheckpointEvaluator(score)
evaluate_segmenter_artifact = outputs_eval.ArtifactEvaluator(score)
