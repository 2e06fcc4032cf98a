#!/bin/bash
# GAPG on the quick preset's reference models, three variants side by side: the default (on-policy, no KL),
# PPO-style clipping with 2 updates per batch, and a k3 KL penalty 0.05 to the SFT model. Same seed, steps and
# budget as the quick demo's GAPG run; then the collaborative system of each on the same held-out items.
cd "$(dirname "$0")/.."
B=${HANDOFF_BIN:-build/handoff}
$B serve --model models/cloud-chain --model-name cloud --port 18181 --threads 1 > /tmp/ppo-serve.log 2>&1 &
SERVE=$!
sleep 3
pids=""
for v in base ppo2 kl05; do
  extra=""; [ $v = ppo2 ] && extra="--ppo-epochs 2"; [ $v = kl05 ] && extra="--kl 0.05"
  $B train --preset quick --algo gapg --device models/device-chain --cloud http://127.0.0.1:18181/v1 \
    --max-call-rate 0.3 --threads 1 --out runs/gapg-$v --cloud-cache runs/gapg-$v-cache.jsonl $extra \
    > runs/gapg-$v.log 2>&1 &
  pids="$pids $!"
done
wait $pids
for v in base ppo2 kl05; do
  echo "== $v"; tail -2 runs/gapg-$v.log
  $B eval --model runs/gapg-$v/model --cloud http://127.0.0.1:18181/v1 --n 50 --threads 1 --json runs/gapg-$v-eval.json 2>&1 | tail -14
done
kill $SERVE
