#include "io/checkpoint.h"

#include <fcntl.h>  // AT_FDCWD
#include <stdio.h>  // renameat2, RENAME_EXCHANGE (glibc >= 2.28)

#include <filesystem>
#include <set>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "io/safetensors.h"
#include "runtime/runtime.h"
#include "tokenizer/protocol_fit.h"

namespace handoff {

namespace fs = std::filesystem;

void save_checkpoint(const std::string& dir, CausalLM& model, const Tokenizer& tokenizer,
                     const std::vector<std::pair<std::string, std::string>>& extra_files) {
  const std::string tmp = dir + ".tmp";
  std::error_code ec;
  fs::remove_all(tmp, ec);
  make_dirs(tmp);
  write_file_atomic(tmp + "/config.json", model->config.to_json().dump(2) + "\n");
  std::vector<std::pair<std::string, at::Tensor>> tensors;
  for (const auto& p : model->named_parameters()) tensors.emplace_back(p.key(), p.value());
  write_safetensors(tmp + "/model.safetensors", tensors, {{"format", "pt"}});
  // A SentencePiece tokenizer has no tokenizer.json: its files are the ones transformers' LlamaTokenizer
  // reads.
  const std::string tokenizer_json = tokenizer.to_json();
  if (!tokenizer_json.empty()) write_file_atomic(tmp + "/tokenizer.json", tokenizer_json + "\n");
  for (const auto& [name, bytes] : tokenizer.extra_files()) write_file_atomic(tmp + "/" + name, bytes);
  for (const auto& [name, bytes] : extra_files) write_file_atomic(tmp + "/" + name, bytes);
  publish_directory(tmp, dir);
}

void publish_directory(const std::string& tmp, const std::string& dir, PublishMode mode) {
  std::error_code ec;
  if (!fs::exists(dir)) {
    fs::rename(tmp, dir);
    return;
  }
  // One atomic switch: exchange the two names (Linux renameat2), so that DIR is the previous or the new
  // checkpoint at every instant; TMP then holds the previous one and is removed.
  if (mode == PublishMode::kExchange &&
      ::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0) {
    fs::remove_all(tmp, ec);
    return;
  }
  // Filesystems without RENAME_EXCHANGE: two renames. DIR is moved aside only once TMP is complete, which is
  // what lets recover_directory finish a save killed between them.
  const std::string old = dir + ".old";
  fs::remove_all(old, ec);
  fs::rename(dir, old);
  fs::rename(tmp, dir);
  fs::remove_all(old, ec);
}

bool recover_directory(const std::string& dir) {
  const std::string tmp = dir + ".tmp", old = dir + ".old";
  std::error_code ec;
  if (fs::exists(dir)) {
    fs::remove_all(old, ec);  // killed after the second rename: DIR is already the new checkpoint
    return false;
  }
  if (!fs::exists(old)) return false;  // nothing was ever published, or nothing was interrupted
  // Killed between the renames: OLD exists only once TMP was complete, so TMP is the newer checkpoint.
  if (fs::exists(tmp)) {
    fs::rename(tmp, dir);
    fs::remove_all(old, ec);
  } else {
    fs::rename(old, dir);
  }
  return true;
}

std::vector<std::unique_ptr<SafetensorsFile>> open_weight_files(const std::string& dir) {
  std::vector<std::unique_ptr<SafetensorsFile>> files;
  const std::string single = dir + "/model.safetensors", index = dir + "/model.safetensors.index.json";
  if (file_exists(single)) {
    files.push_back(std::make_unique<SafetensorsFile>(single));
  } else if (file_exists(index)) {
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(read_file(index));
    } catch (const std::exception& e) {
      throw Error(index + ": not valid JSON: " + e.what());
    }
    if (!j.is_object() || !j.contains("weight_map") || !j["weight_map"].is_object())
      throw Error(index + ": no weight_map");
    std::set<std::string> shards;
    for (auto it = j["weight_map"].begin(); it != j["weight_map"].end(); ++it) {
      if (!it.value().is_string())
        throw Error(index + ": weight_map entry for " + it.key() + " is not a file name");
      shards.insert(it.value().get<std::string>());
    }
    for (const auto& s : shards) {
      if (!file_exists(dir + "/" + s))
        throw Error(index + " names shard " + s + ", which is missing from " + dir,
                    "download every shard listed in the index");
      files.push_back(std::make_unique<SafetensorsFile>(dir + "/" + s));
    }
  } else {
    throw Error("no model.safetensors (or model.safetensors.index.json) in " + dir,
                "is this a checkpoint directory? train one with `handoff sft`");
  }
  return files;
}

