#!/usr/bin/env bash
# Fused run acceptance (issue 10): vgg_small trained 3 epochs (seed 1, one thread, as
# bench/quant_accuracy.sh), then in one 2-epoch run: L1 out-channel 50 % on every conv but the
# first + int8 QAT (inputs, weights, outputs of every Conv2d/Linear) + KL distillation of the
# logits from the unpruned model. Prints the float and the fused accuracy; with --no-distill also
# the same run without the distiller, for comparison.
#   bench/fuse_accuracy.sh [build/bin/shrink] [workdir] [--no-distill]
set -euo pipefail
shrink=${1:-build/bin/shrink}
dir=${2:-/tmp/shrink_fuse_accuracy}
cfg=$(cd "$(dirname "$0")" && pwd)/fuse_configs
mkdir -p "$dir"
if [ ! -f "$dir/vgg3.safetensors" ]; then
  "$shrink" train --model vgg_small --epochs 3 --batch 64 --lr 0.05 --seed 1 --threads 1 \
    --save "$dir/vgg3.safetensors" --json 2>/dev/null | tail -1
fi
common=(--model vgg_small --weights "$dir/vgg3.safetensors" --pruner l1 --prune-config "$cfg/vgg_small_prune.json"
        --quantizer qat --quant-config "$cfg/vgg_small_quant.json" --epochs 2 --lr 0.01 --seed 1 --threads 2 --json)
echo "fused: $("$shrink" fuse "${common[@]}" --distill-config "$cfg/vgg_small_distill.json" 2>/dev/null)"
if [ "${3:-}" = "--no-distill" ]; then
  echo "prune+quantize only: $("$shrink" fuse "${common[@]}" 2>/dev/null)"
fi
