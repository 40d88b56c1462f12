#!/usr/bin/env bash
# ./run gpu-check: the one prepared check for a lent GPU machine (under 8 minutes on one GPU).
#   1. build with CUDA required (-DSHRINK_CUDA=ON) into build/
#   2. test_cuda_device: every kernel case on the device against the CPU kernels
#   3. lenet5, one epoch, seed 1, on the CPU and on the GPU: first-step loss within 1e-3 relative,
#      test accuracy within 1 point (cuDNN/cuBLAS sum in another order)
#   4. bench_kernels: GB/s of the mask, fake-quant and distillation kernels against a copy kernel
# Prints one summary table; exits non-zero, loudly, when anything disagrees or no GPU is present.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${GPU_CHECK_OUT:-build/gpu-check}
mkdir -p "$out"
rows=()
failed=0
record() {  # name, status, detail
  rows+=("$(printf '%-28s %-6s %s' "$1" "$2" "$3")")
  [ "$2" = "ok" ] || failed=1
}

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DSHRINK_CUDA=ON >"$out/build.log" 2>&1 &&
  cmake --build build --parallel "$(nproc)" >>"$out/build.log" 2>&1
if [ $? -ne 0 ]; then
  tail -30 "$out/build.log"
  echo "gpu-check: FAILED to build with CUDA (log: $out/build.log)" >&2
  exit 1
fi

if ./build/bin/test_cuda_device --report_level=short >"$out/test_cuda_device.log" 2>&1; then
  if grep -q "skipped\|no CUDA device" "$out/test_cuda_device.log"; then
    record test_cuda_device FAIL "no CUDA device found: $(grep -m1 -i 'device' "$out/test_cuda_device.log")"
  else
    record test_cuda_device ok "$(grep -m1 -E 'No errors|passed' "$out/test_cuda_device.log")"
  fi
else
  record test_cuda_device FAIL "see $out/test_cuda_device.log"
fi

field() { sed -n "s/.*\"$1\": *\([0-9.eE+-]*\).*/\1/p" | tail -1; }
train="./build/bin/shrink train --model lenet5 --epochs 1 --batch 64 --lr 0.05 --seed 1 --json"
$train --device cpu >"$out/lenet5_cpu.json" 2>"$out/lenet5_cpu.log"
cpu_rc=$?
$train --device cuda >"$out/lenet5_cuda.json" 2>"$out/lenet5_cuda.log"
gpu_rc=$?
if [ $cpu_rc -ne 0 ] || [ $gpu_rc -ne 0 ]; then
  record "lenet5 cpu vs cuda" FAIL "training failed (cpu $cpu_rc, cuda $gpu_rc; logs in $out)"
else
  c_loss=$(field first_loss <"$out/lenet5_cpu.json") g_loss=$(field first_loss <"$out/lenet5_cuda.json")
  c_acc=$(field test_acc <"$out/lenet5_cpu.json") g_acc=$(field test_acc <"$out/lenet5_cuda.json")
  c_sps=$(field train_samples_per_s <"$out/lenet5_cpu.json") g_sps=$(field train_samples_per_s <"$out/lenet5_cuda.json")
  verdict=$(awk -v a="$c_loss" -v b="$g_loss" -v x="$c_acc" -v y="$g_acc" 'BEGIN {
    d = a - b; if (d < 0) d = -d; r = d / (a < 0 ? -a : a);
    e = x - y; if (e < 0) e = -e;
    print (r <= 1e-3 && e <= 0.01) ? "ok" : "FAIL" }')
  record "lenet5 first loss" "$verdict" "cpu $c_loss cuda $g_loss"
  record "lenet5 test accuracy" "$verdict" "cpu $c_acc cuda $g_acc"
  record "lenet5 samples/s" ok "cpu $c_sps cuda $g_sps"
fi

if ./build/bin/bench_kernels >"$out/bench_kernels.txt" 2>&1 && ! grep -q "nothing to measure" "$out/bench_kernels.txt"; then
  record bench_kernels ok "table below ($out/bench_kernels.txt)"
else
  record bench_kernels FAIL "see $out/bench_kernels.txt"
fi

echo
echo "gpu-check summary ($(date -u +%Y-%m-%dT%H:%MZ))"
printf '%s\n' "${rows[@]}"
echo
cat "$out/bench_kernels.txt"
if [ $failed -ne 0 ]; then
  echo "gpu-check: FAILED (details in $out)" >&2
  exit 1
fi
echo "gpu-check: all agree"
