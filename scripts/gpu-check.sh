#!/usr/bin/env bash
# GPU readiness, in one script for a machine with a CUDA GPU and the Python `torch` package (its CUDA
# libtorch): builds the CUDA configuration in build-cuda/, then, in under 10 minutes, runs
#   1. CUDA vs CPU logits of the reference device model, greedy decodes, decode tokens/s (bench_cuda);
#   2. an SFT run of 20 steps on CUDA (`handoff sft --device cuda`);
#   3. two GAPG steps on CUDA (`handoff train --compute cuda`) against the reference cloud served on CUDA;
#   4. a 2-rank data-parallel SFT run on the GPU under torchrun;
# and writes everything it printed to OUT/gpu-check.txt (default docs/results/<date>-gpu-check/).
#   scripts/gpu-check.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-docs/results/$(date +%F)-gpu-check}
mkdir -p "$out"
exec > >(tee "$out/gpu-check.txt") 2>&1
python3 -c 'import torch, sys; sys.exit(0 if torch.cuda.is_available() else "no CUDA device visible to torch")'
python3 -c 'import torch; print("torch", torch.__version__, "CUDA", torch.version.cuda, torch.cuda.get_device_name(0))'
prefix=$(python3 -c 'import torch; print(torch.utils.cmake_prefix_path)')
start=$(date +%s)
# HANDOFF_DEPS_PREFIX / HANDOFF_CMAKE_ARGS: where a machine without the Debian packages keeps the other
# dependencies (a prefix tree; see scripts/setup.sh for the list) and any extra configure flags.
cmake -S . -B build-cuda -G Ninja -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_PREFIX_PATH="${HANDOFF_DEPS_PREFIX:+$HANDOFF_DEPS_PREFIX;}$prefix" ${HANDOFF_CMAKE_ARGS:-} > /dev/null
cmake --build build-cuda --target handoff bench_cuda -- -k 0  # every compile error at once
echo "build: $(($(date +%s) - start)) s"
bin=build-cuda/handoff

echo "== 1. parity and decode speed"
parity=ok
build-cuda/bench_cuda models/device-chain || parity=FAILED  # steps 2 and 3 still run

echo "== 2. SFT on CUDA"
rm -rf "$out/sft"
$bin sft --role device --preset quick --steps 20 --device cuda --out "$out/sft"

echo "== 3. GAPG on CUDA against the reference cloud served on CUDA"
$bin serve --model models/cloud-chain --model-name cloud --port 0 --compute cuda > "$out/serve.out" 2> "$out/serve.err" &
serve=$!
trap 'kill $serve 2>/dev/null || true' EXIT
for _ in $(seq 200); do grep -q "listening on" "$out/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$out/serve.out")
[ -n "$url" ] || { echo "serve did not start:"; cat "$out/serve.err"; exit 1; }
url=$url/v1
rm -rf "$out/gapg"
$bin train --device models/device-chain --out "$out/gapg" --algo gapg --preset quick --steps 2 \
  --compute cuda --cloud "$url"
echo "== 4. data-parallel SFT on CUDA: 2 ranks on this GPU under torchrun (Gloo, CUDA tensors staged by it)"
rm -rf "$out/sft-dp" "$out/tr-logs"
dp=ok
torchrun --standalone --nproc_per_node 2 -r 1 -t 2 --log_dir "$out/tr-logs" --no_python \
  $bin sft --role device --preset quick --steps 20 --device cuda --out "$out/sft-dp" || dp=FAILED
echo "total: $(($(date +%s) - start)) s; CUDA vs CPU parity: $parity; data-parallel on CUDA: $dp"
[ "$parity" = ok ]
