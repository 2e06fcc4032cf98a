#!/bin/bash
# Batch-1 decode, handoff (libtorch fp32, `--weights bf16` and `--weights int8`) against llama.cpp (node-llama-cpp's prebuilt CPU build) on the SAME
# weights: a random Qwen2.5-0.5B-shaped checkpoint (bench_load writes it once), exported by
# `handoff export-gguf` as f32, f16 and q8_0. One run, rounds alternated (handoff, then llama.cpp f32, f16,
# q8_0), median of ROUNDS; tokens/s counts the one-token steps after the prompt (8 tokens), 64 new tokens in
# llama.cpp, 32 in bench_load (both after warm-up steps). The memcpy bound is bench_load's (same run).
# Usage: bench/run_llama_cpp_decode.sh [THREADS] [ROUNDS]     (needs: build/bench_load, tools/llama-cpp)
set -euo pipefail
cd "$(dirname "$0")/.."
T=${1:-1}
ROUNDS=${2:-3}
CK=${CK:-/tmp/handoff_bench_qwen25_05b}
OUT=${OUT:-runs/llama-cpp-decode}
[ -d tools/llama-cpp/node_modules/node-llama-cpp ] ||
  { echo "llama.cpp peer missing: npm install --prefix tools/llama-cpp --ignore-scripts --omit=optional" >&2; exit 2; }
mkdir -p "$OUT"
[ -f "$CK/model.safetensors" ] || build/bench_load "$T" "$CK" > /dev/null
for t in f32 f16 q8_0; do
  [ -f "$OUT/qwen25-05b-$t.gguf" ] || build/handoff export-gguf --model "$CK" --out "$OUT/qwen25-05b-$t.gguf" --type "$t"
done
req='{"threads": '"$T"', "n_new": 65, "prompts": [[4,5,6,7,8,9,10,11],[4,5,6,7,8,9,10,11]]}'
: > "$OUT/rounds.txt"
for r in $(seq "$ROUNDS"); do
  build/bench_load "$T" "$CK" > "$OUT/bench_load.txt"
  ours=$(awk '/^decode, batch 1, KV cache/ {print $(NF-6)}' "$OUT/bench_load.txt")
  ours16=$(awk '/^decode, batch 1, bf16 weights/ {print $(NF-4)}' "$OUT/bench_load.txt")
  ours8=$(awk '/^decode, batch 1, int8 weights/ {print $(NF-4)}' "$OUT/bench_load.txt")
  line="handoff_fp32 $ours handoff_bf16 $ours16 handoff_int8 $ours8"
  for t in f32 f16 q8_0; do
    # the second prompt's figure: the first warms the caches up
    v=$(echo "$req" | node tools/llama-cpp/run.mjs "$OUT/qwen25-05b-$t.gguf" | python3 -c 'import json,sys; print(json.load(sys.stdin)["decode_tok_s"][1])')
    line="$line llama_$t $v"
  done
  echo "$line" | tee -a "$OUT/rounds.txt"
done
python3 - "$OUT/rounds.txt" "$OUT/bench_load.txt" "$T" <<'PY'
import statistics, sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
med = {rows[0][i]: statistics.median(float(r[i + 1]) for r in rows) for i in range(0, len(rows[0]), 2)}
bound = next(float(l.split()[-2]) for l in open(sys.argv[2]) if l.startswith("decode bound"))
bw = next(l.split()[-2] for l in open(sys.argv[2]) if l.startswith("memcpy bandwidth"))
print(f"\nbatch-1 decode, Qwen2.5-0.5B shapes, {sys.argv[3]} thread(s), median of {len(rows)} alternated rounds; "
      f"memcpy {bw} GB/s, fp32 bound {bound:.2f} tok/s")
print("| runtime | tokens/s | handoff fp32 / this |\n|---|---|---|")
for k, v in med.items():
    print(f"| {k} | {v:.2f} | {med['handoff_fp32'] / v:.2f}x |")
print(f"handoff fp32 at {100 * med['handoff_fp32'] / bound:.0f}% of its memory bound; llama.cpp f32 at "
      f"{100 * med['llama_f32'] / bound:.0f}%; handoff bf16 / llama.cpp f16: "
      f"{med['handoff_bf16'] / med['llama_f16']:.2f}x; handoff int8 / llama.cpp q8_0: "
      f"{med['handoff_int8'] / med['llama_q8_0']:.2f}x; handoff int8 at "
      f"{100 * med['handoff_int8'] / (4 * bound):.0f}% of its memory bound")
PY
