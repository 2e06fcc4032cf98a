#!/usr/bin/env node
// llama.cpp as a peer: loads one GGUF file and answers a JSON request on stdin with one JSON line on stdout.
//   {"threads": 1, "n_new": 24, "prompts": [[ids], ...], "tokenize": ["text", ...], "f32_kv": true}
// → {"build", "generated": [[ids], ...], "decode_tok_s": [..], "tokenized": [[ids], ...]}
// Greedy (temperature 0 is llama_sampler_init_greedy: argmax, no penalties); every prompt runs in a fresh
// sequence state; exactly n_new tokens (an end-of-generation token does not stop it). decode_tok_s counts the
// batch-1 steps after the first token (which comes out of the prompt's batch).
// Usage: node tools/llama-cpp/run.mjs MODEL.gguf < request.json
import {getLlama, LlamaLogLevel} from "node-llama-cpp";
import fs from "node:fs";

const modelPath = process.argv[2];
if (!modelPath) {
  console.error("usage: node tools/llama-cpp/run.mjs MODEL.gguf < request.json");
  process.exit(2);
}
const req = JSON.parse(fs.readFileSync(0, "utf8"));
const nNew = req.n_new ?? 16;
const llama = await getLlama({gpu: false, build: "never", logLevel: LlamaLogLevel.error});
const model = await llama.loadModel({modelPath, gpuLayers: 0});
const longest = Math.max(1, ...(req.prompts ?? []).map((p) => p.length));
const context = await model.createContext({
  contextSize: Math.max(256, longest + nNew + 1),
  batchSize: Math.max(512, longest),
  sequences: 1,
  threads: req.threads ?? 1,
  ...(req.f32_kv ? {experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32"} : {}),
});
const seq = context.getSequence();
const generated = [], speed = [];
for (const prompt of req.prompts ?? []) {
  await seq.clearHistory();
  const out = [];
  let t1 = performance.now();
  for await (const tok of seq.evaluate(prompt, {temperature: 0, yieldEogToken: true})) {
    out.push(tok);
    if (out.length === 1) t1 = performance.now();
    if (out.length >= nNew) break;
  }
  const t2 = performance.now();
  generated.push(out);
  speed.push(out.length > 1 ? (out.length - 1) / ((t2 - t1) / 1000) : null);
}
const tokenized = (req.tokenize ?? []).map((t) => Array.from(model.tokenize(t, true)));
console.log(JSON.stringify({build: llama.buildType, generated, decode_tok_s: speed, tokenized}));
await context.dispose();
await model.dispose();
await llama.dispose();
