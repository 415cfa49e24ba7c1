"""`verify_artifact`: prove an exported artifact still behaves like the run it came from.

Both sides see the same real images of the run's own split (RUN/split.csv): the PyTorch model
through the training evaluation transform (torchvision), the artifact through the deployment
reference (numpy/PIL) and its own embedded spec, exactly as `predict` would feed it. Every check
runs and every failure is collected; the caller decides what a failure means (the CLI writes
the report, then exits 1). Torch and the runtimes are imported inside the function.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from edgetl.verify.checks import Budgets, CheckResult
from edgetl.verify.report import VerifyReport

__all__ = ["Budgets", "CheckResult", "VerifyReport", "check_options", "default_budgets",
           "verify_artifact"]

DEFAULT_BATCH = 32


def default_budgets(fmt: str, precision: str, top1: float | None = None,
                    accuracy_points: float | None = None) -> Budgets:
    """The format table's budgets for this artifact, with any flag overrides applied."""
    from edgetl.export.formats import FORMATS

    row = FORMATS.get(fmt) or next((f for f in FORMATS.values() if f.precision == precision),
                                   FORMATS["onnx"])
    return Budgets(
        top1_agreement=row.top1_agreement_budget if top1 is None else top1,
        accuracy_points=row.accuracy_budget_points if accuracy_points is None else accuracy_points,
    )


def check_options(split: str, top1_budget: float | None, accuracy_budget: float | None,
                  max_images: int | None) -> None:
    """Options that cannot describe a gate are usage errors (exit 2), before any work: a top-1
    budget outside 0-1 or a negative accuracy budget used to run and then "fail the gate"."""
    from edgetl.data.samples import SPLITS
    from edgetl.errors import UsageError

    if split not in SPLITS:
        raise UsageError(f"--split {split!r} is not a split", f"use {', '.join(SPLITS)}")
    if top1_budget is not None and not 0.0 <= top1_budget <= 1.0:
        raise UsageError(f"--top1-budget {top1_budget:g} is not a fraction",
                         "give the minimum top-1 agreement between 0 and 1, e.g. 0.99")
    if accuracy_budget is not None and accuracy_budget < 0:
        raise UsageError(f"--accuracy-budget {accuracy_budget:g} is negative",
                         "give the largest accuracy drop allowed, in points, >= 0")
    if max_images is not None and max_images < 1:
        raise UsageError(f"--max-images {max_images} checks nothing", "give at least 1")


def _split_samples(run: Path, record: dict[str, Any], split: str, max_images: int | None
                   ) -> list[Any]:
    from edgetl.data.sources import load_data
    from edgetl.errors import DataError, UsageError
    from edgetl.export.calibration import stratified_subset

    name = (record.get("data") or {}).get("split_manifest") or "split.csv"
    manifest = run / name
    if not manifest.is_file():
        raise DataError(f"the run's split manifest {manifest} is missing",
                        "verify uses the exact split the run trained with; restore it")
    try:
        samples = load_data(str(manifest), check_images=False).by_split(split)
    except ValueError as exc:
        raise UsageError(f"unknown split {split!r}", "use train, val or test") from exc
    if not samples:
        raise DataError(f"{manifest} has no images in split {split!r}",
                        "pick another split with --split")
    if max_images is not None and max_images < len(samples):
        samples = stratified_subset(samples, max_images, seed=0)
    return samples


