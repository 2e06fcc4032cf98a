#!/usr/bin/env bash
# Retrains the two reference checkpoints in models/ with the commands on their model cards, then evaluates them
# so the tables can be compared with the cards. About 20 minutes on 2 cores. Usage: scripts/reproduce-models.sh [OUT]
# On x86-64 with AVX2/FMA handoff pins portable kernels (src/runtime/kernels.h), so the weights should equal the
# committed ones byte for byte; the script says whether they do.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/reproduce}
build/handoff sft --role device --preset quick --steps 900 --threads 1 --out "$out/device"
build/handoff sft --role cloud --preset quick --stop-at-step 1500 --threads 1 --out "$out/cloud"
build/handoff eval --model "$out/device/model" --n 100 --json "$out/device-eval.json"
build/handoff eval --model "$out/cloud/model" --n 100 --sample-temperature 0 --json "$out/cloud-eval.json"
for m in device:device-chain cloud:cloud-chain; do
  if cmp -s "$out/${m%%:*}/model/model.safetensors" "models/${m#*:}/model.safetensors"; then
    echo "${m#*:}: model.safetensors byte-identical to the committed checkpoint"
  else
    echo "${m#*:}: model.safetensors differs from the committed checkpoint (compare the tables with the card)"
  fi
done
echo "compare with models/device-chain/README.md and models/cloud-chain/README.md; to adopt them:"
echo "  cp $out/device/model/{config.json,model.safetensors,tokenizer.json} models/device-chain/"
echo "  cp $out/cloud/model/{config.json,model.safetensors,tokenizer.json} models/cloud-chain/"
