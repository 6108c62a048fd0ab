#!/usr/bin/env bash
# Reproduce the committed CPU tables in benchmarks/results/ (builtin:full, batch 1).
# Needs: pip install -e ".[export,ort,bench]"; ~16 GB free RAM; about 35 + 5 minutes on a 2-core CPU.
# The photos are ../shared/data/images (beside the checkout); without them lotus-bench uses synthetic images.
# Settings for a quick smoke run (the test suite uses them with builtin:tiny):
#   MODEL (builtin:full)  SIZE (256)  BIG_SIZE (512)  ITERATIONS (5)  OUT (benchmarks/results)  ENGINES (engines)
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-../shared/data/images}
MODEL=${MODEL:-builtin:full}
SIZE=${SIZE:-256}
BIG_SIZE=${BIG_SIZE:-512}
ITERATIONS=${ITERATIONS:-5}
OUT=${OUT:-benchmarks/results}
ENGINES=${ENGINES:-engines}
name=$(echo "$MODEL" | sed 's/builtin:/builtin-/')
img=()
[ -d "$IMAGES" ] && img=(--images "$IMAGES")
run=(--batch 1 --iterations "$ITERATIONS" --warmup 1 "${img[@]}" -o "$OUT" --force)

# 0. The fp32 graph with its split stage graphs, which steps 1 and 2 both reuse (a graph without split/
#    would be refused by step 2 as "made with other settings").
[ -d "$ENGINES/$name-depth-onnx/split" ] || \
  lotus-export --model "$MODEL" --split --force --output "$ENGINES/$name-depth-onnx" "${img[@]/--images/--parity-images}"

# 1. The fused graph: PyTorch eager fp32 vs ONNX Runtime fp32, two sizes, interleaved runs.
lotus-bench --artifact "$ENGINES/$name-depth-onnx" --backend torch --backend onnxruntime --size "$SIZE" --size "$BIG_SIZE" \
  "${run[@]}" --name cpu-full

# 2. Where the time goes: the split VAE encoder / UNet / VAE decoder graphs at one size, next to the fused graph,
#    and the same graph exported with torch's native GroupNorm (InstanceNormalization) instead of the default
#    two-level GroupNorm (lotus_deploy/model/numerics.py), to show what the accurate form costs.
[ -d "$ENGINES/$name-depth-onnx-native-gn" ] || \
  lotus-export --model "$MODEL" --groupnorm native --no-parity --output "$ENGINES/$name-depth-onnx-native-gn"
lotus-bench --artifact "$ENGINES/$name-depth-onnx" --artifact "$ENGINES/$name-depth-onnx-native-gn" --backend onnxruntime --stages \
  --size "$SIZE" "${run[@]}" --name cpu-full-stages

# 3. The current fp32 export as a static graph at that size:
[ -d "$ENGINES/$name-depth-onnx-${SIZE}x${SIZE}" ] || \
  lotus-export --model "$MODEL" --engine onnx --height "$SIZE" --width "$SIZE" --output "$ENGINES/$name-depth-onnx-${SIZE}x${SIZE}" \
    "${img[@]/--images/--parity-images}"
lotus-bench --artifact "$ENGINES/$name-depth-onnx-${SIZE}x${SIZE}" --backend torch --backend onnxruntime --size "$SIZE" \
  "${run[@]}" --name cpu-full-256-current
