#!/usr/bin/env bash
# Does distillation help? lenet5 trained alone vs distilled from a vgg_small teacher (its logits
# linked with kl, T = 2: loss = 0.5 * CE + 0.5 * KL * T^2), same epochs, learning rate and seeds,
# on Fashion-MNIST; three seeds. The KL term's gradient is up to T times CE's, so the learning rate
# is one at which both runs train (lenet5 with momentum 0.9 stops learning around an effective 0.15).
# The teacher is vgg_small trained 3 epochs with seed 1 on one thread (as bench/quant_accuracy.sh).
#   bench/distill_accuracy.sh [build/bin/shrink] [workdir]
set -euo pipefail
shrink=${1:-build/bin/shrink}
dir=${2:-/tmp/shrink_distill_accuracy}
cfg=$(cd "$(dirname "$0")" && pwd)/distill_configs/lenet5_from_vgg_small.json
mkdir -p "$dir"
acc() { sed -n 's/.*"test_acc": *\([0-9.eE+-]*\).*/\1/p' | tail -1; }
if [ ! -f "$dir/vgg3.safetensors" ]; then
  "$shrink" train --model vgg_small --epochs 3 --batch 64 --lr 0.05 --seed 1 --threads 1 \
    --save "$dir/vgg3.safetensors" --json 2>/dev/null | tail -1
fi
for seed in 1 2 3; do
  alone=$("$shrink" train --model lenet5 --epochs 3 --lr 0.02 --seed "$seed" --threads 2 --json 2>/dev/null | acc)
  distilled=$("$shrink" distill --model lenet5 --teacher-model vgg_small --teacher-weights "$dir/vgg3.safetensors" \
    --config "$cfg" --origin-loss-lambda 0.5 --epochs 3 --lr 0.02 --seed "$seed" --threads 2 --json 2>/dev/null | acc)
  echo "seed $seed lenet5_alone $alone lenet5_distilled $distilled"
done
