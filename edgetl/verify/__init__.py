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

from edgetl import tasks
from edgetl.tasks import Task
from edgetl.verify.checks import Budgets, CheckResult
from edgetl.verify.classification import default_budgets
from edgetl.verify.report import VerifyReport

__all__ = ["Budgets", "CheckResult", "VerifyReport", "check_options", "default_budgets",
           "verify_artifact"]

DEFAULT_BATCH = 32


def check_options(split: str, top1_budget: float | None, accuracy_budget: float | None,
                  max_images: int | None) -> None:
    """Options that cannot describe a gate are usage errors (exit 2), before any work: a top-1
    budget outside 0-1 or a negative accuracy budget used to run and then "fail the gate"."""
    from edgetl.data.samples import SPLITS
    from edgetl.errors import UsageError

    if split not in SPLITS:
        raise UsageError(f"--split {split!r} is not a split", f"use {', '.join(SPLITS)}")
    if top1_budget is not None and not 0.0 <= top1_budget <= 1.0:
        raise UsageError(f"--agreement-budget {top1_budget:g} is not a fraction",
                         "give the smallest agreement share between 0 and 1, e.g. 0.99")
    if accuracy_budget is not None and accuracy_budget < 0:
        raise UsageError(f"--metric-drop-budget {accuracy_budget:g} is negative",
                         "give the largest metric drop allowed, in points, >= 0")
    if max_images is not None and max_images < 1:
        raise UsageError(f"--max-images {max_images} checks nothing", "give at least 1")


def _split_samples(run: Path, split: str, max_images: int | None) -> list[Any]:
    """The run's own split (a stratified subset of it with `max_images`)."""
    from edgetl.export.calibration import stratified_subset
    from edgetl.runfolder import RunFolder

    samples = RunFolder(run).samples(split)
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
    """Run every check and return the report (it never raises for a failed gate).

    `top1_budget` / `accuracy_budget` override the parity and dataset gates: top-1 agreement
    and accuracy points for a classifier, matched-detection share and mAP points for a
    detector."""
    from edgetl.artifact.manifest import read_artifact
    from edgetl.checkpoint import package_versions, read_checkpoint_info
    from edgetl.runtime import open_runner
    from edgetl.verify.checks import check_labels, check_source, check_spec

    started = time.perf_counter()
    art = read_artifact(artifact)  # no spec -> ArtifactError (exit 2)
    point = art.decision  # a classifier's operating point decides on both sides
    runner = open_runner(art.path, backend, threads=threads)  # missing backend -> exit 3, early
    run = Path(run)
    info = read_checkpoint_info(run, art.source_checkpoint)
    task = tasks.get(info.task_record.task)
    budgets, budget_record = task.load("verify_budgets")(art, top1_budget, accuracy_budget)
    report = VerifyReport(artifact=str(art.path), run=str(run), split=split, backend=backend,
                          format=art.format, precision=art.precision, budgets=budget_record)
    report.checks += [check_spec(art, info), check_labels(art, info), check_source(art, info)]
    samples = _split_samples(run, split, max_images)
    side = _run_both(art, info, runner, samples, batch, run)
    runner_info = runner.describe()
    runner.close()
    report.checks.append(side.golden.result())
    if side.tiles.active:
        report.checks.append(side.tiles.result())
    report.checks += _task_checks(task, side, info, samples, budgets, run, point)
    report.context = {
        "images": len(samples),
        "classes": list(info.task_record.names),
        **({"decision": point.to_dict()} if point is not None else {}),
        "runner": runner_info,
        "artifact_manifest": {k: (art.manifest or {}).get(k)
                              for k in ("sha256", "size_bytes", "opset", "io", "created")},
        "versions": package_versions(),
        "seconds": round(time.perf_counter() - started, 2),
    }
    return report