def verify_artifact(
    artifact: str | Path,
    run: str | Path,
    split: str = "test",
    backend: str = "ort-cpu",
    *,
    top1_budget: float | None = None,
    accuracy_budget: float | None = None,
    max_images: int | None = None,
    threads: int | None = None,
    batch: int = DEFAULT_BATCH,
) -> VerifyReport:
    """Run every check and return the report (it never raises for a failed gate)."""
    import numpy as np
    import torch

    from edgetl.data.reference import normalize, pixels_uint8
    from edgetl.data.transforms import geometry_transform, load_image, normalize_transform
    from edgetl.errors import DataError
    from edgetl.export.manifest import read_artifact
    from edgetl.runtime import open_runner
    from edgetl.runtime.torch_runner import TorchRunner
    from edgetl.train.checkpoint import load_model, package_versions, read_checkpoint_info
    from edgetl.verify.checks import (
        GoldenAccumulator,
        check_accuracy,
        check_labels,
        check_parity,
        check_source,
        check_spec,
        failed,
    )

    started = time.perf_counter()
    art = read_artifact(artifact)  # no spec -> ArtifactError (exit 2)
    runner = open_runner(art.path, backend, threads=threads)  # missing backend -> exit 3, early
    run = Path(run)
    info = read_checkpoint_info(run, art.source_checkpoint)
    budgets = default_budgets(art.format, art.precision, top1_budget, accuracy_budget)
    report = VerifyReport(artifact=str(art.path), run=str(run), split=split, backend=backend,
                          format=art.format, precision=art.precision, budgets=budgets.to_dict())
    report.checks += [check_spec(art, info), check_labels(art, info), check_source(art, info)]

    samples = _split_samples(run, info.record, split, max_images)
    unknown = sorted({s.label for s in samples} - set(info.labels.names))
    if unknown:
        raise DataError(f"split {split!r} holds labels the run does not know: {unknown}")
    targets = np.array([info.labels.index(s.label) for s in samples])

    model, _ = load_model(run, art.source_checkpoint)
    reference = TorchRunner(model)
    geometry, to_tensor_norm = geometry_transform(info.spec), normalize_transform(info.spec)
    golden = GoldenAccumulator(art.spec, info.spec)
    raw_input = art.spec.graph_input == "uint8_raw"
    ref_logits, art_logits, conv_logits, run_error = [], [], [], None
    for start in range(0, len(samples), batch):
        chunk = samples[start:start + batch]
        tv_inputs, art_inputs, tv_feed = [], [], []
        for sample in chunk:
            # Training side: decode -> torchvision geometry -> normalisation; this is
            # eval_transform(spec) split in its two halves so the uint8 image can be compared.
            tv_pixels = geometry(load_image(sample.path, info.spec))
            tv_norm = to_tensor_norm(tv_pixels)
            tv_inputs.append(tv_norm)
            # Deployment side: what predict does with the artifact's own spec.
            ref_pixels = pixels_uint8(sample.path, art.spec)
            ref_norm = normalize(ref_pixels, art.spec)
            art_inputs.append(ref_pixels if raw_input else ref_norm)
            tv_hwc = tv_pixels.permute(1, 2, 0).numpy()
            tv_feed.append(tv_hwc if raw_input else tv_norm.numpy())
            golden.add(sample.path, ref_pixels, ref_norm, tv_hwc, tv_norm.numpy())
        ref_logits.append(reference.run(torch.stack(tv_inputs)))
        if run_error is None:
            try:
                art_logits.append(runner.run(np.stack(art_inputs)))
                # The same artifact on torchvision's tensors: conversion error alone.
                conv_logits.append(runner.run(np.stack(tv_feed)))
            except Exception as exc:  # onnxruntime/TensorRT errors are untyped
                run_error = f"the artifact failed to run on its spec's inputs: {exc}"
    runner_info = runner.describe()
    runner.close()

    report.checks.append(golden.result(budgets))
    ref_all = np.concatenate(ref_logits)
    if run_error is not None:
        report.checks += [failed("parity", run_error), failed("accuracy", run_error)]
    else:
        art_all = np.concatenate(art_logits)
        report.checks.append(check_parity(ref_all, art_all, info.labels, budgets,
                                          conversion_only=np.concatenate(conv_logits)))
        report.checks.append(check_accuracy(targets, ref_all, art_all, info.labels, budgets))
    report.context = {
        "images": len(samples),
        "classes": list(info.labels.names),
        "runner": runner_info,
        "artifact_manifest": {k: (art.manifest or {}).get(k)
                              for k in ("sha256", "size_bytes", "opset", "io", "created")},
        "versions": package_versions(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return report
