"""`run_bench`: resolve backends, prepare real inputs, time every row, assemble the report.

Rows are timed one after another (never concurrently), each in a fresh session/model so its
peak memory includes opening it. Every requested backend is checked before any row is timed,
so a machine without CUDA or TensorRT exits 3 at once instead of after minutes of CPU rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from edgetl.artifact.formats import artifact_size
from edgetl.bench import REPORT_SCHEMA
from edgetl.bench.environment import capture_environment
from edgetl.bench.inputs import check_batch_memory, find_images, preprocessed_batch
from edgetl.bench.memory import HostPeak
from edgetl.bench.stats import CV_WARN, summarize_ns
from edgetl.bench.subject import Subject, open_subject
from edgetl.bench.target import Target
from edgetl.bench.timing import measure_with_cpu, warm_up
from edgetl.errors import UsageError
from edgetl.runfolder import BEST, CHECKPOINT_NAMES
from edgetl.runtime.backends import ALL_BACKENDS, BACKEND_TABLE, check_runs

BACKEND_NAMES = ("auto", *ALL_BACKENDS)
MODES = ("compute", "e2e")
DEFAULT_MIN_TIME = 2.0
BUSY_LOAD_PER_CORE = 0.5  # warn when the 1-minute load average is above this per usable core


@dataclass(frozen=True)
class BenchConfig:
    artifact: Path
    backends: tuple[str, ...] = ("auto",)
    batches: tuple[int, ...] = (1,)
    modes: tuple[str, ...] = ("compute",)
    threads: int | None = None
    warmup: int | None = None  # None: until settled
    min_time: float = DEFAULT_MIN_TIME
    iters: int | None = None
    images: tuple[Path, ...] = ()
    normalize: bool = False
    checkpoint: str = BEST

    def validate(self) -> None:
        unknown = [b for b in self.backends if b not in BACKEND_NAMES]
        if unknown:
            raise UsageError(f"unknown backend(s) {', '.join(unknown)}",
                             f"use {', '.join(BACKEND_NAMES)}")
        bad_modes = [m for m in self.modes if m not in MODES]
        if bad_modes:
            raise UsageError(f"unknown mode(s) {', '.join(bad_modes)}", "use compute or e2e")
        if not self.batches or min(self.batches) < 1:
            raise UsageError("--batch needs positive batch sizes, e.g. --batch 1,8")
        if self.threads is not None and self.threads < 1:
            raise UsageError(f"--threads must be >= 1, got {self.threads}")
        if self.checkpoint not in CHECKPOINT_NAMES:
            raise UsageError(f"unknown checkpoint {self.checkpoint!r}", "use best or last")


@dataclass
class BenchResult:
    report: dict[str, Any]
    samples_ms: list[np.ndarray] = field(default_factory=list)  # per row, for the histogram


def parse_batches(text: str) -> tuple[int, ...]:
    """'1,8' -> (1, 8); duplicates dropped, order kept."""
    out: list[int] = []
    for part in text.replace(" ", "").split(","):
        if not part:
            continue
        try:
            value = int(part)
        except ValueError:
            raise UsageError(f"--batch {text!r}: {part!r} is not an integer") from None
        if value < 1:
            raise UsageError(f"--batch sizes must be >= 1, got {value}")
        if value not in out:
            out.append(value)
    if not out:
        raise UsageError("--batch is empty", "give sizes like --batch 1,8")
    return tuple(out)


def split_list(values: Sequence[str]) -> tuple[str, ...]:
    """Repeatable options that also accept comma lists: ['a,b', 'c'] -> ('a', 'b', 'c')."""
    out: list[str] = []
    for value in values:
        for part in value.split(","):
            part = part.strip().lower()
            if part and part not in out:
                out.append(part)
    return tuple(out)


def _gpu_present() -> bool:
    import shutil

    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    return shutil.which("nvidia-smi") is not None or Path("/dev/nvidia0").exists()


def resolve_backends(requested: Sequence[str], subject: Subject) -> list[str]:
    """Expand `auto` to what this machine has for this artifact; keep order, drop duplicates."""
    out: list[str] = []
    for name in requested:
        if name == "auto":
            art = subject.artifact
            if art is None:
                name = "torch"
            elif art.path.suffix == ".engine":
                name = "tensorrt"
            else:
                import onnxruntime as ort

                has_cuda = "CUDAExecutionProvider" in ort.get_available_providers()
                name = "ort-cuda" if has_cuda and _gpu_present() else "ort-cpu"
        if name not in out:
            out.append(name)
    return out


def preflight(backend: str, subject: Subject) -> None:
    """Raise (exit 3 or 2) now if `backend` cannot run here or cannot run this artifact."""
    row = BACKEND_TABLE[backend]
    if row.runs_checkpoint:
        subject.require_run()
        return
    art = subject.require_artifact(backend)
    row.require_available()
    check_runs(row, art.path)


def _factories(backend: str, mode: str, batch: int, subject: Subject, paths: list[str],
               config: BenchConfig) -> list[Callable[[], Target]]:
    """Callables that build the targets of one (backend, mode, batch)."""
    from edgetl.bench import ort_timing
    from edgetl.bench.e2e import e2e_target

    device = "cpu"
    if backend == "torch":
        from edgetl.bench.torch_timing import cuda_available

        device = "cuda" if cuda_available() else "cpu"
    if mode == "e2e":
        info = subject.artifact
        if backend == "torch":
            from edgetl.artifact.manifest import ArtifactInfo

            spec, labels = subject.run_spec_and_labels()
            info = ArtifactInfo(path=subject.require_run(), format="checkpoint", precision="fp32",
                                spec=spec, task_record=labels, architecture="", metadata={})
        assert info is not None
        return [lambda: e2e_target(backend, info, paths, batch, config.threads,
                                   run=subject.run, which=subject.checkpoint, device=device)]
    if backend == "torch":
        from edgetl.bench.torch_timing import torch_targets

        spec, _ = subject.run_spec_and_labels()
        data = preprocessed_batch(paths, spec, batch)
        return torch_targets(subject.require_run(), subject.checkpoint, data, config.threads,
                             device)
    art = subject.require_artifact(backend)
    data = preprocessed_batch(paths, art.spec, batch)
    timer = ort_timing.TIMERS.get(backend)
    if timer is not None:  # ONNX Runtime: bench's own sessions (device buffers, CUDA graphs)
        return [lambda: timer(art.path, data, art.precision, config.threads)]

    def through_runner() -> Target:  # any other backend: its runner's whole run call
        from edgetl.bench.target import Target as _Target
        from edgetl.bench.timing import HostClock
        from edgetl.runtime import open_runner

        runner = open_runner(art.path, backend, threads=config.threads)
        threads = getattr(runner, "threads", None)  # CPU runners (ov-cpu) say what they use
        details = ({"runner": runner.describe()} if hasattr(runner, "threads")
                   else {"includes": "host->device input and device->host output copies"})
        runtime = runner.runtime_info()
        if runtime is not None:
            details["runtime"] = runtime
        return _Target(backend=backend, precision=art.precision,
                       step=lambda: runner.run(data), clock=HostClock(), threads=threads,
                       details=details, closer=runner.close)

    return [through_runner]


def open_compute_target(artifact: Path, backend: str, threads: int | None = None,
                        batch: int = 1) -> Target:
    """One artifact opened on `backend` exactly as a compute row of `run_bench` opens it
    (its runtime settings, real preprocessed inputs), for scripts that time several
    artifacts interleaved; the caller closes it."""
    config = BenchConfig(artifact=artifact, backends=(backend,), batches=(batch,),
                         threads=threads)
    config.validate()
    subject = open_subject(config.artifact)
    preflight(backend, subject)
    paths = find_images((), *_image_sources(subject), count=batch)
    (factory,) = _factories(backend, "compute", batch, subject, paths, config)
    return factory()


def _time_target(target: Target, mode: str, batch: int, config: BenchConfig,
                 peak: HostPeak, model_size: int | None) -> tuple[dict[str, Any], np.ndarray]:
    warm = warm_up(target.clock, target.step, config.warmup)
    taken = measure_with_cpu(target.clock, target.step, config.min_time, config.iters)
    samples = taken.wall_ns
    stats = summarize_ns(samples)
    cpu_ms = np.asarray(taken.cpu_ns, dtype=np.float64) / 1e6
    cpu_p10, cpu_p50, cpu_p90 = (float(v) for v in np.percentile(cpu_ms, [10, 50, 90]))
    row: dict[str, Any] = {
        "backend": target.backend, "precision": target.precision, "batch": batch, "mode": mode,
        **{k: v for k, v in stats.to_dict().items() if k != "n"},
        "spread_ms": round(stats.spread_ms, 6),
        "throughput": round(stats.throughput(batch), 3),
        "iters": stats.n, "warmup_iters": warm.iters, "warmup_settled": warm.settled,
        "warmup_s": round(warm.seconds, 3), "measure_s": round(sum(samples) / 1e9, 3),
        "cpu_p10_ms": round(cpu_p10, 6), "cpu_p50_ms": round(cpu_p50, 6),
        "cpu_p90_ms": round(cpu_p90, 6),
        "threads": target.threads, "clock": target.clock.name,
        "peak_rss_mb": peak.peak_mb(), "rss_method": peak.method,
        "peak_device_mb": target.device_peak_mb() if target.device_peak_mb else None,
        "model_size_bytes": model_size, "noisy": stats.noisy, "details": target.details,
    }
    return row, np.asarray(samples, dtype=np.float64) / 1e6


def _row_warnings(row: dict[str, Any]) -> list[str]:
    name = f"{row['backend']} {row['precision']} batch {row['batch']} {row['mode']}"
    out = []
    if row["cv"] > CV_WARN:
        out.append(f"{name}: coefficient of variation {row['cv']:.0%} is above {CV_WARN:.0%}; "
                   "its numbers are noisy (busy machine, frequency scaling, too few iterations)")
    if not row["warmup_settled"]:
        out.append(f"{name}: warm-up did not settle within its time limit")
    return out


def run_bench(config: BenchConfig, progress: Callable[[dict[str, Any]], None] | None = None
              ) -> BenchResult:
    """Time every (backend, mode, batch) of `config`; the report as a dict plus raw samples."""
    config.validate()
    subject = open_subject(config.artifact, config.checkpoint)
    backends = resolve_backends(config.backends, subject)
    for backend in backends:
        preflight(backend, subject)
    spec = subject.artifact.spec if subject.artifact is not None else \
        subject.run_spec_and_labels()[0]
    check_batch_memory(spec, max(config.batches))
    paths = find_images(config.images, *_image_sources(subject), count=max(config.batches))
    env = capture_environment(config.threads)
    warnings = _machine_warnings(env)
    from edgetl.bench import reference_workload

    probe = reference_workload.LoadProbe()
    result = BenchResult(report={})
    rows: list[dict[str, Any]] = []
    for backend in backends:
        model_size = (artifact_size(subject.artifact.path)
                      if backend != "torch" and subject.artifact is not None
                      else _checkpoint_size(subject))
        for mode in config.modes:
            for batch in config.batches:
                for factory in _factories(backend, mode, batch, subject, paths, config):
                    peak = HostPeak()
                    peak.start()
                    target = factory()
                    try:
                        probe.before(config.threads)
                        row, samples = _time_target(target, mode, batch, config, peak, model_size)
                        row.update(probe.after(config.threads))
                    finally:
                        target.close()
                    if config.normalize:
                        row["p50_norm"] = round(row["p50_ms"] / row["ref_ms"], 6)
                        row["spread_norm"] = round(row["spread_ms"] / row["ref_ms"], 6)
                    rows.append(row)
                    result.samples_ms.append(samples)
                    warnings.extend(_row_warnings(row))
                    if progress is not None:
                        progress(row)
    if env.get("torch_cuda") is None:  # torch may have been imported by a row since
        from edgetl.bench.environment import torch_cuda_info

        env["torch_cuda"] = torch_cuda_info()
    # each runtime's version, device and settings, as its runner reported them
    env["runtimes"] = {row["backend"]: row["details"]["runtime"] for row in rows
                       if isinstance(row.get("details"), dict) and "runtime" in row["details"]}
    normalization = None
    if config.normalize:
        normalization = {**reference_workload.describe(),
                         "metric": "p50_norm = p50_ms / ref_ms (the row's own reference)"}
    result.report = {
        "schema": REPORT_SCHEMA,
        "artifact": subject.record(),
        "env": env,
        "config": {
            "backends_requested": list(config.backends), "backends": backends,
            "batches": list(config.batches), "modes": list(config.modes),
            "threads": config.threads,
            "warmup": "auto" if config.warmup is None else config.warmup,
            "min_time_s": config.min_time, "iters": config.iters,
            "images": paths, "checkpoint": subject.checkpoint,
        },
        "normalization": normalization,
        "load_probe": reference_workload.describe(),
        "rows": rows,
        "warnings": warnings,
    }
    return result


def _image_sources(subject: Subject) -> tuple[Path | None, str | None]:
    """(run folder, data origin) the images should come from."""
    art = subject.artifact
    if art is not None and (art.source_run is not None or art.data_origin):
        return art.source_run, art.data_origin
    if subject.run is None or not subject.run.is_dir():
        return None, None
    from edgetl.checkpoint import read_checkpoint_info

    data = read_checkpoint_info(subject.run, subject.checkpoint).record.get("data") or {}
    return subject.run, data.get("origin")


def _checkpoint_size(subject: Subject) -> int | None:
    if subject.run is None:
        return None
    from edgetl.checkpoint import read_checkpoint_info

    try:
        return read_checkpoint_info(subject.run, subject.checkpoint).weights_path.stat().st_size
    except Exception:  # the size is informative only
        return None


def _machine_warnings(env: dict[str, Any]) -> list[str]:
    load = env.get("load_average")
    cores = (env.get("cpu") or {}).get("usable_cores") or os.cpu_count() or 1
    if load and load[0] > BUSY_LOAD_PER_CORE * cores:
        return [f"the machine is busy (load average {load[0]:.1f} on {cores} cores): CPU "
                "timings will be slower and noisier than on an idle machine"]
    return []
