#!/usr/bin/env bash
# Data-parallel scaling on this machine (issue 19): steps/s of 1 process vs 2 processes under torchrun (one
# thread each) for SFT and for GAPG, and the share of a step spent in collectives (waiting for the other rank
# included). GAPG's cloud answers come from a cache filled by the 1-process run first, so neither timing
# includes the cloud's own compute (the 2-process run asks for exactly the same prompts).
# Usage: bench/run_dist_scaling.sh [SFT_STEPS] [GAPG_STEPS] [PRESET]   (defaults 300, 20, quick)
set -euo pipefail
cd "$(dirname "$0")/.."
sft_steps=${1:-300}
gapg_steps=${2:-20}
preset=${3:-quick}
out=$(mktemp -d /tmp/handoff-dist-bench.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
bin=build/handoff
tr() { torchrun --standalone --nproc_per_node 2 -r 1 -t 2 --log_dir "$out/logs-$1" --no_python "$bin" "${@:2}"; }
last() { tail -n 1 "$1" | python3 -c "import json,sys; j=json.loads(sys.stdin.read()); print(j.get('$2', 0))"; }

sft=(sft --role device --preset "$preset" --steps "$sft_steps" --checkpoint-every 100000 --quiet)
"$bin" "${sft[@]}" --threads 1 --out "$out/sft1" >/dev/null
tr sft "${sft[@]}" --out "$out/sft2" >/dev/null 2>&1
s1=$(last "$out/sft1/metrics.jsonl" steps_per_s)
s2=$(last "$out/sft2/metrics.jsonl" steps_per_s)
c2=$(last "$out/sft2/metrics.jsonl" comm_fraction)
python3 - "$s1" "$s2" "$c2" <<'PY'
import sys
s1, s2, c = map(float, sys.argv[1:])
print(f"SFT (device model): 1 process {s1:.2f} steps/s, 2 processes {s2:.2f} steps/s: {s2/s1:.2f}x; "
      f"collectives {100*c:.1f} % of the 2-process time")
PY

port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$bin" serve --model models/cloud-chain --model-name cloud --port "$port" --threads 1 >"$out/cloud.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
gapg=(train --algo gapg --device models/device-chain --preset "$preset" --steps "$gapg_steps" --threads 1
      --log-every 1 --checkpoint-every 100000 --cloud "http://127.0.0.1:$port/v1" --quiet)
"$bin" "${gapg[@]}" --out "$out/rl1" --cloud-cache "$out/cache1.jsonl" >/dev/null
cp "$out/cache1.jsonl" "$out/cache-warm.jsonl"
"$bin" "${gapg[@]}" --out "$out/rl1w" --cloud-cache "$out/cache-warm.jsonl" >/dev/null
cp "$out/cache1.jsonl" "$out/cache-warm2.jsonl"
tr rl "${gapg[@]}" --out "$out/rl2" --cloud-cache "$out/cache-warm2.jsonl" >/dev/null 2>&1
python3 - "$out/rl1w/metrics.jsonl" "$out/rl2/metrics.jsonl" <<'PY'
import json, sys
def steps(path):
    return [json.loads(l) for l in open(path) if l.strip()]
one, two = steps(sys.argv[1]), steps(sys.argv[2])
t1 = sum(s["step_seconds"] for s in one[1:]) / (len(one) - 1)  # the first step warms caches
t2 = sum(s["step_seconds"] for s in two[1:]) / (len(two) - 1)
c2 = sum(s.get("comm_seconds", 0) for s in two[1:]) / (len(two) - 1)
same = all(a["reward_mean"] == b["reward_mean"] and a["call_rate"] == b["call_rate"] for a, b in zip(one, two))
print(f"GAPG (cached cloud): 1 process {1/t1:.3f} steps/s, 2 processes {1/t2:.3f} steps/s: {t1/t2:.2f}x; "
      f"collectives {100*c2/t2:.1f} % of the 2-process step; same rewards and call rates at every step: {same}")
PY
