#!/usr/bin/env bash
# Data-parallel scaling on this machine: 1 process x T threads against N processes (mpirun) x T/N
# threads each, alternating for several rounds (the machine's speed drifts; only same-round
# ratios mean anything). Prints every round's rows (bench_dist's CSV with the setup and round in
# front), then per model the median ratio of samples/s (N processes / 1 process), its spread, and
# the median all-reduce wait per step.
#   bench/dist_scaling.sh [rounds] [seconds per model] [N] [T]     (defaults: 3 4 2 $(nproc))
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
seconds=${2:-4}
np=${3:-2}
threads=${4:-$(nproc)}
per_rank=$((threads / np > 0 ? threads / np : 1))
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
out=$(mktemp)
trap 'rm -f "$out"' EXIT
echo "setup,round,model,ranks,threads_per_rank,global_batch,steps,samples_per_s,allreduce_wait_ms_per_step,gradient_mb_per_step"
for r in $(seq 1 "$rounds"); do
  ./build/bin/bench_dist --threads "$threads" --seconds "$seconds" | tail -n +2 | sed "s/^/one,$r,/" | tee -a "$out"
  mpirun --oversubscribe -np "$np" ./build/bin/bench_dist --threads "$per_rank" --seconds "$seconds" | tail -n +2 |
    sed "s/^/mpi,$r,/" | tee -a "$out"
done
echo
echo "model,median_ratio_mpi_over_one,min_ratio,max_ratio,median_wait_ms_per_step"
awk -F, '
  $1 == "one" { one[$3 "," $2] = $8 }
  $1 == "mpi" { mpi[$3 "," $2] = $8; wait[$3] = wait[$3] " " $9; models[$3] = 1 }
  function median(list,   a, n, i, j, t) {
    n = split(list, a, " ")
    for (i = 1; i <= n; ++i) for (j = i + 1; j <= n; ++j) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
  }
  END {
    for (m in models) {
      ratios = ""; lo = 1e9; hi = 0
      for (k in mpi) {
        split(k, parts, ","); if (parts[1] != m || !(k in one)) continue
        r = mpi[k] / one[k]; ratios = ratios " " r
        if (r < lo) lo = r; if (r > hi) hi = r
      }
      printf "%s,%.3f,%.3f,%.3f,%.3f\n", m, median(ratios), lo, hi, median(wait[m])
    }
  }' "$out"
