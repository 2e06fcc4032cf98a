#!/bin/bash
# Does training hold the deployed call rate? GAPG on the quick preset's reference models at each target rate r,
# with the paper's filter alone (none), with the PI-priced hand-off (dual) and with the price allowed to become
# a bonus below the target (dual2: --dual-two-sided), and the tracking recipe (track: two-sided, a fresh probe of
# 256 prompts per measurement, the learning rate decayed over the last 30 % of the steps and the run ending on
# the iterate of its last 40 % whose measured rate was closest to the target) and trackfine (track whose
# measurements in that last 40 % probe 1,024 prompts: --dual-select-probe 1024), then the
# greedy hand-off rate of each trained device on the held-out split (`handoff eval`, no threshold).
# The controller only ever sees train-split probe prompts; the held-out split is measured, never tuned on.
# Usage: bench/run_call_rate_control.sh [RATES] [SEEDS] [MODES]   e.g. "0.1 0.3 0.5" "1" "none dual"
# NOEVAL=1: no held-out evaluation (for choosing the controller's settings from its own probe measurements).
# EVAL_N: held-out items per difficulty (default 100: 800 items, sd of a rate near 0.3 ≈ 0.016; 400: ≈ 0.008).
# EXTRA: more `handoff train` flags for every run (e.g. "--dual-step 0.3 --dual-kp 0.5").
# Two runs at a time (one thread each); prints one line per run and a table.
cd "$(dirname "$0")/.."
B=${HANDOFF_BIN:-build/handoff}
RATES=${1:-"0.1 0.2 0.3 0.5"}
SEEDS=${2:-"1 2 3"}
MODES=${3:-"none dual"}
OUT=${OUT:-runs/call-rate-control}
STEPS=${STEPS:-150}
EVAL_N=${EVAL_N:-100}
mkdir -p "$OUT"
$B serve --model models/cloud-chain --model-name cloud --port 18191 --threads 1 > "$OUT/serve.log" 2>&1 &
SERVE=$!
trap 'kill $SERVE 2>/dev/null' EXIT
sleep 3
run() {  # mode rate seed
  local d="$OUT/$1-r$2-s$3" control="--call-rate-control $1"
  [ "$1" = dual2 ] && control="--call-rate-control dual --dual-two-sided"
  [ "$1" = track ] && control="--call-rate-control dual --dual-two-sided --lr-tail 0.3 --dual-select-last 0.4"
  [ "$1" = trackfine ] && control="--call-rate-control dual --dual-two-sided --lr-tail 0.3 --dual-select-last 0.4
    --dual-select-probe 1024"
  [ -f "$d/eval.txt" ] && return
  $B train --preset quick --algo gapg --device models/device-chain --cloud http://127.0.0.1:18191/v1 \
    --max-call-rate "$2" --seed "$3" --steps "$STEPS" $control --threads 1 --quiet \
    --out "$d" $EXTRA --cloud-cache "$OUT/cache.s$3.$1.r$2.jsonl" > "$d.log" 2>&1 || { echo "FAILED $d (see $d.log)"; return; }
  [ -n "$NOEVAL" ] && { : > "$d/eval.txt"; return; }  # choosing settings: the probe's train-split rates only
  $B eval --model "$d/model" --n "$EVAL_N" --threads 1 > "$d/eval.txt" 2>&1
}
jobs_running() { jobs -rp | grep -v "^$SERVE\$" | wc -l; }
for s in $SEEDS; do for r in $RATES; do for m in $MODES; do
  while [ "$(jobs_running)" -ge 2 ]; do sleep 2; done
  run "$m" "$r" "$s" &
done; done; done
while [ "$(jobs_running)" -gt 0 ]; do sleep 2; done
echo "| control | target r | seed | greedy call rate (held-out, $((EVAL_N * 8)) items) | |rate - r| | accuracy of local answers |"
echo "|---|---|---|---|---|---|"
for s in $SEEDS; do for r in $RATES; do for m in $MODES; do
  f="$OUT/$m-r$r-s$s/eval.txt"
  [ -f "$f" ] || continue
  awk -v m="$m" -v r="$r" -v s="$s" -F'|' '$2 ~ /^ all / {
    c=$5+0; d=c-r; if (d<0) d=-d; printf "| %s | %s | %s | %.3f | %.3f | %.3f |\n", m, r, s, c, d, $4+0 }' "$f"
done; done; done
