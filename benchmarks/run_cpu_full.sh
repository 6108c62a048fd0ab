#!/usr/bin/env bash
# Reproduce the committed CPU tables in benchmarks/results/ (builtin:full, batch 1).
# Needs: pip install -e ".[export,ort,bench]"; ~16 GB free RAM; about 35 + 5 minutes on a 2-core CPU.
# The photos are ../shared/data/images (beside the checkout); without them lotus-bench uses synthetic images.
set -euo pipefail
cd "$(dirname "$0")/.."
IMAGES=${IMAGES:-../shared/data/images}
img=()
[ -d "$IMAGES" ] && img=(--images "$IMAGES")

# 1. The fused graph: PyTorch eager fp32 vs ONNX Runtime fp32, 256x256 and 512x512, 5 interleaved runs each.
#    (--model exports engines/builtin-full-depth-onnx first if it is not there, or reuses it.)
lotus-bench --model builtin:full --backend torch --backend onnxruntime --size 256 --size 512 --batch 1 \
  --iterations 5 --warmup 1 "${img[@]}" -o benchmarks/results --name cpu-full

# 2. Where the time goes: the split VAE encoder / UNet / VAE decoder graphs (lotus-export --split) at 256x256,
#    next to the fused graph, and the same graph exported with torch's native GroupNorm (InstanceNormalization)
#    instead of the default two-level GroupNorm (lotus_deploy/numerics.py), to show what the accurate form costs.
[ -d engines/builtin-full-depth-onnx-native-gn ] || \
  lotus-export --model builtin:full --groupnorm native --no-parity --output engines/builtin-full-depth-onnx-native-gn
lotus-bench --model builtin:full --artifact engines/builtin-full-depth-onnx-native-gn --backend onnxruntime --stages \
  --size 256 --batch 1 --iterations 5 --warmup 1 "${img[@]}" -o benchmarks/results --name cpu-full-stages

# The current fp32 export (cleaned above 2 GB, baked timestep constant), static 256x256:
[ -d engines/builtin-full-depth-onnx-256x256 ] || \
  lotus-export --model builtin:full --engine onnx --height 256 --width 256 "${img[@]/--images/--parity-images}"
lotus-bench --artifact engines/builtin-full-depth-onnx-256x256 --backend torch --backend onnxruntime --size 256 \
  --batch 1 --iterations 5 --warmup 1 "${img[@]}" -o benchmarks/results --name cpu-full-256-current
