"""Record a trained run's figures: test metrics, training time, verify, interleaved latency.

    python benchmarks/task_figures.py RUN --name raccoon-detect-lite0 [--rounds 5]
        [--reference benchmarks/results/detect-reference-raccoon-cpu-2026-11-28.json]

For a finished `edgetl finetune` run (any task): exports onnx and onnx-int8 (if not there),
verifies both against the run, then times them with `edgetl bench` (ort-cpu, batch 1,
compute mode) in alternating rounds, so both artifacts meet the same machine load, and writes
`benchmarks/results/<name>-cpu-<date>.json` and `.md` with the machine, versions, load, the
commit and every command. Nothing here trains.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

from machine_info import cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
REPO = Path(__file__).resolve().parents[1]
ARTIFACTS = {"onnx": "model.onnx", "onnx-fp16": "model.fp16.onnx",
             "onnx-int8": "model.int8-qdq.onnx"}
HEADLINE = {"classification": ("accuracy", "accuracy_ci95"),
            "detection": ("map", "map_ci95", "map50", "map50_ci95", "map75", "ar100"),
            "semantic": ("miou", "miou_ci95", "mdice", "pixel_accuracy"),
            "instance": ("mask_map", "mask_map_ci95", "mask_map50", "box_map", "box_map50",
                         "n_images", "n_instances")}


def edgetl(*args: object) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "edgetl.cli.main", *map(str, args)]
    print("$", " ".join(command[2:]), flush=True)
    return subprocess.run(command, capture_output=True, text=True, cwd=REPO,
                          env={**os.environ, "COLUMNS": "160"})


def machine() -> dict[str, object]:
    import onnxruntime
    import torch

    return {"cpu": cpu_name(), "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "onnxruntime": onnxruntime.__version__,
            "load_average": list(os.getloadavg())}


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                          text=True, cwd=REPO)
    return done.stdout.strip()


def verify(run: Path, fmt: str) -> dict[str, object]:
    artifact = run / "export" / ARTIFACTS[fmt]
    if not artifact.is_file():
        done = edgetl("export", run, "--format", fmt)
        if done.returncode:
            return {"exported": False, "error": done.stderr.strip().splitlines()[-1]}
    report = run / "export" / f"verify-{fmt}.json"
    done = edgetl("verify", artifact, "--against", run, "--json", report)
    data = json.loads(report.read_text()) if report.is_file() else {}
    return {"passed": done.returncode == 0, "exit": done.returncode,
            "size_bytes": artifact.stat().st_size,
            "checks": {c["name"]: c["summary"] for c in data.get("checks", [])}}


def bench_rounds(run: Path, formats: list[str], rounds: int, threads: int
                 ) -> dict[str, list[float]]:
    p50: dict[str, list[float]] = {fmt: [] for fmt in formats}
    for _ in range(rounds):
        for fmt in formats:
            out = run / "export" / f"bench-{fmt}.json"
            done = edgetl("bench", run / "export" / ARTIFACTS[fmt], "--backend", "ort-cpu",
                          "--batch", "1", "--threads", threads, "--min-time", "3", "--json", out)
            if done.returncode == 0:
                p50[fmt].append(json.loads(out.read_text())["rows"][0]["p50_ms"])
    return p50


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--formats", default="onnx,onnx-int8")
    parser.add_argument("--reference", type=Path, help="a reference run's results JSON")
    args = parser.parse_args()
    run = args.run
    formats = args.formats.split(",")
    summary = json.loads((run / "summary.json").read_text())
    test = json.loads((run / "test_metrics.json").read_text())
    task = test.get("task", "classification")
    start = machine()
    verified = {fmt: verify(run, fmt) for fmt in formats}
    p50 = bench_rounds(run, formats, args.rounds, args.threads)
    medians = {fmt: statistics.median(v) if v else None for fmt, v in p50.items()}
    result = {
        "name": args.name, "date": dt.date.today().isoformat(), "commit": commit(),
        "machine": start, "load_average_end": list(os.getloadavg()),
        "run": str(run), "task": task, "recipe": (run / "recipe.yaml").read_text(),
        "split_sizes": {k: test.get("n_images") for k in ("test",)},
        "training": {k: summary.get(k) for k in ("train_seconds", "fit_seconds",
                                                 "wall_seconds", "best_epoch",
                                                 "stopped_early")},
        "test": {k: test.get(k) for k in HEADLINE.get(task, ()) if k in test},
        "per_class": test.get("per_class"),
        "verify": verified,
        "latency_ms_p50": {"rounds": p50, "median_of_rounds": medians,
                           "threads": args.threads, "batch": 1, "backend": "ort-cpu"},
    }
    if medians.get("onnx") and medians.get("onnx-int8"):
        result["int8_speedup"] = medians["onnx"] / medians["onnx-int8"]
    if args.reference and args.reference.is_file():
        result["reference"] = json.loads(args.reference.read_text())
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"{args.name}-cpu-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# {args.name} ({result['date']}, commit {result['commit']})", "",
             f"Machine: {start['cpu']}, {start['cores']} cores; load average at start "
             f"{start['load_average']}, at end {result['load_average_end']}; torch "
             f"{start['torch']}, onnxruntime {start['onnxruntime']}.", "",
             f"- Training: {summary.get('train_seconds')} s of epochs, "
             f"{summary.get('fit_seconds')} s of phases end to end, best epoch "
             f"{summary.get('best_epoch')}.",
             f"- Test: {json.dumps(result['test'])}.",
             *[f"- verify {fmt}: {'PASSED' if v.get('passed') else 'FAILED'}"
               for fmt, v in verified.items()],
             f"- ort-cpu batch-1 p50 (median of {args.rounds} alternating rounds, "
             f"{args.threads} threads): "
             + ", ".join(f"{fmt} {m:.2f} ms" for fmt, m in medians.items() if m)
             + (f"; int8 speed-up {result['int8_speedup']:.2f}x" if "int8_speedup" in result
                else "") + "."]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
