#!/bin/bash
# What each RL run of a finished `handoff demo` solves by itself (issue 15 §4: why a method is above or below
# the routers, which route the task-tuned device). For every rl-*/model of RUN_DIR (the demo's
# final weights of each method and seed, the ones its report evaluates), decodes N held-out items per difficulty
# greedily twice, device alone: with the hand-off token banned (`eval --no-handoff`: what it solves by itself)
# and with its own decisions (what it keeps and solves, and how often it hands off). The items are the
# held-out split at SEED, which is not the demo's test seed, so nothing here is measured on the report's items.
# Usage: bench/run_demo_solo_solving.sh RUN_DIR [TASK = chain] [N = 200] [SEED = 4242] [MAX_NEW_TOKENS = 96]
# Writes RUN_DIR/solo/{ban,own}-NAME.json and prints bench/solo_solving_runs_table.py's table.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: bench/run_demo_solo_solving.sh RUN_DIR [TASK] [N] [SEED] [MAX_NEW_TOKENS]}
task=${2:-chain}
n=${3:-200}
seed=${4:-4242}
max_new=${5:-96}
B=${HANDOFF_BIN:-build/handoff}
[ -d "$run" ] || { echo "no run directory $run" >&2; exit 2; }
mkdir -p "$run/solo"
models=()
for d in "$run"/rl-*/; do [ -f "$d/model/model.safetensors" ] && models+=("$(basename "$d")"); done
[ ${#models[@]} -gt 0 ] || { echo "no rl-*/model in $run" >&2; exit 2; }
eval_one() {  # name mode
  local m=$1 mode=$2 flag=""
  [ "$mode" = ban ] && flag="--no-handoff"
  local out="$run/solo/$mode-$m.json"
  [ -f "$out" ] && return
  $B eval --model "$run/$m/model" --task "$task" --n "$n" --seed "$seed" --max-new-tokens "$max_new" \
    --sample-temperature 0 --threads 1 $flag --json "$out.tmp" > "$run/solo/$mode-$m.txt" 2>&1
  mv "$out.tmp" "$out"
}
for m in "${models[@]}"; do
  for mode in ban own; do
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do sleep 1; done
    eval_one "$m" "$mode" &
  done
done
wait
python3 bench/solo_solving_runs_table.py "$run/solo"
