#!/usr/bin/env bash
# Object detection end to end on the built-in NEON aerial tree tiles (deepforest's wheel), CPU:
# inspect -> finetune -> evaluate -> export (fp32, fp16, int8) -> verify -> predict -> bench.
set -euo pipefail
OUT=${1:-demo-detect}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "the data: NEON aerial images with tree crowns (Pascal VOC), tiled to 320 px"
"$BIN/edgetl" data inspect neon-trees:320 --task detection --input-size 320 \
  --json "$OUT/inspect.json"

step "fine-tune an EfficientNet-Lite0 FCOS detector (recipes/detection-lite0.yaml)"
resume=()
[ -f "$OUT/run/recipe.yaml" ] && resume=(--resume)
"$BIN/edgetl" finetune recipes/detection-lite0.yaml --data neon-trees --out "$OUT/run" \
  "${resume[@]}"

step "evaluate the best checkpoint on the test tiles (COCO mAP, PR curve, confusion)"
"$BIN/edgetl" evaluate "$OUT/run" --json "$OUT/eval.json" --out "$OUT/eval"

for fmt in onnx onnx-fp16 onnx-int8; do
  step "export $fmt (NMS inside the graph)"
  "$BIN/edgetl" export "$OUT/run" --format "$fmt"
done
ART="$OUT/run/export"
for name in model model.fp16 model.int8-qdq; do
  step "verify $name.onnx against the run"
  "$BIN/edgetl" verify "$ART/$name.onnx" --against "$OUT/run" --json "$OUT/verify.$name.json"
done

step "predict boxes with the int8 artifact and its embedded spec only, drawn"
first_test=$(awk -F, 'NR>1 && $0 ~ /,test,/ {print $1; exit}' "$OUT/run/split.csv")
"$BIN/edgetl" predict "$ART/model.int8-qdq.onnx" "$first_test" --draw "$OUT/drawn" \
  --json "$OUT/predict.json"

step "latency on this machine (ONNX Runtime CPU), fp32 and int8, compute and end to end"
"$BIN/edgetl" bench "$ART/model.onnx" --backend ort-cpu --batch 1 --mode compute --mode e2e \
  --json "$OUT/bench.fp32.json"
"$BIN/edgetl" bench "$ART/model.int8-qdq.onnx" --backend ort-cpu --batch 1 --mode compute \
  --mode e2e --json "$OUT/bench.int8.json"
