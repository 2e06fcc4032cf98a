#!/usr/bin/env bash
# Retrains the reference checkpoints in models/ with the commands on their model cards, then evaluates them so
# the tables can be compared with the cards. Usage: scripts/reproduce-models.sh [OUT] [chain|hops|all]
#   chain (default): models/device-chain and models/cloud-chain, about 20 minutes on 2 cores;
#   hops: models/device-hops and models/cloud-hops, about 75 minutes (device 6000 steps, cloud 3500).
# On x86-64 with AVX2/FMA handoff pins portable kernels (src/runtime/kernels.h), so weights trained with the card's
# thread count should equal the committed ones byte for byte; the script says whether they do.
# --update-tokens 0: the checkpoints were trained on whole padded batches, the SFT default until 2026-12-05.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/reproduce}
which=${2:-chain}
case "$which" in chain | hops | all) ;; *) echo "unknown model set '$which' (chain | hops | all)" >&2; exit 2 ;; esac

compare() {  # run-dir committed-name
  if cmp -s "$1/model/model.safetensors" "models/$2/model.safetensors"; then
    echo "$2: model.safetensors byte-identical to the committed checkpoint"
  else
    echo "$2: model.safetensors differs from the committed checkpoint (compare the tables with models/$2/README.md)"
  fi
  echo "  to adopt it: cp $1/model/{config.json,model.safetensors,tokenizer.json} models/$2/"
}

if [ "$which" != hops ]; then
  build/handoff sft --role device --preset quick --steps 900 --update-tokens 0 --threads 1 --out "$out/device"
  build/handoff sft --role cloud --preset quick --stop-at-step 1500 --update-tokens 0 --threads 1 --out "$out/cloud"
  build/handoff eval --model "$out/device/model" --n 100 --json "$out/device-eval.json"
  build/handoff eval --model "$out/cloud/model" --n 100 --sample-temperature 0 --json "$out/cloud-eval.json"
  compare "$out/device" device-chain
  compare "$out/cloud" cloud-chain
fi
if [ "$which" != chain ]; then
  build/handoff sft --role device --preset hops --task hops --update-tokens 0 --threads 2 --out "$out/device-hops"
  build/handoff sft --role cloud --preset hops --task hops --update-tokens 0 --threads 1 --stop-at-step 1500 --out "$out/cloud-hops"
  build/handoff sft --role cloud --preset hops --task hops --update-tokens 0 --threads 2 --resume --out "$out/cloud-hops"
  for m in device-hops cloud-hops; do
    build/handoff eval --model "$out/$m/model" --task hops --n 100 --max-new-tokens 128 --json "$out/$m-eval.json"
    compare "$out/$m" "$m"
  done
fi
