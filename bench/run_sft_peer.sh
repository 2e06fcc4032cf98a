#!/usr/bin/env bash
# SFT per *real* token against an independent python3-torch trainer on the same model and the same rows
# (issue 18): bench_sft_batches writes the batches of the quick device recipe, the peer
# (bench/peer_pytorch_sft.py --batches) trains on them padded to each batch's longest row — at 1 and at 2
# threads (OMP_WAIT_POLICY=PASSIVE, its better setting), the better one counts — and `handoff sft` trains on
# the same steps: with its defaults (length micro-batches of <= 512 tokens, 2 data threads), the defaults at one
# thread, and on whole padded batches (--update-tokens 0) at one thread (the reference checkpoints' recipe) and
# at two. Rates are over the steps after the first log interval. One run, configurations alternated within each
# round, median of ROUNDS.
# Usage: bench/run_sft_peer.sh [ROUNDS] [STEPS]   (defaults 3, 120)
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=${1:-3}
steps=${2:-120}
warm=20  # steps before timing starts (one log interval)
out=$(mktemp -d /tmp/handoff-sft-peer.XXXXXX)
trap 'rm -rf "$out"' EXIT
preset=configs/quick.json
build/bench_sft_batches "$preset" device "$steps" >"$out/batches.jsonl"
real_per_step=$(python3 -c "
import json
rows = [json.loads(l) for l in open('$out/batches.jsonl')][$warm:]
print(sum(len(p) + len(c) for b in rows for p, c in zip(b['prompts'], b['completions'])) / len(rows))")

ours() {  # name flags...: steps/s after the first interval, and the padding share the run logged
  local d="$out/$1"
  shift
  rm -rf "$d"
  build/handoff sft --role device --preset "$preset" --steps "$steps" --log-every "$warm" \
    --checkpoint-every 100000 --quiet "$@" --out "$d" >/dev/null
  python3 -c "
import json
rows = [json.loads(l) for l in open('$d/metrics.jsonl') if l.strip()]
t = [r['step'] / r['steps_per_s'] for r in rows]
print((rows[-1]['step'] - rows[0]['step']) / (t[-1] - t[0]), rows[-1]['padding_fraction'])"
}
peer() {  # threads: steps/s and padding share
  OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 bench/peer_pytorch_sft.py --batches "$out/batches.jsonl" \
    --preset "$preset" --threads "$1" --warmup "$warm" |
    awk '{for (i=1;i<=NF;i++) { if ($i=="steps/s") s=$(i-1); if ($i=="padding") p=$(i+1) }} END {print s, p}'
}

: >"$out/rounds.txt"
for r in $(seq "$rounds"); do
  line="peer1 $(peer 1) peer2 $(peer 2)"
  line="$line default $(ours default)"
  line="$line default1 $(ours default1 --threads 1)"
  line="$line padded1 $(ours padded1 --update-tokens 0 --threads 1)"
  line="$line padded2 $(ours padded2 --update-tokens 0)"
  echo "$line" | tee -a "$out/rounds.txt"
done
python3 - "$out/rounds.txt" "$rounds" "$real_per_step" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
real = float(sys.argv[3])
names = [rows[0][i] for i in range(0, len(rows[0]), 3)]
med = {n: statistics.median(float(r[3 * k + 1]) for r in rows) for k, n in enumerate(names)}
pad = {n: float(rows[-1][3 * k + 2]) for k, n in enumerate(names)}
best = max(("peer1", "peer2"), key=lambda n: med[n])
label = {"peer1": "python3-torch, 1 thread, padded to each batch's longest row",
         "peer2": "python3-torch, 2 threads (PASSIVE), padded to each batch's longest row",
         "default": "handoff sft, defaults (micro-batches of <= 512 tokens, 2 data threads)",
         "default1": "handoff sft, defaults at --threads 1",
         "padded1": "handoff sft, --update-tokens 0 --threads 1 (the reference checkpoints' recipe)",
         "padded2": "handoff sft, --update-tokens 0, 2 data threads"}
print(f"\nquick device recipe (d = 64, batch 64), {real:.0f} real tokens per step; median of {sys.argv[2]} rounds")
print("| trainer | steps/s | real tokens/s | padding computed | vs the peer's best |\n|---|---|---|---|---|")
for n in names:
    print(f"| {label[n]} | {med[n]:.2f} | {med[n] * real:,.0f} | {pad[n]:.1%} | {med[n] / med[best]:.2f}x |")
PY
