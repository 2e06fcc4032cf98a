#!/bin/bash
# Does RL with the hand-off make the device solve more by itself? (issue 15 §4.) At a binding budget with a
# near-perfect cloud, accuracy = (items the device keeps and solves) + cloud accuracy × call rate, so a method
# can lead a router that hands off nearly only the device's failures (post-inference, AUC 0.98 on hops-mix)
# only by solving more of what it keeps. This trains task-tuning and GAPG (the preset's GAPG recipe at r = 0.3)
# from the same reference device per seed, then decodes each greedily on the held-out split with the hand-off
# banned (`--no-handoff`: the token is masked at every step; records before 2026-12-05 used
# `--handoff-threshold 1` through the cloud, which hands off where P(<handoff>) rounds to 1, and the table
# checked that none did) and prints
# per-class accuracy, the class-weighted mean (hops-mix weights 7:1:…:1) and the same with hand-offs allowed.
# Usage: bench/run_solo_solving.sh [SEEDS] [STEPS] [N]   (defaults "1 2 3", the preset's 150, 200 per class)
# Two runs at a time (one thread each).
cd "$(dirname "$0")/.."
B=${HANDOFF_BIN:-build/handoff}
SEEDS=${1:-"1 2 3"}
STEPS=${2:-150}
N=${3:-200}
OUT=${OUT:-runs/solo-solving}
PORT=${PORT:-18193}
mkdir -p "$OUT"
$B serve --model models/cloud-hops --model-name cloud --port "$PORT" --threads 1 > "$OUT/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null' EXIT
sleep 3
CLOUD="http://127.0.0.1:$PORT/v1"
GAPG="--max-call-rate 0.3 --call-rate-control dual --dual-two-sided --lr-tail 0.3 --dual-select-last 0.4"
GAPG="$GAPG ${GAPG_EXTRA:-}"  # e.g. GAPG_EXTRA="--dual-select-probe 1024" (the presets' recipe since 2026-12-04)
run() {  # algo seed
  local d="$OUT/$1-s$2" extra=""
  [ "$1" = gapg ] && extra="$GAPG"
  [ -f "$d/solo.json" ] && return
  grep -qs "done:" "$d.log" ||
    $B train --preset hops-mix --algo "$1" --device models/device-hops --cloud "$CLOUD" --seed "$2" \
      --steps "$STEPS" $extra --threads 1 --quiet --out "$d" --cloud-cache "$OUT/cache.$1.s$2.jsonl" \
      > "$d.log" 2>&1 || { echo "FAILED $d (see $d.log)"; return; }
  for mode in solo own; do
    local t="--cloud $CLOUD"
    [ $mode = solo ] && t="--no-handoff"
    $B eval --model "$d/model" --task hops --n "$N" --sample-temperature 0 --threads 1 $t \
      --json "$d/$mode.json.tmp" > "$d/$mode.txt" 2>&1 && mv "$d/$mode.json.tmp" "$d/$mode.json"
  done
}
jobs_running() { jobs -rp | grep -v "^$SERVE\$" | wc -l; }
for s in $SEEDS; do for a in task-tuning gapg; do
  while [ "$(jobs_running)" -ge 2 ]; do sleep 2; done
  run "$a" "$s" &
done; done
while [ "$(jobs_running)" -gt 0 ]; do sleep 2; done
python3 bench/solo_solving_table.py "$OUT"
