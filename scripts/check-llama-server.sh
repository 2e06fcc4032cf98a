#!/bin/bash
# The device behind a real llama.cpp server (issue 20, `--device-url`): the reference hops device exported by
# `handoff export-gguf` (f32) and served by llama-server, in front of it handoff's collaborative evaluation with
# the reference chain cloud. Compares with the same device loaded in-process, on the same held-out items:
#  1. collaborative accuracy, call rate and device tokens (`eval --device-url` vs `eval --model`);
#  2. the hand-off token's id from llama-server's /tokenize vs handoff's tokenizer;
#  3. --fallback with a cloud that answers 500: every hand-off answered by the device server again with the
#     token banned (logit_bias), vs the in-process device decoded again with it banned.
#  4. whether llama-server stops at <handoff> by itself (a raw streamed request that asks past it).
# Usage: scripts/check-llama-server.sh [LLAMA_SERVER] [N]
#   LLAMA_SERVER: a llama-server binary (default tools/llama-cpp/server/bin/llama-server, built by
#   scripts/build-llama-server.sh from the llama.cpp source node-llama-cpp ships); N items per difficulty.
set -euo pipefail
cd "$(dirname "$0")/.."
LS=${1:-tools/llama-cpp/server/bin/llama-server}
N=${2:-20}
OUT=${OUT:-runs/llama-server-check}
[ -x "$LS" ] || { echo "no llama-server at $LS: run scripts/build-llama-server.sh" >&2; exit 2; }
mkdir -p "$OUT"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done' EXIT
wait_for() { for _ in $(seq 300); do curl -sf "$1" >/dev/null 2>&1 && return 0; sleep 0.2; done; echo "timed out: $1" >&2; exit 1; }

build/handoff export-gguf --model models/device-hops --out "$OUT/device-hops-f32.gguf" --type f32 >/dev/null
P_DEV=$(free_port)
"$LS" -m "$OUT/device-hops-f32.gguf" --host 127.0.0.1 --port "$P_DEV" -t 1 -c 1024 -np 1 --jinja \
  >"$OUT/llama-server.log" 2>&1 &
pids+=($!)
P_CLOUD=$(free_port)
build/handoff serve --model models/cloud-chain --port "$P_CLOUD" --threads 1 >"$OUT/cloud.log" 2>&1 &
pids+=($!)
# A cloud that is up and lists its model but fails every chat request: the fallback's trigger.
P_BAD=$(free_port)
python3 - "$P_BAD" >"$OUT/bad-cloud.log" 2>&1 <<'PY' &
import http.server, json, sys
class H(http.server.BaseHTTPRequestHandler):
    def _send(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code); self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)
    def do_GET(self): self._send(200, {"object": "list", "data": [{"id": "down", "object": "model"}]})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._send(500, {"error": {"message": "the cloud is down (scripted)", "type": "server_error"}})
    def log_message(self, *a): pass
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
pids+=($!)
wait_for "http://127.0.0.1:$P_DEV/health"
wait_for "http://127.0.0.1:$P_CLOUD/health"
wait_for "http://127.0.0.1:$P_BAD/v1/models"

DEV="--device-url http://127.0.0.1:$P_DEV/v1"
COMMON="--task chain --n $N --threads 1"
build/handoff eval $DEV --cloud "http://127.0.0.1:$P_CLOUD/v1" $COMMON --json "$OUT/url.json" >"$OUT/url.txt"
build/handoff eval --model models/device-hops --cloud "http://127.0.0.1:$P_CLOUD/v1" $COMMON \
  --sample-temperature 0 --json "$OUT/model.json" >"$OUT/model.txt"
build/handoff eval $DEV --cloud "http://127.0.0.1:$P_BAD/v1" --cloud-retries 0 --fallback $COMMON \
  --json "$OUT/url-fallback.json" >"$OUT/url-fallback.txt"
build/handoff eval --model models/device-hops --cloud "http://127.0.0.1:$P_BAD/v1" --cloud-retries 0 --fallback \
  $COMMON --sample-temperature 0 --json "$OUT/model-fallback.json" >"$OUT/model-fallback.txt"
curl -s "http://127.0.0.1:$P_DEV/tokenize" -d '{"content": "<handoff>", "parse_special": true}' >"$OUT/tokenize.json"
# handoff's own id for the token, from the same device served by handoff (the same /tokenize).
P_OURS=$(free_port)
build/handoff serve --model models/device-hops --port "$P_OURS" --threads 1 >"$OUT/ours.log" 2>&1 &
pids+=($!)
wait_for "http://127.0.0.1:$P_OURS/health"
curl -s "http://127.0.0.1:$P_OURS/tokenize" -d '{"content": "<handoff>"}' >"$OUT/tokenize-handoff.json"
# A raw streamed request for up to 40 tokens to long chain questions (the hops device hands off on some), to see
# whether llama-server stops at <handoff> by itself.
: >"$OUT/raw-stream.txt"
for q in "Q:57 +8 -3 +9 -6 +7 -4 +5?" "Q:93 -7 +6 -8 +9 -5 +4 -9?" "Q:18 +9 +8 -7 +6 +5 -9?"; do
  curl -sN "http://127.0.0.1:$P_DEV/v1/chat/completions" -H 'Content-Type: application/json' \
    -d '{"model": "m", "stream": true, "max_tokens": 40, "temperature": 0, "messages": [{"role": "user", "content": "'"$q"'"}]}' \
    >>"$OUT/raw-stream.txt" || true
  echo "data: [NEXT]" >>"$OUT/raw-stream.txt"
done

python3 - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
J = lambda f: json.load(open(f"{out}/{f}"))
url, model, urlf, modelf = J("url.json"), J("model.json"), J("url-fallback.json"), J("model-fallback.json")
row = lambda j: j["collaborative"][-1]
print("| device | cloud | n | accuracy | call rate | fallbacks | device tokens/query |\n|---|---|---|---|---|---|---|")
for name, cloud, j in [("llama-server (GGUF f32)", "chain cloud", url), ("in-process (libtorch)", "chain cloud", model),
                       ("llama-server (GGUF f32)", "down (500)", urlf), ("in-process (libtorch)", "down (500)", modelf)]:
    r = row(j)
    print(f"| {name} | {cloud} | {r['n']} | {r['accuracy']:.3f} | {r['call_rate']:.3f} | {r['fallback_rate']:.3f} | {r['device_tokens']:.1f} |")
print("\n/tokenize of <handoff>: llama-server", open(f"{out}/tokenize.json").read().strip(),
      "| handoff serve", open(f"{out}/tokenize-handoff.json").read().strip())
texts, text = [], ""
for line in open(f"{out}/raw-stream.txt"):
    if line.strip() == "data: [NEXT]":
        texts.append(text); text = ""
    elif line.startswith("data: {"):
        c = json.loads(line[6:]).get("choices") or []
        if c and (c[0].get("delta") or {}).get("content"): text += c[0]["delta"]["content"]
for t in texts:
    print("llama-server's own streamed reply (max 40 tokens):", json.dumps(t))
PY
