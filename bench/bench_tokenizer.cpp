// Byte-level BPE encoding throughput: ~1 MB of mixed text (English, numbers, code, accents, CJK, emoji,
// whitespace runs) through BpeTokenizer, with the per-piece cache cold (fresh tokenizer) and warm (same text
// again), plus decode. Without an argument the tokenizer is synthetic: the 256 byte symbols plus merges
// learned on a sample of the text, Qwen2-style (NFC, Split regex). With a checkpoint directory, its
// tokenizer.json. Usage: bench_tokenizer [merges | checkpoint dir]   (default 4000 merges)
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/utf8.h"

using namespace handoff;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

// ~`bytes` of text: words drawn with a Zipf-like skew from a mixed list, so frequent words repeat (as in real
// text) and the cache matters.
std::string make_text(size_t bytes) {
  const std::vector<std::string> words = {" the",
                                          " of",
                                          " and",
                                          " to",
                                          " a",
                                          " in",
                                          " is",
                                          " that",
                                          " for",
                                          " it",
                                          " with",
                                          " as",
                                          " was",
                                          " on",
                                          " model",
                                          " token",
                                          " answer",
                                          " question",
                                          " reasoning",
                                          " cloud",
                                          " device",
                                          " hand",
                                          "-off",
                                          " budget",
                                          " don't",
                                          " it's",
                                          " we'll",
                                          " 12345678",
                                          " 2024",
                                          " 3.14159",
                                          " 42",
                                          ",",
                                          ".",
                                          "!",
                                          "?",
                                          ":",
                                          ";",
                                          "\n",
                                          "\n\n",
                                          "    ",
                                          "\t",
                                          "  \n",
                                          " café",
                                          " élégant",
                                          " naïve",
                                          " straße",
                                          " 東京",
                                          "日本語",
                                          "中文",
                                          "。",
                                          " 🙂",
                                          " 🚀",
                                          " Привет",
                                          " мир",
                                          " Ελληνικά",
                                          " مرحبا",
                                          " x = f(y) + 1;",
                                          " { return a[i]; }",
                                          " <b>",
                                          " https://example.com/a?b=c",
                                          " zzyzx",
                                          " quick",
                                          " brown",
                                          " fox",
                                          " jumps",
                                          " over",
                                          " lazy",
                                          " dog"};
  uint64_t state = 42;
  std::string text;
  text.reserve(bytes + 64);
  while (text.size() < bytes) {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    const double u = static_cast<double>(state >> 11) / static_cast<double>(1ULL << 53);
    text += words[static_cast<size_t>(u * u * u * words.size())];  // cubic skew toward the first words
  }
  return text;
}

std::vector<std::string> byte_symbols() {
  std::vector<std::string> sym(256);
  int shifted = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    utf8::append(sym[b], keep ? b : 256 + shifted++);
  }
  return sym;
}

