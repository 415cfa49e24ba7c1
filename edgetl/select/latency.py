"""Latency first: each candidate's untrained network, exported and timed as `edgetl bench` does.

The latency of a network does not depend on its trained weights, so it is measured before any
training and over-budget candidates never cost a training run. Per candidate a small probe run
folder is made (`probe/`: the untrained checkpoint, a split file holding a few training images
for int8 calibration and a few validation images to time on, never test images); each
precision is exported with the ordinary exporter and timed by `edgetl.bench.runner.run_bench`
with the given warm-up/duration, so p50 and p90 are bench's own statistics. Every bench report
is kept as `LATENCY/<candidate>/bench-<precision>.json` (a baseline for `edgetl bench
--baseline`); the probe and its artifacts are removed unless asked to keep them.

int8 on an untrained network: the exporter's accuracy search is told to accept the first,
fully quantised graph (`int8_target_agreement=0`), the fastest int8 graph. A trained model's
int8 export may keep a few leading layers in float32 to meet verify's agreement budget, which
can make it slightly slower than the figure measured here. Detection and instance probes have
a quiet classification head (`dense.background_head`): no candidate reaches NMS or the mask
branch, so the figure is the network's, a lower bound of the trained artifact's.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edgetl.data.samples import DataSet
from edgetl.recipe import Recipe
from edgetl.runfolder import RunFolder
from edgetl.select.candidates import Candidate
from edgetl.select.config import BENCH_IMAGES, SelectConfig
from edgetl.select.tasks import SelectTask
from edgetl.spec import PreprocessSpec
from edgetl.train.rundata import SplitData

ROW_KEYS = ("p50_ms", "p90_ms", "mean_ms", "p99_ms", "std_ms", "cv", "noisy", "iters",
            "warmup_iters", "threads", "throughput", "ref_ms")


def probe_data(split: SplitData, calibration_images: int) -> DataSet:
    """The probe's split: a stratified pick of training images (int8 calibration) and of
    validation images (the inputs bench times on and int8's check runs on)."""
    from edgetl.export.calibration import stratified_subset

    train = stratified_subset(split.data.by_split("train"), calibration_images)
    val = stratified_subset(split.data.by_split("val"), BENCH_IMAGES)
    return split.data.replace(samples=train + val)


def write_probe(task: SelectTask, recipe: Recipe, split: SplitData, probe: Path,
                calibration_images: int) -> tuple[RunFolder, PreprocessSpec]:
    """The probe run folder and its spec: its split (train and val images only) and the
    untrained network as its best checkpoint, recording the split file the run folder names
    for the task (instance runs keep a COCO file, not a CSV)."""

    probe_run = RunFolder(probe)
    probe_run.write_split(probe_data(split, calibration_images), split.record,
                          {"note": "latency probe of edgetl select: a subset of the "
                           "select split (train and val only)"})
    spec = task.probe_fn()(recipe, split.record, probe,
                           {"origin": recipe.data.source,
                            "split_file": probe_run.split_path(split.record.task).name})
    return probe_run, spec


def measure_candidate(task: SelectTask, recipe: Recipe, candidate: Candidate, split: SplitData,
                      folder: Path, config: SelectConfig,
                      progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Export the untrained candidate per precision and time each: the candidate's latency
    record (spec fingerprint, one entry per precision, seconds taken)."""
    from edgetl.bench.report import write_json
    from edgetl.bench.runner import run_bench
    from edgetl.export import ExportOptions, export_run

    started = time.perf_counter()
    probe = folder / "probe"
    probe_run, spec = write_probe(task, recipe, split, probe, config.calibration_images)
    entries: dict[str, Any] = {}
    env: dict[str, Any] | None = None
    try:
        for precision, fmt in config.formats().items():
            t0 = time.perf_counter()
            options = ExportOptions(calibration_images=config.calibration_images,
                                    seed=recipe.train.seed,
                                    int8_target_agreement=0.0 if precision == "int8" else None)
            exported = export_run(probe, fmt, out=probe_run.export_path, options=options)
            export_seconds = time.perf_counter() - t0
            result = run_bench(config.bench_config(exported.path))
            report_path = write_json(result.report, folder / f"bench-{precision}.json")
            row = result.report["rows"][0]
            env = env or result.report.get("env")
            entries[precision] = {
                "format": fmt, **{k: row.get(k) for k in ROW_KEYS},
                "size_bytes": exported.size_bytes,
                "sha256": result.report["artifact"]["sha256"],
                "export_seconds": round(export_seconds, 2),
                "bench_report": str(report_path),
                "warnings": result.report.get("warnings") or [],
            }
            if progress is not None:
                progress(f"{candidate.id} {precision}: p50 {row['p50_ms']:.3f} ms, p90 "
                         f"{row['p90_ms']:.3f} ms ({row['iters']} calls)")
    finally:
        if not config.keep_artifacts:
            shutil.rmtree(probe, ignore_errors=True)
    return {"spec_fingerprint": spec.fingerprint(), "spec_source": spec.source,
            "precisions": entries, "seconds": round(time.perf_counter() - started, 2),
            "env": env}
