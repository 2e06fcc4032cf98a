#!/usr/bin/env bash
# What the portable kernels cost (src/runtime/kernels.h): bench_train_step with this CPU's own OpenBLAS/ATen kernels
# and with the pinned AVX2 set (OpenBLAS Haswell, ATen AVX2), alternated ROUNDS times in one run so that load on the
# machine hits both alike; prints steps/s per model size and the portable/native ratio of the medians.
# Usage: bench/run_kernel_comparison.sh [THREADS] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
threads=${1:-1}
rounds=${2:-3}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for ((r = 1; r <= rounds; r++)); do
  build/bench_train_step "$threads" >>"$tmp/native"
  OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 build/bench_train_step "$threads" >>"$tmp/portable"
done
grep -m1 "OpenBLAS" "$tmp/native" | sed 's/^/native:   /'
grep -m1 "OpenBLAS" "$tmp/portable" | sed 's/^/portable: /'
python3 - "$tmp/native" "$tmp/portable" <<'PY'
import re, statistics, sys
def runs(path):
    out = {}
    for line in open(path):
        m = re.match(r"(.+?)\s+params.*?([\d.]+) steps/s", line)
        if m: out.setdefault(m.group(1).strip(), []).append(float(m.group(2)))
        m = re.match(r"GEMM peak.*?: ([\d.]+) GFLOP/s", line)
        if m: out.setdefault("GEMM 1024^2 (GFLOP/s)", []).append(float(m.group(1)))
    return out
nat, por = runs(sys.argv[1]), runs(sys.argv[2])
print(f"{'':32s} {'native':>9s} {'portable':>9s} {'ratio':>6s}   (medians; steps/s unless said)")
for k in nat:
    a, b = statistics.median(nat[k]), statistics.median(por[k])
    print(f"{k:32s} {a:9.2f} {b:9.2f} {b / a:6.2f}")
PY
