#!/usr/bin/env bash
# Threads that add up (issue 18): steps/s of one thread against two — as ATen's threads (`--threads 2`) and
# as data threads (`--data-threads 2`, the training default: each thread runs half of a batch's rows on one
# ATen thread) — for SFT at d = 64 (the quick device recipe) and d = 128 / 256 (the same recipe, wider), and
# for a GAPG step (quick preset, reference device, cloud answers from a cache that every configuration filled
# first, so no timing includes the cloud). One run, configurations alternated within each round, median of
# ROUNDS. BUSY=1 keeps the other core busy (a spinning process) throughout.
# Usage: bench/run_thread_scaling.sh [ROUNDS] [SFT_STEPS] [GAPG_STEPS]   (defaults 3, 100, 12)
#        WIDTHS="64 128 256" (SFT widths; WIDTHS="" measures the GAPG step alone)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
sft_steps=${2:-100}
gapg_steps=${3:-12}
out=$(mktemp -d /tmp/handoff-threads-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
trap 'exit 1' INT TERM
bin=build/handoff
if [ "${BUSY:-0}" = 1 ]; then
  (while :; do :; done) &
fi
configs=("one:--threads 1" "ops2:--threads 2" "data2:--data-threads 2")

widths=${WIDTHS-64 128 256}
for width in $widths; do
  python3 - "$width" "$out/preset-$width.json" <<'PY'
import json, sys
w = int(sys.argv[1])
p = json.load(open("configs/quick.json"))
m = p["device"]["model"]
m["intermediate_size"] = m["intermediate_size"] * w // m["hidden_size"]
m["hidden_size"] = w
json.dump(p, open(sys.argv[2], "w"))
PY
done
mean_rate() {  # SFT: steps/s over the logged intervals after the first
  python3 -c "
import json, sys
rows = [json.loads(l) for l in open('$1') if l.strip()]
r = [x['steps_per_s'] for x in rows[1:]] or [rows[-1]['steps_per_s']]
print(sum(r) / len(r))"
}
gapg_rate() {  # GAPG: 1 / mean step seconds after the first step
  python3 -c "
import json
rows = [json.loads(l) for l in open('$1') if l.strip()]
print(len(rows[1:]) / sum(x['step_seconds'] for x in rows[1:]))"
}

port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$bin" serve --model models/cloud-chain --model-name cloud --port "$port" --threads 1 >"$out/cloud.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
gapg=(train --algo gapg --device models/device-chain --preset quick --steps "$gapg_steps" --log-every 1
      --checkpoint-every 100000 --cloud "http://127.0.0.1:$port/v1" --quiet --cloud-cache "$out/cache.jsonl")
for c in "${configs[@]}"; do  # fill the cache with every configuration's prompts
  "$bin" "${gapg[@]}" ${c#*:} --out "$out/warm-${c%%:*}" >/dev/null
done

: > "$out/rounds.txt"
for r in $(seq "$rounds"); do
  line=""
  for width in $widths; do
    for c in "${configs[@]}"; do
      d="$out/sft-$width-${c%%:*}-$r"
      "$bin" sft --role device --preset "$out/preset-$width.json" --steps "$sft_steps" --log-every 20 \
        --checkpoint-every 100000 --quiet ${c#*:} --out "$d" >/dev/null
      line="$line sft$width-${c%%:*} $(mean_rate "$d/metrics.jsonl")"
    done
  done
  for c in "${configs[@]}"; do
    d="$out/gapg-${c%%:*}-$r"
    "$bin" "${gapg[@]}" ${c#*:} --out "$d" >/dev/null
    line="$line gapg-${c%%:*} $(gapg_rate "$d/metrics.jsonl")"
  done
  echo "$line" | tee -a "$out/rounds.txt"
done
python3 - "$out/rounds.txt" "$rounds" "${BUSY:-0}" $widths <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {rows[0][i]: statistics.median(float(r[i + 1]) for r in rows) for i in range(0, len(rows[0]), 2)}
busy = "the other core busy" if sys.argv[3] == "1" else "2 idle cores"
print(f"\nsteps/s, median of {sys.argv[2]} alternated rounds, {busy}")
print("| workload | 1 thread | 2 ATen threads | 2 data threads | ATen / 1 | data / 1 |\n|---|---|---|---|---|---|")
for w in [f"sft{w}" for w in sys.argv[4:]] + ["gapg"]:
    one, ops, data = med[f"{w}-one"], med[f"{w}-ops2"], med[f"{w}-data2"]
    name = {"gapg": "GAPG step (quick, d = 64)"}.get(w, f"SFT d = {w[3:]}")
    print(f"| {name} | {one:.2f} | {ops:.2f} | {data:.2f} | {ops / one:.2f}x | {data / one:.2f}x |")
PY
