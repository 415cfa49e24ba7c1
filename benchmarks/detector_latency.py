"""Latency of detector shapes on the CPU: what the neck and head cost on top of the backbone.

    python benchmarks/detector_latency.py [--size 320] [--threads 2] [--rounds 60]

Builds edgetl's FCOS detector (timm features body, torchvision FPN and FCOS head) for each
backbone and neck/head shape below, exports its raw graph (`export --raw`: the network only,
no decode or NMS, whose cost depends on how many boxes a trained model scores) to fp32 ONNX,
and times ONNX Runtime on the CPU at batch 1 in three blocks per shape taken in turn, one
session alive at a time (an idle session's thread pool keeps spinning and would steal cores
from the next). The torchvision default head is the `fpn256 x4` row. A trained run's full
graph is timed by `benchmarks/task_figures.py`. Writes
`benchmarks/results/detector-latency-cpu-<date>.json` and `.md`.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import torch
from machine_info import cpu_name

RESULTS = Path(__file__).resolve().parent / "results"
BACKBONES = ("tf_efficientnet_lite0", "mobilenetv2_100")
SHAPES = ((64, 2), (128, 2), (128, 4), (256, 4))  # (fpn channels, convs per head tower)


def export_variant(arch: str, fpn: int, convs: int, size: int) -> tuple[bytes, float]:
    """fp32 ONNX bytes of the raw detector graph and its parameter count in millions."""
    from edgetl.export.onnx_fp32 import trace_to_onnx
    from edgetl.models.deployable import deployable
    from edgetl.models.detector import DetectorSettings, build_detector

    settings = DetectorSettings(fpn_channels=fpn, head_convs=convs)
    model, _ = build_detector(arch, 1, settings, (size, size))
    module, names, _ = deployable(model.eval(), "detection", raw=True)
    example = torch.rand(1, 3, size, size)
    graph = trace_to_onnx(module, example, 17, names)
    return graph.SerializeToString(), sum(p.numel() for p in model.parameters()) / 1e6


def session(data: bytes, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(data, options, providers=["CPUExecutionProvider"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=320)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=60)
    args = parser.parse_args()

    variants = {}
    for arch in BACKBONES:
        for fpn, convs in SHAPES:
            name = f"{arch} fpn{fpn} x{convs}"
            data, params = export_variant(arch, fpn, convs, args.size)
            onnx.checker.check_model(onnx.load_from_string(data))
            variants[name] = {"onnx": data, "params_m": params}
            print(f"exported {name} ({params:.2f} M parameters)", flush=True)
    image = np.random.default_rng(0).random((1, 3, args.size, args.size), dtype=np.float32)
    times: dict[str, list[float]] = {name: [] for name in variants}
    blocks = 3  # one live session at a time (idle ORT pools spin and steal the other's cores)
    for _ in range(blocks):
        for name, v in variants.items():
            timed = session(v["onnx"], args.threads)
            feed = {timed.get_inputs()[0].name: image}
            for _ in range(5):
                timed.run(None, feed)
            for _ in range(args.rounds // blocks):
                start = time.perf_counter()
                timed.run(None, feed)
                times[name].append((time.perf_counter() - start) * 1000)
            del timed
    rows = [{"variant": name, "params_m": round(v["params_m"], 3),
             "p50_ms": statistics.median(times[name]),
             "p90_ms": float(np.percentile(times[name], 90))} for name, v in variants.items()]
    cpu = cpu_name()
    result = {"date": dt.date.today().isoformat(), "size": args.size, "threads": args.threads,
              "rounds": args.rounds, "batch": 1, "backend": "onnxruntime CPU, fp32",
              "machine": {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
                          "onnxruntime": ort.__version__,
                          "load_average": list(os.getloadavg())},
              "rows": rows}
    stem = RESULTS / f"detector-latency-cpu-{result['date']}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    lines = [f"# Detector latency by shape ({result['date']})", "",
             f"{cpu}, {os.cpu_count()} cores, onnxruntime {ort.__version__} CPU, "
             f"{args.threads} threads, batch 1, {args.size}x{args.size}, fp32, raw graphs "
             f"(network only: no decode, no NMS); {args.rounds} runs in 3 interleaved "
             f"blocks; load average "
             f"{result['machine']['load_average']}.", "",
             "| backbone + neck/head | parameters (M) | p50 ms | p90 ms |", "|---|---|---|---|",
             *[f"| {r['variant']} | {r['params_m']:.2f} | {r['p50_ms']:.1f} | "
               f"{r['p90_ms']:.1f} |" for r in rows]]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
