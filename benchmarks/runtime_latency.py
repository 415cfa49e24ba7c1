"""ONNX Runtime, OpenVINO and LiteRT on the CPU: each artifact's verify verdict beside its latency.

    python benchmarks/runtime_latency.py RUN [RUN ...] [--precisions fp32,int8] [--threads 2]
        [--rounds 40] [--block 10] [--artifacts DIR] [--name NAME]

Per run folder and precision, the artifact each CPU backend runs (ort-cpu: onnx / onnx-int8,
ov-cpu: openvino / openvino-int8, litert-cpu: litert; the backend -> format table is
`edgetl.select.config.FORMAT_FOR`, derived from the backends table) is taken from `--artifacts`
(default RUN/export-runtime-latency) when one of that format is there, else exported with the
ordinary exporter. A format that cannot be made here (the LiteRT converter not installed, no
LiteRT int8 format) is recorded as "not available: <why>", never left out.

Each artifact is checked with `edgetl verify` (its pass/fail and key figures recorded), then
every artifact is timed in ONE interleaved run: batch 1, `--threads` threads, each opened once
the way `edgetl bench` opens it (bench's targets: the runtimes' latency settings, recorded), an
automatic warm-up, then `--rounds` rounds in which every artifact runs a block of `--block`
timed calls in turn, the order rotated each round. Blocks rather than single calls: an idle
runtime's thread pool spins for a moment after a call and would steal cores from the next
artifact; two untimed calls open each block. p50/p90 over all timed calls per artifact.

Writes benchmarks/results/runtime-latency-<name>-cpu-<date>.json and .md (name: the run's task,
or --name), with the machine (CPU model, cores, SIMD flags, load), the versions and the date.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path
from typing import Any

from machine_info import cpu_name

from edgetl.bench.environment import capture_environment
from edgetl.bench.runner import open_compute_target
from edgetl.bench.stats import summarize_ns
from edgetl.bench.timing import measure, warm_up
from edgetl.errors import EdgetlError
from edgetl.io import atomic_write_json, atomic_write_text
from edgetl.select.config import FORMAT_FOR

RESULTS = Path(__file__).resolve().parent / "results"
BACKENDS = ("ort-cpu", "ov-cpu", "litert-cpu")
BLOCK_WARMUP = 2  # untimed calls opening every block (the runtime's caches after the other's)


def existing_artifacts(folder: Path) -> dict[str, Path]:
    """format -> artifact already in `folder` (from the manifests beside them)."""
    import json

    found: dict[str, Path] = {}
    for manifest in sorted(folder.glob("*.manifest.json")):
        record = json.loads(manifest.read_text())
        artifact = manifest.with_name(manifest.name[: -len(".manifest.json")])
        if artifact.is_file() and record.get("format"):
            found[record["format"]] = artifact
    return found


def make_artifact(run: Path, fmt: str, folder: Path) -> tuple[Path | None, str | None]:
    """(artifact, None), or (None, 'not available: why') when it cannot be made here."""
    from edgetl.export import export_run

    have = existing_artifacts(folder)
    if fmt in have:
        return have[fmt], None
    try:
        return export_run(run, fmt, out=folder).path, None
    except EdgetlError as exc:
        return None, f"not available: {exc}"


def key_figures(report: dict[str, Any]) -> dict[str, Any]:
    """Each verify check's verdict and its scalar figures (agreement, cosine, accuracy, ...)."""
    out: dict[str, Any] = {}
    for check in report.get("checks") or []:
        details = check.get("details") or {}
        out[check["name"]] = {"passed": check["passed"], **{
            k: v for k, v in details.items()
            if isinstance(v, (int, float, bool)) or (isinstance(v, str) and len(v) < 80)}}
    return out


def verify(path: Path, run: Path, backend: str, threads: int) -> dict[str, Any]:
    from edgetl.verify import verify_artifact

    started = time.perf_counter()
    try:
        report = verify_artifact(path, run, backend=backend, threads=threads).to_dict()
    except EdgetlError as exc:
        return {"passed": False, "error": str(exc)}
    return {"passed": report["passed"], "seconds": round(time.perf_counter() - started, 1),
            "checks": key_figures(report)}


def interleaved(entries: list[dict[str, Any]], threads: int, rounds: int, block: int
                ) -> None:
    """Open every artifact as bench does, warm each up, then time them round-robin."""
    targets = []
    for entry in entries:
        target = open_compute_target(Path(entry["artifact"]), entry["backend"], threads)
        entry["warmup_iters"] = warm_up(target.clock, target.step, None).iters
        entry["runtime"] = (target.details or {}).get("runtime")
        entry["threads"] = target.threads
        targets.append(target)
    samples: list[list[int]] = [[] for _ in targets]
    try:
        for r in range(rounds):
            order = list(range(len(targets)))
            order = order[r % len(order):] + order[: r % len(order)]
            for i in order:
                warm_up(targets[i].clock, targets[i].step, BLOCK_WARMUP)
                samples[i].extend(measure(targets[i].clock, targets[i].step, 0.0, block))
    finally:
        for target in targets:
            target.close()
    for entry, taken in zip(entries, samples, strict=True):
        stats = summarize_ns(taken).to_dict()
        entry.update({k: stats[k] for k in ("p50_ms", "p90_ms", "mean_ms", "cv")},
                     iters=len(taken))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path)
    parser.add_argument("--precisions", default="fp32,int8")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--block", type=int, default=10)
    parser.add_argument("--artifacts", type=Path, default=None,
                        help="where artifacts are taken from / exported to "
                        "(default RUN/export-runtime-latency)")
    parser.add_argument("--name", default=None, help="the file name's task part")
    parser.add_argument("--note", default=None, help="a sentence kept with the figures")
    args = parser.parse_args()
    for run in args.runs:
        measure_run(run, args)


