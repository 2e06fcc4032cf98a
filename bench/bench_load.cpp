// Loading and decoding a real-sized model: a random checkpoint with Qwen2.5-0.5B's shapes (hidden 896, 24
// layers, 14 heads / 2 KV heads, MLP 4864, vocab 151936, tied embeddings) in bf16 on disk. Measures load time
// and resident memory against the file size, and batch-1 decode tokens/s with the KV cache against the
// memory-bandwidth bound (weight bytes read per token ÷ memcpy bandwidth measured in the same run). Usage:
// bench_load [threads] [checkpoint dir]   (the checkpoint is written once and reused)
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "common/atomic_file.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "runtime/runtime.h"
#include "tokenizer/char_tokenizer.h"

using namespace handoff;
namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

ModelConfig qwen25_05b() {
  ModelConfig c;
  c.model_type = "qwen2";
  c.vocab_size = 151936;
  c.hidden_size = 896;
  c.intermediate_size = 4864;
  c.num_hidden_layers = 24;
  c.num_attention_heads = 14;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 32768;
  c.rope_theta = 1e6;
  c.rms_norm_eps = 1e-6;
  c.tie_word_embeddings = true;
  c.bos_token_id = 1;
  c.eos_token_id = 2;
  c.pad_token_id = 0;
  return c;
}

// "VmRSS" / "VmHWM" of this process in MiB.
double proc_status_mib(const char* key) {
  std::ifstream in("/proc/self/status");
  std::string line;
  const std::string prefix = std::string(key) + ":";
  while (std::getline(in, line))
    if (line.rfind(prefix, 0) == 0) return std::atof(line.c_str() + prefix.size()) / 1024.0;
  return -1;
}

// Written in a child process, so that its allocations never show in the parent's resident memory.
void write_checkpoint_in_child(const std::string& dir) {
  std::printf("writing a random Qwen2.5-0.5B-shaped bf16 checkpoint to %s ...\n", dir.c_str());
  std::fflush(stdout);
  const pid_t pid = ::fork();
  if (pid == 0) {
    try {
      torch::manual_seed(0);
      CausalLM m(qwen25_05b());
      std::vector<std::pair<std::string, at::Tensor>> tensors;
      for (auto& p : m->named_parameters()) {
        tensors.emplace_back(p.key(), p.value().to(at::kBFloat16));
        p.value().set_data(torch::empty({0}));  // free the fp32 copy as we go
      }
      const std::string tmp = dir + ".tmp";
      fs::remove_all(tmp);
      make_dirs(tmp);
      auto cfg = m->config.to_json();
      cfg["torch_dtype"] = "bfloat16";
      write_file_atomic(tmp + "/config.json", cfg.dump(2) + "\n");
      write_file_atomic(tmp + "/tokenizer.json", CharTokenizer().to_json() + "\n");
      write_safetensors(tmp + "/model.safetensors", tensors, {{"format", "pt"}});
      publish_directory(tmp, dir);
    } catch (const std::exception& e) {
      std::fprintf(stderr, "error: %s\n", e.what());
      ::_exit(1);
    }
    ::_exit(0);
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "writing the checkpoint failed\n");
    std::exit(1);
  }
}

// Copy bandwidth of `threads` threads each memcpy-ing its slice of a 1 GiB buffer; best of 5. Returned as
// bytes moved per second counting the read and the write (2 × size / time), the figure comparable to a stream
// of reads.
double memcpy_bandwidth(int threads) {
  const size_t size = size_t{1} << 30;
  std::vector<char> src(size, 1), dst(size, 0);
  double best = 1e30;
  for (int rep = 0; rep < 5; ++rep) {
    auto t0 = Clock::now();
    std::vector<std::thread> pool;
    const size_t slice = size / threads;
    for (int t = 0; t < threads; ++t)
      pool.emplace_back([&, t] { std::memcpy(dst.data() + t * slice, src.data() + t * slice, slice); });
    for (auto& th : pool) th.join();
    best = std::min(best, seconds_since(t0));
  }
  if (dst[size / 2] != 1) std::printf("(memcpy check failed)\n");
  return 2.0 * static_cast<double>(size) / best;
}

}  // namespace

