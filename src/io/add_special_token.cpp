#include "io/add_special_token.h"

#include <filesystem>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/config.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace handoff {

namespace fs = std::filesystem;

namespace {

const char* kEmbed = "model.embed_tokens.weight";
const char* kLmHead = "lm_head.weight";

nlohmann::json read_json(const std::string& path) {
  if (!file_exists(path)) throw Error("missing " + path, "a checkpoint directory needs it");
  try {
    return nlohmann::json::parse(read_file(path));
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

at::ScalarType scalar_type_of(const std::string& dtype) {
  if (dtype == "F16") return at::kHalf;
  if (dtype == "BF16") return at::kBFloat16;
  return at::kFloat;  // SafetensorsFile::tensor refuses anything but F32/F16/BF16
}

// Every id the tokenizer already uses, and the id of `token` if it is already there (-1 otherwise).
struct TokenizerIds {
  int64_t max_id = -1;
  int64_t existing = -1;
};

TokenizerIds scan_tokenizer(const nlohmann::json& tok, const std::string& token, const std::string& path) {
  TokenizerIds out;
  auto see = [&](const std::string& content, int64_t id) {
    out.max_id = std::max(out.max_id, id);
    if (content == token && out.existing < 0) out.existing = id;
  };
  try {
    if (tok.contains("added_tokens")) {
      if (!tok["added_tokens"].is_array()) throw Error(path + ": \"added_tokens\" is not an array");
      for (const auto& a : tok["added_tokens"])
        see(a.at("content").get<std::string>(), a.at("id").get<int64_t>());
    }
    if (tok.contains("model") && tok["model"].is_object() && tok["model"].contains("vocab")) {
      const auto& vocab = tok["model"]["vocab"];
      if (vocab.is_object()) {  // BPE, WordPiece, WordLevel: {piece: id}
        for (auto it = vocab.begin(); it != vocab.end(); ++it) see(it.key(), it.value().get<int64_t>());
      } else if (vocab.is_array()) {  // Unigram: [[piece, score], ...], id = position
        for (size_t i = 0; i < vocab.size(); ++i)
          see(vocab[i].at(0).get<std::string>(), static_cast<int64_t>(i));
      }
    }
  } catch (const nlohmann::json::exception& e) {
    throw Error(path + ": unexpected tokenizer layout: " + e.what());
  }
  return out;
}

// HF's resize_token_embeddings practice: a new row is the mean of the existing rows (Hewitt 2021,
// "Initializing New Word Embeddings for Pretrained Language Models"; transformers' mean_resizing samples
// around this mean). Under the old model the new token's logit is then the average logit, neither dominating
// the softmax nor unreachable, and every old token's logits are unchanged because no old row moves.
at::Tensor with_mean_row(const at::Tensor& rows) {
  auto mean = rows.to(at::kDouble).mean(0, /*keepdim=*/true).to(rows.scalar_type());
  return at::cat({rows, mean}, 0);
}

void check_directories(const std::string& in_dir, const std::string& out_dir, const std::string& token) {
  if (token.empty()) throw Error("add-token: the token text is empty");
  if (!fs::is_directory(in_dir)) throw Error("checkpoint directory " + in_dir + " does not exist");
  if (out_dir.empty()) throw Error("add-token: no output directory given");
  if (fs::exists(out_dir)) {
    std::error_code ec;
    if (fs::equivalent(in_dir, out_dir, ec))
      throw Error("add-token: the output directory is the input " + in_dir, "write to a new directory");
    throw Error("output directory " + out_dir + " already exists",
                "choose a new directory or remove it first");
  }
}

// The input's tokenizer: tokenizer.json (kept to be edited), or for a SentencePiece checkpoint without one,
// the ids of tokenizer.model.
struct SourceTokenizer {
  bool sentencepiece_only = false;
  nlohmann::json tok;  // tokenizer.json; null when sentencepiece_only
  TokenizerIds ids;
  std::string ids_source;  // the file the ids come from
};

// Error when `token` is already there.
SourceTokenizer read_source_tokenizer(const std::string& in_dir, const std::string& token) {
  const std::string tok_path = in_dir + "/tokenizer.json";
  SourceTokenizer src;
  // A SentencePiece checkpoint without tokenizer.json keeps its added tokens in tokenizer_config.json alone
  // (as transformers' LlamaTokenizer saves them); its ids come from tokenizer.model.
  src.sentencepiece_only = !file_exists(tok_path) && file_exists(in_dir + "/tokenizer.model");
  src.ids_source = tok_path;
  if (src.sentencepiece_only) {
    const auto sp = SentencePieceTokenizer::load(in_dir);
    src.ids_source = in_dir + "/tokenizer.model";
    src.ids.max_id = sp->vocab_size() - 1;
    src.ids.existing = sp->token_to_id(token);
  } else {
    src.tok = read_json(tok_path);
    if (!src.tok.is_object()) throw Error(tok_path + ": not a JSON object");
    src.ids = scan_tokenizer(src.tok, token, tok_path);
  }
  if (src.ids.existing >= 0)
    throw Error(
        src.ids_source + " already has the token " + token + " (id " + std::to_string(src.ids.existing) + ")",
        "nothing to add; use this checkpoint as it is");
  return src;
}

using NamedTensors = std::vector<std::pair<std::string, at::Tensor>>;

// Every tensor of every shard, kept in its own dtype.
NamedTensors read_weights(const std::string& in_dir) {
  NamedTensors tensors;
  for (const auto& f : open_weight_files(in_dir)) {
    for (const auto& [name, entry] : f->entries())
      tensors.emplace_back(name, f->tensor(name).to(scalar_type_of(entry.dtype)));
  }
  return tensors;
}

// The embedding (and an untied LM head) gain the new row, after checking that config.json, the tokenizer and
// the weights agree. Returns the token's id and sizes.
AddedToken grow_vocabulary(NamedTensors& tensors, const ModelConfig& cfg, const SourceTokenizer& src,
                           const std::string& in_dir, const std::string& token) {
  auto find = [&](const std::string& name) -> at::Tensor* {
    for (auto& [n, t] : tensors)
      if (n == name) return &t;
    return nullptr;
  };
  at::Tensor* embed = find(kEmbed);
  if (!embed) throw Error("checkpoint " + in_dir + ": tensor " + kEmbed + " missing");
  const int64_t rows = embed->size(0);
  if (rows != cfg.vocab_size)
    throw Error(in_dir + ": tensor " + std::string(kEmbed) + " has " + std::to_string(rows) +
                    " rows but config.json has vocab_size " + std::to_string(cfg.vocab_size),
                "config.json and the weights do not belong together");
  if (src.ids.max_id >= rows)
    throw Error(src.ids_source + " uses token id " + std::to_string(src.ids.max_id) +
                    " but the embedding has only " + std::to_string(rows) + " rows",
                "the tokenizer and the weights do not belong together");
  at::Tensor* head = find(kLmHead);
  if (!cfg.tie_word_embeddings && !head)
    throw Error("checkpoint " + in_dir + ": tensor " + kLmHead +
                " missing (config.json says untied embeddings)");
  if (head && head->size(0) != rows)
    throw Error(in_dir + ": tensor " + std::string(kLmHead) + " has " + std::to_string(head->size(0)) +
                " rows but " + kEmbed + " has " + std::to_string(rows));
  *embed = with_mean_row(*embed);
  if (head) *head = with_mean_row(*head);
  return AddedToken{token, rows, rows, rows + 1, head != nullptr};
}

// Files we do not rewrite (generation_config.json, special_tokens_map.json, a model card, …) are copied.
void copy_other_files(const std::string& in_dir, const std::string& tmp) {
  const std::set<std::string> rewritten = {"config.json", "tokenizer.json", "tokenizer_config.json",
                                           "model.safetensors", "model.safetensors.index.json"};
  for (const auto& e : fs::directory_iterator(in_dir)) {
    const std::string name = e.path().filename().string();
    if (!e.is_regular_file() || rewritten.count(name) ||
        (name.size() > 12 && name.compare(name.size() - 12, 12, ".safetensors") == 0))
      continue;
    fs::copy_file(e.path(), fs::path(tmp) / name);
  }
}

// tokenizer_config.json with the token in "added_tokens_decoder" (created for a SentencePiece checkpoint).
void write_tokenizer_config(const std::string& in_dir, const std::string& tmp, bool sentencepiece_only,
                            const nlohmann::json& entry, int64_t id) {
  const std::string tc_path = in_dir + "/tokenizer_config.json";
  if (!file_exists(tc_path) && !sentencepiece_only) return;
  nlohmann::json tc = file_exists(tc_path) ? read_json(tc_path) : nlohmann::json::object();
  if (!tc.is_object()) throw Error(tc_path + ": not a JSON object");
  if (sentencepiece_only && !tc.contains("added_tokens_decoder"))
    tc["added_tokens_decoder"] = nlohmann::json::object();
  if (tc.contains("added_tokens_decoder") && tc["added_tokens_decoder"].is_object()) {
    nlohmann::json decoder_entry = entry;
    decoder_entry.erase("id");
    tc["added_tokens_decoder"][std::to_string(id)] = decoder_entry;
  }
  write_file_atomic(tmp + "/tokenizer_config.json", tc.dump(2) + "\n");
}

}  // namespace

AddedToken add_special_token(const std::string& in_dir, const std::string& out_dir,
                             const std::string& token) {
  check_directories(in_dir, out_dir, token);
  // Config and tokenizer first: the cheap checks fail before any weight is read.
  const std::string cfg_path = in_dir + "/config.json";
  nlohmann::json cfg_json = read_json(cfg_path);
  const ModelConfig cfg = ModelConfig::from_json(cfg_json, cfg_path);
  SourceTokenizer src = read_source_tokenizer(in_dir, token);

  NamedTensors tensors = read_weights(in_dir);
  const std::map<std::string, std::string> metadata = {{"format", "pt"}};
  const AddedToken out = grow_vocabulary(tensors, cfg, src, in_dir, token);
  cfg_json["vocab_size"] = out.new_vocab_size;
  const nlohmann::json entry = {{"id", out.id},    {"content", token}, {"single_word", false},
                                {"lstrip", false}, {"rstrip", false},  {"normalized", false},
                                {"special", true}};
  if (!src.sentencepiece_only) {
    if (!src.tok.contains("added_tokens")) src.tok["added_tokens"] = nlohmann::json::array();
    src.tok["added_tokens"].push_back(entry);
  }

  const std::string tmp = out_dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  try {
    copy_other_files(in_dir, tmp);
    write_tokenizer_config(in_dir, tmp, src.sentencepiece_only, entry, out.id);
    write_safetensors(tmp + "/model.safetensors", tensors, metadata);
    if (!src.sentencepiece_only) write_file_atomic(tmp + "/tokenizer.json", src.tok.dump(2) + "\n");
    write_file_atomic(tmp + "/config.json", cfg_json.dump(2) + "\n");
    publish_directory(tmp, out_dir);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error("cannot write " + out_dir + ": " + e.what());
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
  return out;
}

}  // namespace handoff
