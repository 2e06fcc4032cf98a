#!/usr/bin/env bash
# SFT steps/s of our C++ trainer vs the same step in Debian's python3-torch, one after the other in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
cpp=$(BENCH_ONLY_DEVICE=1 build/bench_train_step "$threads" | grep "device d=64" | awk '{for (i=1;i<=NF;i++) if ($i=="steps/s") print $(i-1)}')
py=$(/usr/bin/python3 bench/peer_pytorch_sft.py "$threads" | awk '{for (i=1;i<=NF;i++) if ($i=="steps/s") print $(i-1)}')
echo "C++ (handoff): $cpp steps/s; python3-torch: $py steps/s; ratio $(awk -v a="$cpp" -v b="$py" 'BEGIN{printf "%.2f", a/b}')x"
