#!/usr/bin/env bash
# A GAPG step against the python3-torch peer on the same kernels (issue 18): `handoff train --algo gapg
# --preset quick --call-rate-control none` (the paper's GAPG: 32 prompts x 8 samples = 256 rollouts, the
# filter, the update) from models/device-chain, at one thread and at its default (2 data threads), against
# bench/peer_pytorch_gapg.py doing the same work on the same prompts, answers and cloud verdicts
# (bench_gapg_inputs), at 1 and 2 threads (OMP_WAIT_POLICY=PASSIVE) and with both attention forms for its
# one-token decoding steps (batched matmul as HF's eager Llama does, and our multiply-sum); the peer's best
# counts. The cloud's answers come from a cache every configuration filled first, so no timing includes the
# cloud. Seconds per step after the first; one run, configurations alternated, median of ROUNDS.
# Usage: bench/run_gapg_peer.sh [ROUNDS] [STEPS]   (defaults 3, 12)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-12}
out=$(mktemp -d /tmp/handoff-gapg-peer.XXXXXX)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$out"' EXIT
trap 'exit 1' INT TERM
bin=build/handoff
port=$(python3 -c "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])")
"$bin" serve --model models/cloud-chain --model-name cloud --port "$port" --threads 1 >"$out/cloud.log" 2>&1 &
for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/health" >/dev/null && break; sleep 0.2; done
train=(train --algo gapg --device models/device-chain --preset quick --call-rate-control none --steps "$steps"
       --log-every 1 --checkpoint-every 100000 --cloud "http://127.0.0.1:$port/v1" --quiet
       --cloud-cache "$out/cache.jsonl")
"$bin" "${train[@]}" --threads 1 --out "$out/warm" >/dev/null  # fills the cache with the run's prompts
build/bench_gapg_inputs configs/quick.json models/device-chain "$steps" "http://127.0.0.1:$port/v1" \
  "$out/cache.jsonl" >"$out/inputs.jsonl"

ours() {  # flags...: mean seconds per step after the first
  rm -rf "$out/run"
  "$bin" "${train[@]}" "$@" --out "$out/run" >/dev/null
  python3 -c "
import json
rows = [json.loads(l) for l in open('$out/run/metrics.jsonl') if l.strip()][1:]
print(sum(x['step_seconds'] for x in rows) / len(rows))"
}
peer() {  # threads attention
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/peer_pytorch_gapg.py "$out/inputs.jsonl" models/device-chain \
    --threads "$1" --attention "$2" | awk '{for (i=1;i<=NF;i++) if ($i=="s/step") print $(i-1)}'
}

: >"$out/rounds.txt"
for r in $(seq "$rounds"); do
  line="ours1 $(ours --threads 1) ours2 $(ours)"
  for t in 1 2; do
    line="$line peer${t}-matmul $(peer "$t" matmul) peer${t}-msum $(peer "$t" multiply-sum)"
  done
  echo "$line" | tee -a "$out/rounds.txt"
done
OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/peer_pytorch_gapg.py "$out/inputs.jsonl" models/device-chain \
  --attention multiply-sum | tee "$out/peer-workload.txt"
python3 - "$out/rounds.txt" "$rounds" "$out/warm/metrics.jsonl" <<'PY'
import json, statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
names = rows[0][0::2]
med = {n: statistics.median(float(r[2 * k + 1]) for r in rows) for k, n in enumerate(names)}
warm = [json.loads(l) for l in open(sys.argv[3]) if l.strip()]
best = min((n for n in names if n.startswith("peer")), key=lambda n: med[n])
label = {"ours1": "handoff train, --threads 1", "ours2": "handoff train, defaults (2 data threads)",
         "peer1-matmul": "python3-torch, 1 thread, matmul attention",
         "peer1-msum": "python3-torch, 1 thread, multiply-sum attention",
         "peer2-matmul": "python3-torch, 2 threads, matmul attention",
         "peer2-msum": "python3-torch, 2 threads, multiply-sum attention"}
rate = sum(x["call_rate"] for x in warm) / len(warm)
print(f"\nGAPG step, quick preset (256 rollouts), cloud answers cached; median of {sys.argv[2]} rounds; "
      f"our run's sampled call rate {rate:.3f}")
print("| trainer | s/step | the peer's best / this |\n|---|---|---|")
for n in names:
    print(f"| {label[n]} | {med[n]:.3f} | {med[best] / med[n]:.2f}x |")
PY
