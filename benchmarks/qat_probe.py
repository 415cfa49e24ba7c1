"""Can NNCF's quantisation-aware training give a QDQ ONNX graph that ONNX Runtime runs fast?

    python benchmarks/qat_probe.py [--model mobilenetv2_100] [--size 224]

Groundwork for issue 25 (not a timed test). A randomly initialised timm backbone goes through
the steps a QAT phase would take, with each setting that decides the graph's speed switched on
in turn: BN folded into the convolutions (or not), NNCF's activation preset, per-tensor
activation quantisers, and NNCF's QuantizeLinear/DequantizeLinear export mode. For each
variant it records what ONNX Runtime's optimiser makes of the graph (op counts after
optimisation) and an interleaved batch-1, 2-thread p50 against the float graph.
Writes benchmarks/results/qat-probe-<model>-cpu-<date>.{json,md}.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import os
import tempfile
import time
from collections import Counter
from importlib.metadata import version
from pathlib import Path
from typing import Any

import nncf
import numpy as np
import onnx
import onnxruntime as ort
import timm
import torch
from machine_info import cpu_name
from nncf.quantization.advanced_parameters import (
    AdvancedQuantizationParameters,
    QuantizationParameters,
)
from nncf.torch.quantization.layers import BaseQuantizer, QuantizerExportMode
from timm.layers import BatchNormAct2d
from torch.nn.utils.fusion import fuse_conv_bn_eval

RESULTS = Path(__file__).resolve().parent / "results"
VARIANTS = {
    "defaults": dict(fold=False, preset="PERFORMANCE", per_tensor=False),
    "bn-folded": dict(fold=True, preset="PERFORMANCE", per_tensor=False),
    "bn-folded, per-tensor activations": dict(fold=True, preset="PERFORMANCE", per_tensor=True),
    "bn-folded, per-tensor, MIXED preset": dict(fold=True, preset="MIXED", per_tensor=True),
}


def fold_batch_norms(module: torch.nn.Module) -> int:
    """Fold each Conv2d -> BatchNorm2d child pair into the conv, keeping timm's fused activation."""
    children = list(module.named_children())
    folded = 0
    for (conv_name, conv), (bn_name, bn) in zip(children, children[1:], strict=False):
        if isinstance(conv, torch.nn.Conv2d) and isinstance(bn, torch.nn.BatchNorm2d):
            setattr(module, conv_name, fuse_conv_bn_eval(conv, bn))
            after = (torch.nn.Sequential(bn.drop, bn.act) if isinstance(bn, BatchNormAct2d)
                     else torch.nn.Identity())
            setattr(module, bn_name, after)
            folded += 1
    return folded + sum(fold_batch_norms(child) for _, child in module.named_children())


def session(path: Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def optimised_ops(path: Path) -> dict[str, int]:
    """Op counts of the graph ONNX Runtime actually runs (after its QDQ fusions)."""
    options = ort.SessionOptions()
    options.optimized_model_filepath = str(path.with_suffix(".opt.onnx"))
    ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    graph = onnx.load(str(path.with_suffix(".opt.onnx"))).graph
    return dict(Counter(node.op_type for node in graph.node).most_common())


def qat_model(model: torch.nn.Module, x: torch.Tensor, preset: str,
              per_tensor: bool) -> torch.nn.Module:
    """NNCF-quantised copy, three training steps (the QAT phase's shape), QDQ export mode."""
    advanced = AdvancedQuantizationParameters(
        activations_quantization_params=QuantizationParameters(per_channel=False)
        if per_tensor else None)
    calibration = nncf.Dataset([x[i:i + 1] for i in range(len(x))])
    quantised = nncf.quantize(copy.deepcopy(model), calibration, subset_size=len(x),
                              preset=getattr(nncf.QuantizationPreset, preset),
                              advanced_parameters=advanced)
    quantised.train()
    optimiser = torch.optim.SGD(quantised.parameters(), lr=1e-4)
    for _ in range(3):
        loss = quantised(x).logsumexp(1).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    quantised.eval()
    for module in quantised.modules():
        if isinstance(module, BaseQuantizer):
            module.set_export_mode(QuantizerExportMode.ONNX_QUANTIZE_DEQUANTIZE_PAIRS)
    return quantised


def p50_ms(sessions: dict[str, ort.InferenceSession], x: np.ndarray,
           rounds: int = 150, warmup: int = 20) -> dict[str, float]:
    """Interleaved batch-1 timings, one run of each session per round."""
    times: dict[str, list[float]] = {name: [] for name in sessions}
    for _ in range(rounds):
        for name, sess in sessions.items():
            start = time.perf_counter()
            sess.run(None, {sess.get_inputs()[0].name: x})
            times[name].append(time.perf_counter() - start)
    return {name: round(1e3 * float(np.median(t[warmup:])), 2) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="mobilenetv2_100")
    parser.add_argument("--size", type=int, default=224)
    args = parser.parse_args()
    torch.manual_seed(0)
    x = torch.randn(8, 3, args.size, args.size)
    work = Path(tempfile.mkdtemp(prefix="qat-probe-"))
    rows: dict[str, Any] = {}
    for name, variant in VARIANTS.items():
        model = timm.create_model(args.model, pretrained=False, num_classes=2).eval()
        if variant["fold"]:
            fold_batch_norms(model)
        fp32_path, int8_path = work / "fp32.onnx", work / "int8.onnx"
        torch.onnx.export(model, x[:1], str(fp32_path), opset_version=17, dynamo=False)
        torch.onnx.export(qat_model(model, x, variant["preset"], variant["per_tensor"]),
                          x[:1], str(int8_path), opset_version=17, dynamo=False)
        ops = optimised_ops(int8_path)
        timings = p50_ms({"fp32": session(fp32_path), "int8": session(int8_path)},
                         x[:1].numpy())
        rows[name] = {**variant, "ops_after_ort_optimisation": ops, "p50_ms": timings,
                      "speedup": round(timings["fp32"] / timings["int8"], 2)}
        print(name, timings, {k: ops.get(k, 0) for k in ("QLinearConv", "Conv", "FusedConv")})
    record = {"date": dt.date.today().isoformat(), "cpu": cpu_name(), "cores": os.cpu_count(),
              "load_average": os.getloadavg(), "model": args.model, "size": args.size,
              "threads": 2, "batch": 1,
              "versions": {p: version(p) for p in ("torch", "timm", "nncf", "onnxruntime")},
              "variants": rows}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"qat-probe-{args.model}-cpu-{record['date']}"
    stem.with_suffix(".json").write_text(json.dumps(record, indent=2) + "\n")
    lines = [f"# NNCF QAT -> ONNX QDQ -> ONNX Runtime: {args.model} at {args.size} px", "",
             f"{record['cpu']}, {record['cores']} cores, load average {record['load_average']}, "
             f"{record['date']}; batch 1, 2 threads, interleaved p50. "
             + ", ".join(f"{k} {v}" for k, v in record["versions"].items()), "",
             "| variant | QLinearConv | float Conv/FusedConv | fp32 p50 ms | int8 p50 ms "
             "| speed-up |",
             "|---|---|---|---|---|---|"]
    for name, row in rows.items():
        ops = row["ops_after_ort_optimisation"]
        lines.append(f"| {name} | {ops.get('QLinearConv', 0)} | "
                     f"{ops.get('Conv', 0) + ops.get('FusedConv', 0)} | {row['p50_ms']['fp32']} | "
                     f"{row['p50_ms']['int8']} | {row['speedup']}x |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print(stem.with_suffix(".md").read_text())


if __name__ == "__main__":
    main()
