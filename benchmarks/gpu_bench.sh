#!/usr/bin/env bash
# GPU benchmark matrix for edgetl, prepared for the GPU machine (H100/H200; see the device
# README in shared/device/). Run from the repository root, in ONE device command, e.g.:
#
#   cp .devcache/stage/cN/p /tmp/pN && source .devcache/stage/unpack.sh && bash benchmarks/gpu_bench.sh
#
# Needs on that machine: onnxruntime-gpu (staged wheels, e.g. onnxruntime-gpu==1.31.1 for
# CUDA 13) and either a run folder carried over (RUN=path/to/run, with its best/ checkpoint;
# with BENCH_IMAGES=folder of a few images when the run's own image paths do not exist there)
# or the efficientnet-lite0 weights
# package staged so that a small run can be built there (about 20 s).
# Writes under $OUT (at most 8 files come back): the matrix JSON + markdown, the log.
#
# What it times (Lite0, batch 1/8/32, 2 s per row):
#   ort-cuda on onnx (fp32) and onnx-fp16: IOBinding with device OrtValues, CUDA graph when
#            ONNX Runtime accepts it (the row's details say cuda_graph true/false);
#   torch:   the checkpoint eager fp32, and CUDA-graph replays in fp32 and fp16.
set -euo pipefail

OUT="${OUT:-benchmarks/results}"
WORK="${WORK:-/tmp/edgetl-gpu-matrix}"
BATCHES="${BATCHES:-1,8,32}"
MIN_TIME="${MIN_TIME:-2}"
mkdir -p "$OUT" "$WORK"
LOG="$OUT/gpu_bench.log"

{
  echo "== $(date -u +%FT%TZ) $(hostname | sha256sum | cut -c1-12)"
  nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv || true
  python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -2 || true
  python3 - <<'PY'
import onnxruntime as o
if hasattr(o, "preload_dlls"):
    o.preload_dlls()
print("onnxruntime", o.__version__, o.get_available_providers())
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, torch.cuda.is_available())
PY
} 2>&1 | tee "$LOG"

RUN_ARGS=(--make-run "$WORK")
if [[ -n "${RUN:-}" ]]; then RUN_ARGS=(--run "$RUN"); fi
if [[ -n "${BENCH_IMAGES:-}" ]]; then RUN_ARGS+=(--images "$BENCH_IMAGES"); fi

python3 benchmarks/bench_matrix.py "${RUN_ARGS[@]}" \
  --formats onnx,onnx-fp16 --backends ort-cuda,torch --batches "$BATCHES" \
  --min-time "$MIN_TIME" --out "$OUT" 2>&1 | tee -a "$LOG"

# The same artifact through the CLI with e2e rows (decode + preprocessing on the host CPU).
ART="$(ls "$WORK"/*/run/export/model.onnx 2>/dev/null | head -1 || true)"
if [[ -n "${RUN:-}" ]]; then ART="$RUN/export/model.onnx"; fi
if [[ -f "$ART" ]]; then
  IMG_ARGS=()
  if [[ -n "${BENCH_IMAGES:-}" ]]; then IMG_ARGS=(--images "$BENCH_IMAGES"); fi
  python3 -m edgetl.cli.main bench "$ART" --backend ort-cuda --batch 1,8 --mode compute,e2e \
    --min-time "$MIN_TIME" "${IMG_ARGS[@]}" --json "$OUT/gpu_cli_bench.json" 2>&1 \
    | tee -a "$LOG" || true
fi
ls -la "$OUT"