def measure_run(run: Path, args: argparse.Namespace) -> None:
    from edgetl.checkpoint import read_checkpoint_info

    started = time.perf_counter()
    task = read_checkpoint_info(run, "best").record.get("task") or "classification"
    folder = args.artifacts or run / "export-runtime-latency"
    folder.mkdir(parents=True, exist_ok=True)
    entries: list[dict[str, Any]] = []
    for precision in args.precisions.split(","):
        for backend in BACKENDS:
            fmt = FORMAT_FOR[backend].get(precision)
            entry: dict[str, Any] = {"backend": backend, "precision": precision, "format": fmt}
            if fmt is None:
                entry["status"] = f"not available: {backend} has no {precision} format"
            else:
                path, why = make_artifact(run, fmt, folder)
                entry["status"] = why or "measured"
                if path is not None:
                    entry["artifact"] = str(path)
                    entry["verify"] = verify(path, run, backend, args.threads)
            entries.append(entry)
            verdict = entry.get("verify", {}).get("passed")
            print(f"{backend} {precision}: {entry['status']}"
                  f"{'' if verdict is None else f', verify passed {verdict}'}", flush=True)
    timed = [e for e in entries if "artifact" in e]
    load_start = capture_environment(args.threads)["load_average"]
    interleaved(timed, args.threads, args.rounds, args.block)
    env = capture_environment(args.threads)
    date = dt.date.today().isoformat()
    name = args.name or task
    result = {
        "date": env["date"], "run": str(run), "task": task, "cpu": cpu_name(),
        "machine": {"cpu": env["cpu"], "load_average_start": load_start,
                    "load_average_end": env["load_average"],
                    "platform": env["platform"]},
        "versions": env["versions"],
        "method": {"batch": 1, "threads": args.threads, "rounds": args.rounds,
                   "block": args.block, "block_warmup": BLOCK_WARMUP,
                   "warmup": "bench's automatic warm-up per artifact, then round-robin blocks",
                   "command": " ".join(["python", *sys.argv])},
        "seconds": round(time.perf_counter() - started, 1),
        "note": args.note,
        "entries": entries,
    }
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"runtime-latency-{name}-cpu-{date}"
    atomic_write_json(stem.with_suffix(".json"), result)
    atomic_write_text(stem.with_suffix(".md"), markdown(result))
    print(markdown(result))


def markdown(result: dict[str, Any]) -> str:
    method = result["method"]
    lines = [f"# Runtime latency: {result['task']} ({result['date']})", "",
             f"{result['cpu']}, {result['machine']['cpu']['usable_cores']} usable cores "
             f"(flags {', '.join(result['machine']['cpu']['flags'])}); batch 1, "
             f"{method['threads']} threads; one interleaved run of {method['rounds']} rounds x "
             f"{method['block']} calls per artifact; load average (1, 5, 15 min) "
             f"{result['machine']['load_average_start']} before timing, "
             f"{result['machine']['load_average_end']} after. Run: `{result['run']}`.",
             *(["", result["note"]] if result.get("note") else []), "",
             "| backend | precision | format | verify | key figures | p50 ms | p90 ms | cv | "
             "runtime, device, settings |", "|---|---|---|---|---|---|---|---|---|"]
    for e in result["entries"]:
        if "p50_ms" not in e:
            lines.append(f"| {e['backend']} | {e['precision']} | {e['format'] or '-'} | "
                         f"- | {e['status']} | - | - | - | - |")
            continue
        checks = e["verify"].get("checks") or {}
        parity = checks.get("parity") or {}
        figures = ", ".join([f"{k} {v:.4g}" for k, v in parity.items()
                             if isinstance(v, float) and "budget" not in k][:3]) \
            or e["verify"].get("error", "")
        rt = e.get("runtime") or {}
        lines.append(
            f"| {e['backend']} | {e['precision']} | {e['format']} | "
            f"{'pass' if e['verify']['passed'] else 'FAIL'} | {figures} | {e['p50_ms']:.3f} | "
            f"{e['p90_ms']:.3f} | {e['cv']:.2f} | {rt.get('runtime')} {rt.get('version')}, "
            f"{rt.get('device_name')}, {rt.get('settings')} |")
    versions = result["versions"]
    lines += ["", f"Versions: onnxruntime {versions.get('onnxruntime')}, openvino "
              f"{versions.get('openvino')}, ai-edge-litert {versions.get('ai-edge-litert')}, "
              f"torch {versions.get('torch')}, python {versions.get('python')}.",
              f"Command: `{method['command']}`"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
