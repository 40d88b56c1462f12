#!/usr/bin/env bash
# Accuracy of every quantizer setting issue 9 names, on Fashion-MNIST with vgg_small trained 3
# epochs as the float reference (trained with one thread: the same seed and thread count give
# the same weights; about 20 minutes on 2 cores). Prints one line per run.
#   bench/quant_accuracy.sh [build/bin/shrink] [workdir]
set -euo pipefail
shrink=${1:-build/bin/shrink}
dir=${2:-/tmp/shrink_quant_accuracy}
cfg=$(cd "$(dirname "$0")" && pwd)/quant_configs
mkdir -p "$dir"
run() {  # name, then shrink arguments
  local name=$1
  shift
  local acc
  acc=$("$shrink" "$@" --json 2>/dev/null | tail -1 | sed -n 's/.*"test_acc":\([0-9.eE+-]*\).*/\1/p')
  echo "$name test_acc $acc"
}
if [ ! -f "$dir/vgg3.safetensors" ]; then
  "$shrink" train --model vgg_small --epochs 3 --batch 64 --lr 0.05 --seed 1 --threads 1 \
    --save "$dir/vgg3.safetensors" --json 2>/dev/null | tail -1
fi
w="--model vgg_small --weights $dir/vgg3.safetensors --threads 2"
for obs in minmax percentile mse kl; do
  run "ptq_int8_per_channel_$obs" quantize $w --config "$cfg/int8_per_channel.json" --quantizer ptq \
    --observer "$obs" --steps 20 --save-calibration "$dir/ptq_$obs.safetensors"
done
run ptq_int8_per_channel_minmax_bias_correction quantize $w --config "$cfg/int8_per_channel.json" --quantizer ptq \
  --bias-correction --steps 20 --save-calibration "$dir/ptq_bc.safetensors"
train="--lr 0.005 --momentum 0.9 --weight-decay 5e-4"
run qat_int8_1_epoch quantize $w --config "$cfg/int8_qat.json" --quantizer qat --epochs 1 $train \
  --save-calibration "$dir/qat.safetensors"
run lsq_int4_all_2_epochs quantize $w --config "$cfg/int4_all.json" --quantizer lsq --epochs 2 $train \
  --save-calibration "$dir/lsq_all.safetensors"
run lsq_int4_image8_2_epochs quantize $w --config "$cfg/int4_image8.json" --quantizer lsq --epochs 2 $train \
  --save-calibration "$dir/lsq_image8.safetensors"
run lsq_int4_unsigned_hidden_2_epochs quantize $w --config "$cfg/int4_unsigned_hidden.json" --quantizer lsq --epochs 2 \
  $train --save-calibration "$dir/lsq_unsigned_hidden.safetensors"
# The LSQ paper's protocol: the first and the last layer at 8 bits, every other one at 4.
run lsq_int4_paper_2_epochs quantize $w --config "$cfg/lsq_paper.json" --quantizer lsq --epochs 2 $train \
  --save-calibration "$dir/lsq_paper.safetensors"
