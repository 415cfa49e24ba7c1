#!/usr/bin/env bash
# The main job end to end on the built-in default (ELPV from its PyPI package), CPU only:
# inspect -> finetune -> evaluate -> export (fp32, fp16, int8) -> verify -> predict -> bench.
set -euo pipefail
OUT=${1:-demo}
BIN=${BIN:-.venv/bin}
mkdir -p "$OUT"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

step "backbones with offline weights"
"$BIN/edgetl" models list

step "the data: ELPV solar cells (2,624 images)"
"$BIN/edgetl" data inspect elpv --json "$OUT/inspect.json"

step "fine-tune tf_efficientnet_lite0 (recipes/examples/elpv-quickstart.yaml)"
resume=()
[ -f "$OUT/run/recipe.yaml" ] && resume=(--resume)
"$BIN/edgetl" finetune recipes/examples/elpv-quickstart.yaml --out "$OUT/run" "${resume[@]}"

step "evaluate the best checkpoint on the test split"
"$BIN/edgetl" evaluate "$OUT/run" --json "$OUT/eval.json" --out "$OUT/eval"

# Artifacts land in $OUT/run/export/ (model.onnx, model.fp16.onnx, model.int8-qdq.onnx),
# each with its manifest beside it.
for fmt in onnx onnx-fp16 onnx-int8; do
  step "export $fmt and verify it against the run"
  "$BIN/edgetl" export "$OUT/run" --format "$fmt"
done
ART="$OUT/run/export"
for name in model model.fp16 model.int8-qdq; do
  "$BIN/edgetl" verify "$ART/$name.onnx" --against "$OUT/run" --json "$OUT/verify.$name.json"
done

step "predict with the int8 artifact and its embedded spec only"
first_test=$(awk -F, 'NR>1 && $4=="test" {print $1; exit}' "$OUT/run/split.csv")
"$BIN/edgetl" predict "$ART/model.int8-qdq.onnx" "$first_test" --top-k 2

step "an operating point: catch at least 95% of defective cells (threshold chosen on validation)"
"$BIN/edgetl" evaluate "$OUT/run" --operating-point defective:recall=0.95 \
  --json "$OUT/eval.recall95.json"
"$BIN/edgetl" export "$OUT/run" --format onnx --operating-point defective:recall=0.95 \
  --out "$ART/model.recall95.onnx"
"$BIN/edgetl" predict "$ART/model.recall95.onnx" "$first_test"

step "latency on this machine (ONNX Runtime CPU), fp32 and int8"
"$BIN/edgetl" bench "$ART/model.onnx" --backend ort-cpu --batch 1,8 --json "$OUT/bench.fp32.json"
"$BIN/edgetl" bench "$ART/model.int8-qdq.onnx" --backend ort-cpu --batch 1,8 \
  --json "$OUT/bench.int8.json"
