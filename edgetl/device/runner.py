"""The device side of a bundle: integrity, preprocessing golden test, parity, the task metric on
the sample and latency, on every backend this machine has; one JSON report; exit 1 on a failure.

Imports at module level stay on numpy, Pillow and the standard library (the bundle copies this
module and its module-level imports); the runtime is imported when a backend opens.
"""

from __future__ import annotations

import hashlib
import json
import platform
import sys
from pathlib import Path
from typing import Any

import numpy as np

from edgetl import __version__, tasks
from edgetl.artifact.formats import family_of
from edgetl.artifact.manifest import (
    META_FORMAT,
    META_PRECISION,
    META_SPEC_FINGERPRINT,
    META_WEIGHTS_SHA256,
)
from edgetl.artifact.postprocess import concat_outputs
from edgetl.artifact.reference import normalize, pixels_and_geometry
from edgetl.bench.environment import cpu_info, gpu_info, package_versions
from edgetl.bench.stats import summarize_ns
from edgetl.bench.timing import HostClock, measure, warm_up
from edgetl.io import json_text, sha256_file
from edgetl.runtime import open_runner
from edgetl.runtime.backends import BACKEND_TABLE
from edgetl.spec import PreprocessSpec
from edgetl.verify.checks import CheckResult, GoldenAccumulator, failed

BUNDLE_FILE = "bundle.json"
BUNDLE_SCHEMA = "edgetl.bundle/1"
REPORT_SCHEMA = "edgetl.device-report/1"
WARMUP, ITERATIONS = 5, 30
RUN_BATCH = 8  # images per call when the artifact runs on the whole sample


def canonical_sha256(record: dict[str, Any], drop: str) -> str:
    """sha256 of a JSON record without its own `drop` field (what seals a report)."""
    body = {k: v for k, v in record.items() if k != drop}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def check_integrity(root: Path, bundle: dict[str, Any]) -> CheckResult:
    """Every file the bundle lists has its recorded sha256."""
    problems = []
    for name, digest in sorted(bundle["files"].items()):
        path = root / name
        if not path.is_file():
            problems.append(f"{name} missing")
        elif sha256_file(path) != digest:
            problems.append(f"{name} changed since bundling")
    if problems:
        return CheckResult("integrity", False, "; ".join(problems), {"problems": problems})
    return CheckResult("integrity", True, f"{len(bundle['files'])} files match their sha256", {})


def _inputs(root: Path, names: list[str], spec: PreprocessSpec
            ) -> tuple[list[Any], list[Any], list[Any]]:
    """The deployment reference's uint8 pixels, normalised tensors and geometries for the
    bundle's images."""
    pixels, tensors, geometries = [], [], []
    for name in names:
        raw, geo = pixels_and_geometry(root / name, spec)
        pixels.append(raw)
        tensors.append(normalize(raw, spec))
        geometries.append(geo)
    return pixels, tensors, geometries


def check_golden(root: Path, bundle: dict[str, Any], spec: PreprocessSpec,
                 pixels: list[Any], tensors: list[Any]) -> CheckResult:
    """The reference preprocessing here against torchvision's stored tensors, as verify does."""
    golden = np.load(root / "golden.npz")
    acc = GoldenAccumulator(spec, spec)
    for i, name in enumerate(bundle["golden"]):
        acc.add(name, pixels[i], tensors[i], golden["pixels"][i], golden["tensors"][i])
    return acc.result()


def check_artifact(bundle: dict[str, Any], metadata: dict[str, str] | None) -> CheckResult:
    """The artifact's own embedded record (as its runtime reads it) is the bundle's: the same
    weights, spec, format and precision; a swapped model says otherwise even when the file
    list was rewritten to match it."""
    if not metadata:
        return CheckResult("artifact", True, "this runtime reads no embedded metadata", {})
    prov = bundle["provenance"]
    expected = {META_WEIGHTS_SHA256: prov["source_weights_sha256"],
                META_SPEC_FINGERPRINT: prov["spec_fingerprint"],
                META_FORMAT: bundle["format"], META_PRECISION: bundle["precision"]}
    wrong = [f"{key} {metadata.get(key)!s:.12} != bundle's {value!s:.12}"
             for key, value in expected.items() if metadata.get(key) != value]
    if wrong:
        return CheckResult("artifact", False, "the artifact is not the one bundled: "
                           + "; ".join(wrong), {"embedded": metadata, "bundle": expected})
    return CheckResult("artifact", True, f"embedded record matches (weights "
                       f"{prov['source_weights_sha256'][:12]}, {bundle['format']})", {})


def latency(runner: Any, batch: np.ndarray, iterations: int) -> dict[str, Any]:
    """Batch-1 latency with bench's timing and statistics (warm-up calls are not counted)."""
    clock, step = HostClock(), lambda: runner.run(batch)
    warm_up(clock, step, WARMUP)
    return summarize_ns(measure(clock, step, min_time=0.0, iters=iterations)).to_dict()


