#!/bin/bash
# What each RL run of a finished `handoff demo` solves by itself (issue 15 §4: why a method is above or below
# the routers, which route the task-tuned device). For every */model of RUN_DIR (a demo's rl-* runs: each
# method's and seed's final weights, the ones its report evaluates; or any `handoff train` runs), decodes N
# held-out items per difficulty greedily twice, device alone: with the hand-off token banned (`eval --no-handoff`: what it solves by itself)
# and with its own decisions (what it keeps and solves, and how often it hands off). The items are the
# held-out split at SEED, which is not the demo's test seed, so nothing here is measured on the report's items;
# SPLIT=train measures on the training distribution instead (validation: e.g. SEED 777, the demo's
# validation items), which is what a choice between recipes may be made on.
# Usage: [SPLIT=test|train] bench/run_demo_solo_solving.sh RUN_DIR [TASK = chain] [N = 200] [SEED = 4242]
#        [MAX_NEW_TOKENS = 96]
# Writes RUN_DIR/solo/{ban,own}-NAME.json (solo-train/ with SPLIT=train) and prints
# bench/solo_solving_runs_table.py's table.
set -euo pipefail
cd "$(dirname "$0")/.."
run=${1:?usage: bench/run_demo_solo_solving.sh RUN_DIR [TASK] [N] [SEED] [MAX_NEW_TOKENS]}
task=${2:-chain}
n=${3:-200}
seed=${4:-4242}
max_new=${5:-96}
split=${SPLIT:-test}
B=${HANDOFF_BIN:-build/handoff}
[ -d "$run" ] || { echo "no run directory $run" >&2; exit 2; }
dir="$run/solo"
[ "$split" = test ] || dir="$run/solo-$split"
mkdir -p "$dir"
models=()
for d in "$run"/*/; do [ -f "$d/model/model.safetensors" ] && models+=("$(basename "$d")"); done
[ ${#models[@]} -gt 0 ] || { echo "no */model in $run" >&2; exit 2; }
eval_one() {  # name mode
  local m=$1 mode=$2 flag=""
  [ "$mode" = ban ] && flag="--no-handoff"
  local out="$dir/$mode-$m.json"
  [ -f "$out" ] && return
  $B eval --model "$run/$m/model" --task "$task" --n "$n" --seed "$seed" --split "$split" \
    --max-new-tokens "$max_new" --sample-temperature 0 --threads 1 $flag --json "$out.tmp" \
    > "$dir/$mode-$m.txt" 2>&1
  mv "$out.tmp" "$out"
}
for m in "${models[@]}"; do
  for mode in ban own; do
    while [ "$(jobs -rp | wc -l)" -ge 2 ]; do sleep 1; done
    eval_one "$m" "$mode" &
  done
done
wait
python3 bench/solo_solving_runs_table.py "$dir"
