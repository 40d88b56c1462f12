#!/usr/bin/env bash
# `mpirun -np 2 shrink ...` end to end: rank 0 prints and writes, rank 1 writes nothing (each rank
# runs in its own directory, so any file rank 1 wrote would be there); a rank that is killed, or
# that fails alone, ends the whole job with an error instead of leaving the other waiting.
# Usage: cli_mpirun.sh SHRINK MPIRUN
set -uo pipefail
shrink=$(realpath "$1")
mpirun=$2
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
failures=0
check() {  # check DESCRIPTION COMMAND...
  if "${@:2}"; then echo "ok: $1"; else echo "FAILED: $1"; failures=$((failures + 1)); fi
}

# 1. Rank 1 writes nothing: same command, relative paths, each rank in its own directory.
mkdir -p "$work/rank0" "$work/rank1"
train=(train --model lenet5 --epochs 1 --limit 512 --batch 64 --seed 3 --threads 1 --save w.safetensors
       --checkpoint ck --checkpoint-every 4)
"$mpirun" --oversubscribe -np 1 --wdir "$work/rank0" "$shrink" "${train[@]}" : \
  -np 1 --wdir "$work/rank1" "$shrink" "${train[@]}" > "$work/out.txt" 2> "$work/err.txt"
rc=$?
check "two-rank training exits 0 (rc $rc)" test "$rc" -eq 0
check "rank 0 saved the weights" test -s "$work/rank0/w.safetensors"
check "rank 0 wrote checkpoints" test -n "$(ls -A "$work/rank0/ck" 2>/dev/null)"
check "rank 1 wrote nothing (found: $(ls -A "$work/rank1" | tr '\n' ' '))" test -z "$(ls -A "$work/rank1")"
check "one epoch line, from rank 0 only" test "$(grep -c '^epoch 1 ' "$work/out.txt")" -eq 1
check "the run says it trains on 2 ranks" grep -q "2 ranks" "$work/out.txt"

# 2. A rank killed mid-run: the job ends (non-zero) within a minute instead of hanging.
"$mpirun" --oversubscribe -np 2 "$shrink" train --model lenet5 --epochs 50 --batch 64 --threads 1 \
  --save "$work/never.safetensors" > "$work/kill_out.txt" 2>&1 &
job=$!
ranks=""
for _ in $(seq 1 100); do
  ranks=$(pgrep -P "$job" -f "never.safetensors" || true)
  [ "$(echo "$ranks" | grep -c .)" -ge 2 ] && break
  sleep 0.2
done
sleep 1
victim=$(echo "$ranks" | tail -1)
check "found both ranks (pids: $(echo $ranks))" test -n "$victim"
[ -n "$victim" ] && kill -9 "$victim"
for _ in $(seq 1 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.2; done
if kill -0 "$job" 2>/dev/null; then
  check "the job ended after a rank was killed" false
  kill -9 "$job"
fi
wait "$job"
rc=$?
check "the job's exit status is an error (rc $rc)" test "$rc" -ne 0

# 3. Rank 0 fails alone (its save cannot be written; rank 1 writes nothing, so it does not fail):
#    the job ends with rank 0's error.
timeout 120 "$mpirun" --oversubscribe -np 2 "$shrink" train --model lenet5 --epochs 1 --limit 256 --threads 1 \
  --save "$work/no/such/dir/w.safetensors" > "$work/fail_out.txt" 2>&1
rc=$?
check "a failure on one rank fails the job (rc $rc, not the timeout's 124)" test "$rc" -ne 0 -a "$rc" -ne 124
check "the error names the rank and the file" grep -q "(rank 0 of 2) .*no/such/dir/w.safetensors" "$work/fail_out.txt"

# 4. A recipe on two ranks: every stage trains on both, rank 0 writes the directory (the others
#    read its stage files); the directory holds exactly the files a one-process run writes.
cat > "$work/recipe.json" <<'RECIPE'
{"model": "lenet5", "seed": 3, "data": {"train_limit": 256, "test_limit": 200, "batch": 64},
 "stages": [
  {"stage": "train", "name": "dense", "epochs": 1},
  {"stage": "prune", "pruner": "taylor", "config_list": [{"op_types": ["Conv2d"], "sparse_ratio": 0.5}],
   "finetune_epochs": 1, "auto_dependency_groups": true},
  {"stage": "speedup"},
  {"stage": "quantize", "quantizer": "qat", "config_list": [{"op_types": ["Conv2d", "Linear"],
   "target_names": ["weight", "_input_0"], "quant_dtype": "int8"}], "epochs": 1},
  {"stage": "evaluate", "int8": true},
  {"stage": "export", "formats": ["safetensors", "onnx"]}]}
RECIPE
"$shrink" compress --recipe "$work/recipe.json" --out "$work/one" > "$work/compress_one.txt" 2>&1
rc=$?
check "one-process recipe run (rc $rc)" test "$rc" -eq 0
mkdir -p "$work/c0" "$work/c1"
"$mpirun" --oversubscribe -np 1 --wdir "$work/c0" "$shrink" compress --recipe "$work/recipe.json" --out "$work/two" : \
  -np 1 --wdir "$work/c1" "$shrink" compress --recipe "$work/recipe.json" --out "$work/two" \
  > "$work/compress_two.txt" 2>&1
rc=$?
check "two-rank recipe run (rc $rc)" test "$rc" -eq 0
check "the same files as one process writes" \
  diff <(cd "$work/one" && find . -type f | sort) <(cd "$work/two" && find . -type f | sort)
check "rank 1's directory stays empty" test -z "$(ls -A "$work/c1")"
check "the report lists the last stage" grep -q '"name":"5-export"' "$work/two/report.json"
check "rank 0 alone logs the stages" test "$(grep -c '^5-export: test accuracy' "$work/compress_two.txt")" -eq 1

# 5. A command that fails on rank 0 with its own status (a recipe whose --out is taken): the job
#    ends instead of leaving rank 1 in a barrier.
timeout 120 "$mpirun" --oversubscribe -np 2 "$shrink" compress --recipe "$work/recipe.json" --out "$work/two" \
  > "$work/taken.txt" 2>&1
rc=$?
check "a taken --out ends the two-rank job (rc $rc, not the timeout's 124)" test "$rc" -ne 0 -a "$rc" -ne 124
check "and says why" grep -q "exists and is not an empty directory" "$work/taken.txt"

if [ "$failures" -ne 0 ]; then
  echo "--- stdout of the two-rank run"; cat "$work/out.txt"; echo "--- stderr"; cat "$work/err.txt"
  echo "--- the failing run"; cat "$work/fail_out.txt"
  echo "--- the two-rank recipe run"; cat "$work/compress_two.txt"
  exit 1
fi
