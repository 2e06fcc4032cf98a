#!/bin/bash
# Builds llama.cpp's llama-server (CPU) from the llama.cpp source that node-llama-cpp ships as a git bundle
# (tools/llama-cpp, installed by scripts/setup.sh), into tools/llama-cpp/server/bin. Not part of setup: about
# 15 minutes on 2 cores; only scripts/check-llama-server.sh needs it.
set -euo pipefail
cd "$(dirname "$0")/.."
B=tools/llama-cpp/node_modules/node-llama-cpp/llama/gitRelease.bundle
[ -f "$B" ] || { echo "no llama.cpp bundle at $B: run scripts/setup.sh" >&2; exit 2; }
SRC=${SRC:-/tmp/handoff-llama.cpp}
[ -d "$SRC/.git" ] || git clone -q "$B" "$SRC"
cmake -S "$SRC" -B "$SRC/build" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLLAMA_CURL=OFF -DLLAMA_OPENSSL=OFF \
  -DGGML_NATIVE=ON -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
  -DLLAMA_BUILD_SERVER=ON >/dev/null
cmake --build "$SRC/build" -j "$(nproc)" --target llama-server
mkdir -p tools/llama-cpp/server/bin
cp "$SRC/build/bin/llama-server" tools/llama-cpp/server/bin/
echo "tools/llama-cpp/server/bin/llama-server"
