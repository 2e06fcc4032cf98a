#!/usr/bin/env bash
# Takes a fresh Debian 12 machine to a Release build of handoff in build/.
# Installs only Debian packages (no downloads from elsewhere), then configures and builds with Ninja.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

if [ "${HANDOFF_SKIP_APT:-0}" != "1" ]; then
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
    build-essential cmake ninja-build libtorch-dev libopenblas0-pthread \
    nlohmann-json3-dev libcpp-httplib-dev libcli11-dev libgtest-dev libbenchmark-dev \
    libre2-dev libsentencepiece-dev libgloo-dev libboost-dev clang-format python3-torch python3-jinja2 \
    python3-prometheus-client chromium >/dev/null
  # node + npm run the tokenizer parity reference (tests/js); a machine with a newer Node.js that bundles npm
  # keeps it (Debian's npm package would conflict with it).
  if ! command -v npm >/dev/null; then
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends nodejs npm >/dev/null
  fi
fi

# The tokenizer parity tests' reference implementation (@huggingface/tokenizers) and the chat page's browser
# driver (playwright-core, which drives the Debian chromium above), pinned by package-lock.json.
if command -v npm >/dev/null; then
  npm install --prefix tests/js --no-audit --no-fund --loglevel=error >/dev/null
  # llama.cpp, the peer of the GGUF export's parity tests (tests/test_gguf.cpp): node-llama-cpp's prebuilt CPU
  # binaries only (--ignore-scripts: no fallback source build; --omit=optional: no CUDA/Vulkan variants).
  npm install --prefix tools/llama-cpp --ignore-scripts --omit=optional --no-audit --no-fund --loglevel=error >/dev/null
else
  echo "setup.sh: npm not found; the BpeTokenizerTest parity tests need it (apt-get install nodejs npm)" >&2
fi

# libtorch must run on the pthread OpenBLAS (the reference BLAS is ~10x slower).
if command -v update-alternatives >/dev/null; then
  for alt in libblas.so.3-x86_64-linux-gnu liblapack.so.3-x86_64-linux-gnu; do
    path=$(update-alternatives --list "$alt" 2>/dev/null | grep openblas-pthread | head -n1 || true)
    if [ -n "$path" ]; then $SUDO update-alternatives --set "$alt" "$path" >/dev/null; fi
  done
fi

cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build -j "$(nproc)"