class _BothSides:
    """Outputs of the torch model and of the artifact on the same images, and what the
    preprocessing comparison found."""

    def __init__(self, golden: Any, tiles: Any) -> None:
        self.golden = golden
        self.tiles = tiles  # verify.tiles.TileGolden: the windows both sides cut
        self.reference: list[dict[str, Any]] = []
        self.artifact: list[dict[str, Any]] = []
        self.conversion: list[dict[str, Any]] = []
        self.geometries: list[Any] = []
        self.run_error: str | None = None

    def joined(self, which: str) -> dict[str, Any]:
        from edgetl.artifact.postprocess import concat_outputs

        return concat_outputs(getattr(self, which))


def _run_both(art: Any, info: Any, runner: Any, samples: list[Any], batch: int,
              run: Path) -> _BothSides:
    """The torch model through the training evaluation transform (torchvision), the artifact
    through the deployment reference with its own spec (what predict runs), and the artifact
    again on torchvision's tensors (conversion error alone)."""
    # not at the top: importing this module loads no torch
    import numpy as np

    from edgetl.artifact.reference import normalize, pixels_and_geometry
    from edgetl.data.transforms import geometry_transform, load_image, normalize_transform
    from edgetl.models.deployable import deployable
    from edgetl.models.inference import batched_outputs
    from edgetl.models.loading import load_model
    from edgetl.runtime.torch_runner import TorchRunner
    from edgetl.verify.checks import GoldenAccumulator
    from edgetl.verify.tiles import TileGolden

    model, _ = load_model(run, art.source_checkpoint)
    module, names, _ = deployable(model, info.task_record.task)
    reference = TorchRunner(module, output_names=names)
    geometry, to_tensor_norm = geometry_transform(info.spec), normalize_transform(info.spec)
    golden = GoldenAccumulator(art.spec, info.spec)
    side = _BothSides(golden, TileGolden(art.spec, info.spec, golden))
    raw_input = art.spec.graph_input == "uint8_raw"
    # the batch's inputs to the artifact, filled by `prepare`
    art_inputs: list[Any] = []
    tv_feed: list[Any] = []

    def prepare(sample: Any) -> Any:
        # Training side: decode -> torchvision geometry -> normalisation; this is
        # eval_transform(spec) split in its two halves so the uint8 image can be compared.
        tv_pixels = geometry(load_image(sample.path, info.spec))
        tv_norm = to_tensor_norm(tv_pixels)
        # Deployment side: what predict does with the artifact's own spec.
        ref_pixels, geo = pixels_and_geometry(sample.path, art.spec)
        side.geometries.append(geo)
        ref_norm = normalize(ref_pixels, art.spec)
        art_inputs.append(ref_pixels if raw_input else ref_norm)
        tv_hwc = tv_pixels.permute(1, 2, 0).numpy()
        tv_feed.append(tv_hwc if raw_input else tv_norm.numpy())
        side.golden.add(sample.path, ref_pixels, ref_norm, tv_hwc, tv_norm.numpy())
        if side.tiles.active:
            side.tiles.add(sample.path, geometry, to_tensor_norm)
        return tv_norm

    for found in batched_outputs(reference.run, samples, prepare, lambda out: out, batch=batch):
        side.reference.append(found)
        if side.run_error is None:
            try:
                side.artifact.append(runner.run(np.stack(art_inputs)))
                side.conversion.append(runner.run(np.stack(tv_feed)))
            except Exception as exc:  # onnxruntime/TensorRT errors are untyped
                side.run_error = f"the artifact failed to run on its spec's inputs: {exc}"
        art_inputs.clear()
        tv_feed.clear()
    return side


def _task_checks(task: Task, side: _BothSides, info: Any, samples: list[Any],
                 budgets: Any, run: Path, point: Any = None) -> list[CheckResult]:
    """Outputs, then the task's parity and dataset gates (its `verify_checks`; its
    `verify_gates` failed, with the reason, when the artifact could not run). `point`: a
    classifier artifact's operating point, which decides on both sides."""
    from edgetl.verify.checks import check_outputs, failed

    if side.run_error is not None:
        return [failed(name, side.run_error) for name in task.verify_gates]
    reference, artifact = side.joined("reference"), side.joined("artifact")
    return task.load("verify_checks")(side, info, samples, budgets, run, point, reference,
                                      artifact, check_outputs(reference, artifact))
