#!/usr/bin/env python3
"""Benchmark matrix: models x formats x backends x batch sizes (x thread counts), one file set.

    python benchmarks/bench_matrix.py --run RUN [--run RUN2] \\
        --formats onnx,onnx-int8 --backends ort-cpu --batches 1,8 [--threads 1,2]
    python benchmarks/bench_matrix.py --make-run /tmp/edgetl-matrix ...   # builds a small run

Each run folder is exported to every format that is missing from RUN/export/ (`export_run`),
then `edgetl.bench.runner.run_bench` times every backend/batch/mode; the `torch` backend times
the run's checkpoint once per model (it does not depend on the export format). Results go to
OUT/<machine>-<date>.json (every bench report, whole) and .md (one table), where <machine> is
the GPU name, or the CPU model and core count. `--make-run` builds a real run in seconds with
tests/fixtures_runs.py (packaged pretrained weights, a logistic-regression head on generated
images): latency does not depend on how well the head was trained.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import os
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
MATRIX_SCHEMA = "edgetl.bench-matrix/1"
CHECKPOINT_BACKENDS = ("torch",)


def _csv(text: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run", action="append", type=Path, default=[],
                        help="run folder written by 'edgetl finetune' (repeatable)")
    parser.add_argument("--make-run", type=Path, default=None, metavar="DIR",
                        help="build a small real run per --arch under DIR (no --run needed)")
    parser.add_argument("--arch", default="tf_efficientnet_lite0",
                        help="architectures for --make-run (comma list)")
    parser.add_argument("--formats", default="onnx,onnx-int8", help="export formats (comma list)")
    parser.add_argument("--backends", default="ort-cpu", help="bench backends (comma list)")
    parser.add_argument("--batches", default="1,8", help="batch sizes (comma list)")
    parser.add_argument("--modes", default="compute", help="compute and/or e2e (comma list)")
    parser.add_argument("--threads", default="", help="CPU thread counts to sweep (comma list; "
                        "default: the runtime's own)")
    parser.add_argument("--torch-threads", default=None,
                        help="thread counts for the torch backend (default: as --threads); "
                        "torch's OpenMP pool can stall for seconds per call when another process "
                        "holds a core, so a shared machine may want 1 here")
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per row")
    parser.add_argument("--repeat", type=int, default=1,
                        help="repeat the whole matrix N times (rows keep the lowest p50 run's "
                        "figures and list every p50)")
    parser.add_argument("--images", type=Path, default=None,
                        help="folder of images to feed (default: each run's own test images)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--name", default=None, help="file stem (default <machine>-<date>)")
    return parser.parse_args(argv)


def make_runs(root: Path, archs: list[str]) -> list[Path]:
    sys.path.insert(0, str(REPO / "tests"))
    from fixtures_runs import make_fixture_run

    runs = []
    for arch in archs:
        target = root / arch
        if (target / "run" / "best" / "checkpoint.json").is_file():
            runs.append(target / "run")
            continue
        print(f"building a small {arch} run under {target}", flush=True)
        runs.append(make_fixture_run(target, arch=arch))
    return runs


def ensure_artifact(run: Path, fmt: str) -> Path:
    """RUN/export/<format file>, exported now when missing."""
    from edgetl.export import default_artifact_path, export_run, get_format

    path = default_artifact_path(run, get_format(fmt))
    if path.is_file():
        return path
    started = time.perf_counter()
    result = export_run(run, fmt)
    print(f"exported {run.name} -> {result.path.name} in {time.perf_counter() - started:.0f} s",
          flush=True)
    return Path(result.path)


def _images(folder: Path | None) -> tuple[Path, ...]:
    if folder is None:
        return ()
    from edgetl.data.samples import is_image_name

    return tuple(sorted(p for p in folder.rglob("*") if p.is_file() and is_image_name(p.name)))


def bench_one(artifact: Path, backends: list[str], args: argparse.Namespace,
              threads: int | None) -> dict[str, Any]:
    from edgetl.bench.runner import BenchConfig, run_bench

    config = BenchConfig(artifact=artifact, backends=tuple(backends),
                         batches=tuple(int(b) for b in _csv(args.batches)),
                         modes=tuple(_csv(args.modes)), threads=threads,
                         min_time=args.min_time, images=_images(args.images))

    def progress(row: dict[str, Any]) -> None:
        print(f"  {row['backend']:16s} {row['precision']:5s} b{row['batch']:<3d} {row['mode']:8s}"
              f" thr {row['threads']}: p50 {row['p50_ms']:.3f} ms  p90 {row['p90_ms']:.3f}  "
              f"cv {row['cv']:.1%}  ref {row['ref_ms']:.3f}", flush=True)

    return run_bench(config, progress).report


def merge_repeats(reports: list[dict[str, Any]]) -> dict[str, Any]:
    """One report whose rows are the lowest-p50 repeat of each row, with every p50 listed."""
    best = dict(reports[0])
    rows = []
    for i in range(len(reports[0]["rows"])):
        candidates = [r["rows"][i] for r in reports]
        chosen = dict(min(candidates, key=lambda r: r["p50_ms"]))
        chosen["p50_repeats_ms"] = [round(r["p50_ms"], 4) for r in candidates]
        rows.append(chosen)
    best["rows"] = rows
    return best


def markdown(matrix: dict[str, Any]) -> str:
    env = matrix["env"]
    cpu = env["cpu"]
    gpus = ", ".join(g["name"] for g in env.get("gpus") or []) or "no GPU"
    v = env["versions"]
    lines = [
        f"# edgetl bench matrix: {matrix['machine']} ({matrix['date']})", "",
        f"- CPU: {cpu['model']}, {cpu['usable_cores']} usable cores, flags "
        f"{', '.join(cpu['flags'])}; GPU: {gpus}",
        f"- python {v.get('python')}, onnxruntime "
        f"{v.get('onnxruntime') or v.get('onnxruntime-gpu')}, torch {v.get('torch')}, "
        f"numpy {v.get('numpy')}, tensorrt {v.get('tensorrt')}",
        f"- load average (1/5/15 min) at start {matrix['load_start']}, at end {matrix['load_end']}"
        f"; min time per row {matrix['args']['min_time']} s, repeats {matrix['args']['repeat']}",
        "- p50/p90/p99 in ms per call (batch), images/s = batch / p50; ref = mean ms per call of "
        "the fixed reference workload beside the row (higher = busier machine)", "",
        "| model | format | backend | precision | batch | mode | threads | p50 | p90 | p99 "
        "| cv | images/s | ref ms | size MB |",
        "|---|---|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for entry in matrix["entries"]:
        art = entry["report"]["artifact"]
        for row in entry["report"]["rows"]:
            lines.append(
                f"| {entry['model']} | {entry['format']} | {row['backend']} | {row['precision']} "
                f"| {row['batch']} | {row['mode']} | {row.get('threads') or '-'} "
                f"| {row['p50_ms']:.3f} | {row['p90_ms']:.3f} | {row['p99_ms']:.3f} "
                f"| {row['cv']:.1%} | {row['throughput']:.1f} | {row['ref_ms']:.3f} "
                f"| {(row.get('model_size_bytes') or art['size_bytes']) / 1e6:.1f} |")
    notes = matrix.get("notes") or []
    if notes:
        lines += ["", *[f"- {n}" for n in notes]]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from edgetl.bench.environment import capture_environment, machine_slug
    from edgetl.io import atomic_write_json, atomic_write_text

    runs = list(args.run)
    if args.make_run is not None:
        runs += make_runs(args.make_run, _csv(args.arch))
    if not runs:
        print("give --run RUN (repeatable) or --make-run DIR", file=sys.stderr)
        return 2
    formats, backends = _csv(args.formats), _csv(args.backends)
    artifact_backends = [b for b in backends if b not in CHECKPOINT_BACKENDS]
    threads_list: list[int | None] = [int(t) for t in _csv(args.threads)] or [None]
    env = capture_environment()
    load_start = env["load_average"]
    entries: list[dict[str, Any]] = []
    for run in runs:
        from edgetl.checkpoint import read_checkpoint_info

        model = read_checkpoint_info(run).architecture
        artifacts = {fmt: ensure_artifact(run, fmt) for fmt in formats}
        plan: list[tuple[str, Path, list[str]]] = [
            (fmt, path, artifact_backends) for fmt, path in artifacts.items() if artifact_backends]
        if any(b in CHECKPOINT_BACKENDS for b in backends):
            plan.append(("checkpoint", run, [b for b in backends if b in CHECKPOINT_BACKENDS]))
        for fmt, path, which in plan:
            sweep = threads_list
            if fmt == "checkpoint" and args.torch_threads is not None:
                sweep = [int(t) for t in _csv(args.torch_threads)] or [None]
            for threads in sweep:
                print(f"{model} {fmt} {','.join(which)} threads {threads or 'default'}",
                      flush=True)
                reports = [bench_one(path, which, args, threads) for _ in range(args.repeat)]
                entries.append({"model": model, "format": fmt, "threads": threads,
                                "report": merge_repeats(reports)})
    date = _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d")
    machine = machine_slug(env)
    matrix = {
        "schema": MATRIX_SCHEMA, "machine": machine, "date": date, "env": env,
        "load_start": load_start, "load_end": [round(v, 2) for v in os.getloadavg()],
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                 if k not in ("run", "make_run", "out", "images")},
        "entries": entries,
    }
    stem = args.name or f"{machine}-{date}"
    json_path = atomic_write_json(args.out / f"{stem}.json", matrix)
    md_path = atomic_write_text(args.out / f"{stem}.md", markdown(matrix))
    print(markdown(matrix))
    print(f"wrote {json_path} and {md_path}")
    return 0


if __name__ == "__main__":
    from edgetl.errors import EdgetlError

    try:
        raise SystemExit(main())
    except EdgetlError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        raise SystemExit(exc.exit_code) from None