def device_backends(artifact: Path) -> list[str]:
    """The backends this machine can run the artifact on (torch-free rows only)."""
    from importlib.util import find_spec

    family = family_of(artifact).name
    found = []
    for row in BACKEND_TABLE.values():
        if row.needs_torch or row.runner is None or family not in row.families:
            continue
        try:
            if find_spec(row.package) is None:
                continue
            row.require_available()
        except Exception:  # a missing runtime or provider: not this machine's backend
            continue
        found.append(row.name)
    return found


def run_backend(root: Path, bundle: dict[str, Any], backend: str, feed: np.ndarray,
                geometries: list[Any], iterations: int) -> dict[str, Any]:
    """The artifact's embedded record, the task's gates (its `device_checks`: parity and the
    metric on the sample) and latency on one backend."""
    device_checks = tasks.get(bundle["task"]).load("device_checks")
    torch_out = dict(np.load(root / "torch_outputs.npz"))
    truth = np.load(root / "labels.npz")
    try:
        runner = open_runner(root / bundle["artifact"], backend)
    except Exception as exc:  # runtime errors are untyped
        return {"checks": [failed("parity", f"{backend} could not open the artifact: {exc}")
                           .to_dict()]}
    try:
        embedded = getattr(runner, "metadata", None)
        out = concat_outputs([runner.run(feed[i:i + RUN_BATCH])
                              for i in range(0, len(feed), RUN_BATCH)])
        timing = latency(runner, feed[:1], iterations)
        described = runner.describe()
    except Exception as exc:
        return {"checks": [failed("parity", f"the artifact failed to run on {backend}: {exc}")
                           .to_dict()]}
    finally:
        runner.close()
    checks = [check_artifact(bundle, embedded)]
    try:
        checks += device_checks(bundle, truth, torch_out, out, geometries)
    except Exception as exc:  # outputs that do not fit the task's post-processing, say
        checks.append(failed("parity", f"the {bundle['task']} checks could not read the "
                                       f"artifact's outputs on {backend}: {exc!r}"))
    return {"checks": [c.to_dict() for c in checks], "latency": timing, "runner": described}


def environment() -> dict[str, Any]:
    """The device as `edgetl bench` records a machine: CPU, GPUs, OS and package versions."""
    return {"cpu": cpu_info(), "gpus": gpu_info(), "platform": platform.platform(),
            "versions": package_versions(), "runner_edgetl": __version__}


def run_bundle(root: Path, iterations: int = ITERATIONS) -> dict[str, Any]:
    """Every check, on every backend found here; the sealed report."""
    bundle = json.loads((root / BUNDLE_FILE).read_text())
    report: dict[str, Any] = {
        "schema": REPORT_SCHEMA, "bundle_sha256": sha256_file(root / BUNDLE_FILE),
        "provenance": bundle["provenance"], "format": bundle["format"],
        "precision": bundle["precision"], "environment": environment(), "backends": {}}
    checks = [check_integrity(root, bundle)]
    if checks[0].passed:
        spec = PreprocessSpec.from_dict(bundle["spec"])
        pixels, tensors, geometries = _inputs(root, bundle["images"], spec)
        checks.append(check_golden(root, bundle, spec, pixels, tensors))
        feed = np.stack(pixels if spec.graph_input == "uint8_raw" else tensors)
        backends = device_backends(root / bundle["artifact"])
        if not backends:
            checks.append(failed("backends", "no runtime here runs this artifact"))
        for backend in backends:
            report["backends"][backend] = run_backend(root, bundle, backend, feed, geometries,
                                                      iterations)
    report["checks"] = [c.to_dict() for c in checks]
    failures = [c for c in report["checks"] if not c["passed"]]
    failures += [{**c, "name": f"{b}/{c['name']}"} for b, row in report["backends"].items()
                 for c in row["checks"] if not c["passed"]]
    report["failures"] = [f"{c['name']}: {c['summary']}" for c in failures]
    report["passed"] = not failures
    report["report_sha256"] = canonical_sha256(report, "report_sha256")
    return report


def main(argv: list[str] | None = None) -> int:
    """`python run.py [--report PATH] [--iterations N]` from the bundle folder."""
    import argparse

    parser = argparse.ArgumentParser(description="check this bundle's artifact on this machine")
    parser.add_argument("--report", default="device_report.json")
    parser.add_argument("--iterations", type=int, default=ITERATIONS)
    args = parser.parse_args(argv)
    root = Path(__file__).resolve().parents[3]  # DIR/edgetl_device/edgetl/device/runner.py
    report = run_bundle(root, args.iterations)
    out = Path(args.report)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json_text(report))
    tmp.replace(out)
    for backend, row in report["backends"].items():
        p50 = row.get("latency", {}).get("p50_ms")
        print(f"{backend}: p50 {p50:.3f} ms" if p50 is not None else f"{backend}: did not run")
    if not report["passed"]:
        print("device check FAILED: " + "; ".join(report["failures"]), file=sys.stderr)
        return 1
    print(f"device check passed; report {out}")
    return 0