// A Qwen2-style tokenizer.json with `n_merges` merges learned (most frequent pair first) on `sample`.
std::string synthetic_tokenizer(const std::string& sample, int n_merges) {
  const auto sym = byte_symbols();
  std::vector<std::string> tokens(sym.begin(), sym.end());
  std::vector<std::vector<int>> words;
  for (size_t i = 0; i < sample.size();) {
    size_t j = i + 1;
    while (j < sample.size() && sample[j] != ' ' && sample[j] != '\n') ++j;
    std::vector<int> w;
    for (size_t k = i; k < j; ++k) w.push_back(static_cast<unsigned char>(sample[k]));
    words.push_back(w);
    i = j;
  }
  nlohmann::json merges = nlohmann::json::array();
  std::unordered_map<std::string, int> id_of;
  for (int b = 0; b < 256; ++b) id_of[sym[b]] = b;
  for (int m = 0; m < n_merges; ++m) {
    std::unordered_map<uint64_t, int> counts;
    for (const auto& w : words)
      for (size_t k = 0; k + 1 < w.size(); ++k) ++counts[(static_cast<uint64_t>(w[k]) << 32) | w[k + 1]];
    uint64_t best = 0;
    int best_count = 0;
    for (const auto& [pair, c] : counts)
      if (c > best_count || (c == best_count && pair < best)) best = pair, best_count = c;
    if (best_count == 0) break;
    const int a = static_cast<int>(best >> 32), b = static_cast<int>(best & 0xFFFFFFFF);
    const std::string merged = tokens[a] + tokens[b];
    auto it = id_of.find(merged);
    const int id = it != id_of.end() ? it->second : static_cast<int>(tokens.size());
    if (it == id_of.end()) {
      tokens.push_back(merged);
      id_of[merged] = id;
    }
    merges.push_back(tokens[a] + " " + tokens[b]);
    for (auto& w : words) {
      std::vector<int> out;
      for (size_t k = 0; k < w.size(); ++k) {
        if (k + 1 < w.size() && w[k] == a && w[k + 1] == b) {
          out.push_back(id);
          ++k;
        } else {
          out.push_back(w[k]);
        }
      }
      w.swap(out);
    }
  }
  nlohmann::json vocab = nlohmann::json::object();
  for (size_t i = 0; i < tokens.size(); ++i) vocab[tokens[i]] = i;
  const std::string regex =
      R"((?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
  nlohmann::json j = {
      {"added_tokens", {{{"id", tokens.size()}, {"content", "<|im_end|>"}, {"special", true}}}},
      {"normalizer", {{"type", "NFC"}}},
      {"pre_tokenizer",
       {{"type", "Sequence"},
        {"pretokenizers",
         {{{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}},
          {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"use_regex", false}}}}}},
      {"decoder", {{"type", "ByteLevel"}}},
      {"model", {{"type", "BPE"}, {"vocab", vocab}, {"merges", merges}}}};
  return j.dump();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const std::string arg = argc > 1 ? argv[1] : "4000";
    const bool is_count = arg.find_first_not_of("0123456789") == std::string::npos;
    const std::string text = make_text(1 << 20);

    std::unique_ptr<Tokenizer> tok;
    std::string what;
    const auto t_build = Clock::now();
    if (is_count) {
      const int n = std::atoi(arg.c_str());
      tok = BpeTokenizer::from_json(synthetic_tokenizer(text.substr(0, 64 << 10), n), "synthetic");
      what = "synthetic Qwen2-style, vocab " + std::to_string(tok->vocab_size());
    } else {
      tok = load_tokenizer(arg);
      what = arg + ", vocab " + std::to_string(tok->vocab_size());
    }
    const double build_s = seconds_since(t_build);

    auto t0 = Clock::now();
    const auto ids = tok->encode(text);
    const double cold_s = seconds_since(t0);
    t0 = Clock::now();
    const auto ids2 = tok->encode(text);
    const double warm_s = seconds_since(t0);
    t0 = Clock::now();
    const std::string back = tok->decode(ids);
    const double decode_s = seconds_since(t0);

    const double mb = text.size() / 1e6;
    std::printf("tokenizer: %s (built/loaded in %.2f s)\n", what.c_str(), build_s);
    std::printf("text: %.2f MB, %zu tokens (%.2f bytes/token), round trip %s\n", mb, ids.size(),
                static_cast<double>(text.size()) / ids.size(),
                back == text && ids == ids2 ? "exact" : "DIFFERS");
    std::printf("%-32s %12s %10s\n", "measure", "tokens/s", "MB/s");
    std::printf("%-32s %12.0f %10.2f\n", "encode, cold cache", ids.size() / cold_s, mb / cold_s);
    std::printf("%-32s %12.0f %10.2f\n", "encode, warm cache", ids.size() / warm_s, mb / warm_s);
    std::printf("%-32s %12.0f %10.2f\n", "decode", ids.size() / decode_s, mb / decode_s);
    return back == text ? 0 : 1;
  } catch (const Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
