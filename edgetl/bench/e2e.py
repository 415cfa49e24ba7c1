"""`e2e` mode: file -> decode -> preprocessing -> inference -> results, as `predict` does it.

The step calls `edgetl.predict.run_files` (decode with PIL and the deployment reference
transform, batched inference through a `Runner`), then reads the outputs as predict does: a
classifier's softmax and top-k indices, a detector's boxes mapped back through each image's
letterbox geometry (NMS is inside the graph); only opening the session is kept out of the
timed call.
The batch is the run's images tiled to the batch size, so every call decodes real files.
An artifact whose spec records a tile rule runs as predict runs it: `predict.files.run_tiles`
(each file's windows, up to `batch` tiles an inference call) and the task's `bench_results`
given the windows merges the tiles' results per file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgetl import tasks
from edgetl.artifact.manifest import ArtifactInfo
from edgetl.artifact.postprocess import (
    detections_from_outputs,
    instances_from_outputs,
    masks_from_outputs,
    merged_detections,
    merged_instances,
)
from edgetl.bench.inputs import tile_paths
from edgetl.bench.target import Target
from edgetl.bench.timing import HostClock
from edgetl.errors import UsageError
from edgetl.geometry import Geometry
from edgetl.runfolder import BEST
from edgetl.runtime.backends import BACKENDS

E2E_BACKENDS = BACKENDS  # every backend with a runner
TOP_K = 3
DETECTION_MIN_SCORE = 0.3  # predict's default


def e2e_target(backend: str, info: ArtifactInfo, paths: Sequence[str], batch: int,
               threads: int | None, run: Path | None = None, which: str = BEST,
               device: str = "cpu") -> Target:
    """A target whose step is predict's whole path for `batch` image files (the task's
    `bench_results` reads the outputs)."""
    from edgetl.predict import run_files

    if backend not in E2E_BACKENDS:
        raise UsageError(f"--mode e2e is not available for --backend {backend}",
                         f"use one of {', '.join(E2E_BACKENDS)} for e2e, or --mode compute")
    closer = None
    if backend == "torch":
        import torch

        from edgetl.runtime.torch_runner import TorchRunner

        assert run is not None, "torch e2e needs the run folder"
        previous = torch.get_num_threads()
        if threads is not None:
            torch.set_num_threads(threads)
        runner = TorchRunner.from_run(run, which, device=device)
        used_threads = torch.get_num_threads() if device == "cpu" else None

        def restore() -> None:
            torch.set_num_threads(previous)

        closer = restore
    else:
        from edgetl.runtime import open_runner

        runner = open_runner(info.path, backend, threads=threads, io_binding=backend == "ort-cuda")
        closer = runner.close
        used_threads = getattr(runner, "threads", None)  # CPU runners (ov-cpu) say so
        if backend == "ort-cpu":
            from edgetl.bench.ort_timing import default_cpu_threads

            used_threads = threads or default_cpu_threads()
    files = tile_paths(list(paths), batch)
    task = tasks.get(info.task_record.task)
    results = task.load("bench_results")

    def step() -> object:
        outputs, geometries = run_files(runner, info, files, batch)
        return results(outputs, geometries, info)

    path = "edgetl.predict.run_files + " + task.bench_path
    if info.spec.tile is not None:
        from edgetl.predict.files import run_tiles

        def step() -> object:
            tiled = run_tiles(runner, info, files, batch)
            return results(tiled.outputs, tiled.geometries, info, windows=tiled.windows)

        path = "edgetl.predict.files.run_tiles + " + task.bench_path + " merged across tiles"

    return Target(
        backend=backend, precision="fp32" if backend == "torch" else info.precision, step=step,
        clock=HostClock(), threads=used_threads,
        details={"path": path,
                 "distinct_images": len(set(files))},
        closer=closer,
    )


def top_classes(outputs: dict[str, np.ndarray], geometries: list[Geometry],
                info: ArtifactInfo) -> object:
    """A classifier's `bench_results`: softmax and the top-k indices per image."""
    from edgetl.predict import class_logits, softmax

    k = min(TOP_K, info.task_record.num_classes)
    probs = softmax(class_logits(outputs, info.task_record.num_classes))
    return np.argsort(-probs, axis=1, kind="stable")[:, :k]


def detections(outputs: dict[str, np.ndarray], geometries: list[Geometry],
               info: ArtifactInfo, windows: list[list[tuple[int, int, int, int]]] | None = None
               ) -> object:
    """A detector's `bench_results`: boxes back in each file's pixels, as predict returns
    them (`windows`: outputs per tile, merged per file as predict merges them)."""
    if windows is not None:
        return merged_detections(outputs, geometries, windows, DETECTION_MIN_SCORE)
    return detections_from_outputs(outputs, geometries, DETECTION_MIN_SCORE)


def class_maps(outputs: dict[str, np.ndarray], geometries: list[Geometry],
               info: ArtifactInfo) -> object:
    """A segmenter's `bench_results`: class maps back at each file's size."""
    return masks_from_outputs(outputs, geometries)


def instance_rles(outputs: dict[str, np.ndarray], geometries: list[Geometry],
                  info: ArtifactInfo,
                  windows: list[list[tuple[int, int, int, int]]] | None = None) -> object:
    """An instance model's `bench_results`: boxes back and masks pasted at each file's size
    (RLE; `windows`: outputs per tile, merged per file as predict merges them)."""
    found = (instances_from_outputs(outputs, geometries, DETECTION_MIN_SCORE) if windows is None
             else merged_instances(outputs, geometries, windows, DETECTION_MIN_SCORE))
    return [instances.rles() for instances in found]