int main(int argc, char** argv) {
  const int threads = argc > 1 ? std::atoi(argv[1]) : 1;
  const std::string dir = argc > 2 ? argv[2] : "/tmp/handoff_bench_qwen25_05b";
  if (!file_exists(dir + "/model.safetensors")) write_checkpoint_in_child(dir);
  configure_threads(threads);
  const double file_mb = static_cast<double>(fs::file_size(dir + "/model.safetensors")) / (1 << 20);

  // Load: what `handoff eval/serve --model` does. The file was just written or read, so the page cache is
  // warm.
  const double rss_before = proc_status_mib("VmRSS");
  auto t0 = Clock::now();
  LoadedModel loaded = load_checkpoint(dir);
  const double load_s = seconds_since(t0);
  const double rss_after = proc_status_mib("VmRSS"), hwm = proc_status_mib("VmHWM");
  CausalLM& m = loaded.model;
  const ModelConfig& c = m->config;
  const int64_t params = c.num_parameters();

  // Where the load time goes, measured on second and third models kept alive alongside the first, so each one
  // gets fresh memory as the first did: building the module as load_checkpoint does (allocation and first
  // touch, no random init), load_weights into it, and for comparison building a model with the random init.
  double construct_s = 0, weights_s = 0, construct_init_s = 0;
  {
    t0 = Clock::now();
    CausalLM second(c, /*random_init=*/false);
    construct_s = seconds_since(t0);
    t0 = Clock::now();
    load_weights(second, dir);
    weights_s = seconds_since(t0);
    t0 = Clock::now();
    CausalLM third(c);
    construct_init_s = seconds_since(t0);
  }

  // Bytes read from memory per decoded token: every weight once (fp32 in memory); with tied embeddings the
  // embedding matrix is read as the LM head, while the input lookup reads one row only.
  const double weight_bytes = static_cast<double>(params) * 4.0;
  const double bandwidth = memcpy_bandwidth(threads);
  const double bound_tok_s = bandwidth / weight_bytes;

  // Decode: batch 1, an 8-token prompt, then 32 greedy tokens one at a time with the KV cache.
  c10::InferenceMode im;
  const int prompt_len = 8, new_tokens = 32, warmup = 3;
  auto decode_seconds = [&](CausalLM& m) {
    auto cache = m->make_cache(1, prompt_len + new_tokens + warmup);
    auto prompt = at::arange(4, 4 + prompt_len, at::kLong).unsqueeze(0);
    auto logits = m->forward(prompt, at::arange(prompt_len, at::kLong).unsqueeze(0), {}, &cache);
    auto next = logits.select(1, -1).argmax(-1, /*keepdim=*/true);
    int64_t pos = prompt_len;
    auto step = [&] {
      auto l = m->forward(next, torch::full({1, 1}, pos++, at::kLong), {}, &cache);
      next = l.select(1, -1).argmax(-1, /*keepdim=*/true);
    };
    for (int i = 0; i < warmup; ++i) step();
    const auto start = Clock::now();
    for (int i = 0; i < new_tokens; ++i) step();
    return seconds_since(start);
  };
  const double decode_s = decode_seconds(m);
  const double tok_s = new_tokens / decode_s;
  // The same with `--weights bf16` (every linear weight and the LM head at 2 bytes; the embedding lookup
  // reads one fp32 row).
  m->store_weights_bf16();
  const double bf16_tok_s = new_tokens / decode_seconds(m);
  const double bf16_bound_tok_s = bandwidth / (static_cast<double>(params) * 2.0);
  // And `--weights int8` (1 byte a weight plus a 4-byte scale a row), on a fresh load of the same file.
  LoadedModel again = load_checkpoint(dir);
  again.model->eval();
  again.model->store_weights_int8();
  const double int8_tok_s = new_tokens / decode_seconds(again.model);
  const double int8_bound_tok_s = bandwidth / static_cast<double>(params);

  std::printf("\nQwen2.5-0.5B shapes, random weights: %.1fM parameters, %s, %d thread(s)\n", params / 1e6,
              c.tie_word_embeddings ? "tied embeddings" : "untied", threads);
  std::printf("%-44s %12s\n", "measure", "value");
  std::printf("%-44s %9.1f MiB\n", "model.safetensors (bf16)", file_mb);
  std::printf("%-44s %10.2f s\n", "load_checkpoint (warm page cache)", load_s);
  std::printf("%-44s %10.2f s\n", "  again: module construction (no init)", construct_s);
  std::printf("%-44s %10.2f s\n", "  again: load_weights (bf16 -> fp32 copy)", weights_s);
  std::printf("%-44s %10.2f s\n", "  (module construction with random init)", construct_init_s);
  std::printf("%-44s %8.0f MiB/s\n", "  load rate (file bytes / load time)", file_mb / load_s);
  std::printf("%-44s %9.1f MiB\n", "VmRSS before load", rss_before);
  std::printf("%-44s %9.1f MiB\n", "VmRSS after load", rss_after);
  std::printf("%-44s %9.1f MiB  (%.2fx file; fp32 = 2x bf16)\n", "  resident growth", rss_after - rss_before,
              (rss_after - rss_before) / file_mb);
  std::printf("%-44s %9.1f MiB\n", "VmHWM (peak) after load", hwm);
  std::printf("%-44s %9.1f GB/s\n", "memcpy bandwidth (read+write)", bandwidth / 1e9);
  std::printf("%-44s %9.1f MB\n", "weight bytes per token (fp32)", weight_bytes / 1e6);
  std::printf("%-44s %8.2f tok/s\n", "decode bound (bandwidth / bytes per token)", bound_tok_s);
  std::printf("%-44s %8.2f tok/s  (%.0f%% of bound, %.1f ms/token)\n", "decode, batch 1, KV cache, 32 tokens",
              tok_s, 100.0 * tok_s / bound_tok_s, 1000.0 * decode_s / new_tokens);
  std::printf("%-44s %8.2f tok/s\n", "decode bound, bf16 weights", bf16_bound_tok_s);
  std::printf("%-44s %8.2f tok/s  (%.0f%% of bound)\n", "decode, batch 1, bf16 weights, 32 tokens",
              bf16_tok_s, 100.0 * bf16_tok_s / bf16_bound_tok_s);
  std::printf("%-44s %8.2f tok/s\n", "decode bound, int8 weights", int8_bound_tok_s);
  std::printf("%-44s %8.2f tok/s  (%.0f%% of bound)\n", "decode, batch 1, int8 weights, 32 tokens",
              int8_tok_s, 100.0 * int8_tok_s / int8_bound_tok_s);
  return 0;
}