// Before anything is allocated: a config.json that describes a far bigger model than its weight files hold
// (a typo'd num_hidden_layers: 100000 would otherwise allocate ~80 GB first) is refused here. Within twice
// the files' size the model is built and load_weights names the exact tensor that does not fit, so what a bad
// config.json can make us allocate is bounded by the files on disk.
void check_size_against_weights(const ModelConfig& cfg, const std::string& cfg_path,
                                const std::vector<std::unique_ptr<SafetensorsFile>>& files) {
  int64_t stored = 0;
  for (const auto& f : files)
    for (const auto& [name, entry] : f->entries()) {
      int64_t n = 1;
      for (int64_t d : entry.shape) n *= d;
      stored += n;
    }
  const int64_t needed = cfg.num_parameters();
  if (needed > 2 * stored + (int64_t{1} << 20))
    throw Error(cfg_path + " describes a model of " + std::to_string(needed) +
                    " parameters but the weight files hold " + std::to_string(stored) + " values",
                "config.json and the weights do not belong together (check num_hidden_layers, hidden_size, "
                "intermediate_size and vocab_size)");
}

void load_weights(CausalLM& model, const std::string& dir) {
  const auto files = open_weight_files(dir);
  torch::NoGradGuard no_grad;
  std::vector<std::string> missing;
  for (auto& p : model->named_parameters()) {
    const SafetensorsFile* src = nullptr;
    for (const auto& f : files)
      if (f->has(p.key())) src = f.get();
    if (!src) {
      missing.push_back(p.key());
      continue;
    }
    const std::vector<int64_t>& shape = src->entries().at(p.key()).shape;
    const bool vocab_rows = p.key() == "model.embed_tokens.weight" || p.key() == "lm_head.weight";
    if (vocab_rows && shape.size() == 2 && p.value().dim() == 2 && shape[0] != p.value().size(0))
      throw Error(src->path() + ": tensor " + p.key() + " has " + std::to_string(shape[0]) +
                      " rows but config.json has vocab_size " + std::to_string(p.value().size(0)),
                  "config.json and the weights do not belong together; fix vocab_size or use the matching "
                  "weights");
    if (at::IntArrayRef(shape) != p.value().sizes()) {
      std::ostringstream os;
      os << src->path() << ": tensor " << p.key() << " has shape " << at::IntArrayRef(shape)
         << " but config.json implies " << p.value().sizes();
      throw Error(os.str(), "config.json and the weights do not belong together");
    }
    src->copy_into(p.key(), p.value());
    // A NaN or Inf weight would make every answer empty or wrong without a word; say which tensor it is.
    if (!torch::isfinite(p.value()).all().item<bool>())
      throw Error(src->path() + ": tensor " + p.key() + " holds NaN or Inf values",
                  "the checkpoint is corrupt (or training diverged); use an earlier checkpoint");
  }
  if (!missing.empty()) {
    std::string list;
    for (size_t i = 0; i < missing.size() && i < 8; ++i) list += (i ? ", " : "") + missing[i];
    if (missing.size() > 8) list += ", … (" + std::to_string(missing.size()) + " in all)";
    throw Error("checkpoint " + dir + ": tensors missing: " + list,
                "was it written by an older version or another architecture?");
  }
}

LoadedModel load_checkpoint(const std::string& dir, const std::string& device) {
  if (!fs::is_directory(dir)) {
    if (fs::exists(dir + ".old"))
      throw Error("checkpoint directory " + dir + " does not exist: its save was interrupted",
                  "rerun the training command with --resume, which completes the save");
    throw Error("checkpoint directory " + dir + " does not exist");
  }
  const std::string cfg_path = dir + "/config.json";
  if (!file_exists(cfg_path)) throw Error("missing " + cfg_path, "a checkpoint directory needs config.json");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(cfg_path));
  } catch (const std::exception& e) {
    throw Error(cfg_path + ": not valid JSON: " + e.what());
  }
  LoadedModel out;
  out.dir = dir;
  out.tokenizer = load_tokenizer(dir);
  auto cfg = ModelConfig::from_json(j, cfg_path);
  if (out.tokenizer->vocab_size() > cfg.vocab_size) {
    const std::string tok_file = file_exists(dir + "/tokenizer.json") ? "tokenizer.json" : "tokenizer.model";
    throw Error(dir + "/" + tok_file + " has " + std::to_string(out.tokenizer->vocab_size()) +
                    " tokens but the embedding has only " + std::to_string(cfg.vocab_size) +
                    " rows (vocab_size in " + cfg_path + ")",
                tok_file + " and the model do not belong together; to add a token, use `handoff add-token`");
  }
  check_size_against_weights(cfg, cfg_path, open_weight_files(dir));
  out.model = CausalLM(cfg, /*random_init=*/false);
  load_weights(out.model, dir);
  out.model->to(compute_device(device));
  out.model->eval();
  out.protocol = recorded_protocol(dir);
  apply_protocol(out.protocol, *out.tokenizer);
  return out;
}

void LoadedModel::use_protocol(Protocol p, bool needs_handoff) {
  check_protocol_fits(p, *tokenizer, needs_handoff);
  apply_protocol(p, *tokenizer);
  protocol = std::move(p);
}

}  // namespace handoff
