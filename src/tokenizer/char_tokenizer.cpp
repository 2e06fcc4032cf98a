#include "tokenizer/char_tokenizer.h"

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "tokenizer/bpe_tokenizer.h"
#include "tokenizer/sentencepiece_tokenizer.h"

namespace handoff {

constexpr const char* CharTokenizer::kSpecials[4];

CharTokenizer::CharTokenizer() {
  char_to_id_.fill(-1);
  id_to_char_.push_back('\n');
  for (int c = 32; c < 127; ++c) id_to_char_.push_back(static_cast<char>(c));
  for (size_t i = 0; i < id_to_char_.size(); ++i)
    char_to_id_[static_cast<unsigned char>(id_to_char_[i])] = static_cast<int>(i) + 4;
}

bool CharTokenizer::can_encode(const std::string& text) const {
  for (unsigned char c : text)
    if (char_to_id_[c] < 0) return false;
  return true;
}

std::vector<int> CharTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  ids.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    bool special = false;
    if (text[i] == '<') {
      for (int s = 0; s < 4; ++s) {
        const std::string tok = kSpecials[s];
        if (text.compare(i, tok.size(), tok) == 0) {
          ids.push_back(s);
          i += tok.size();
          special = true;
          break;
        }
      }
    }
    if (special) continue;
    const unsigned char c = static_cast<unsigned char>(text[i]);
    if (char_to_id_[c] < 0)
      throw Error("character code " + std::to_string(c) + " at offset " + std::to_string(i) +
                      " is not in the character tokenizer's alphabet",
                  "the embedded models read printable ASCII and newlines only");
    ids.push_back(char_to_id_[c]);
    ++i;
  }
  return ids;
}

std::string CharTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  std::string out;
  for (int id : ids) {
    if (id >= 0 && id < 4) {
      if (!skip_special) out += kSpecials[id];
    } else if (id >= 4 && id < vocab_size()) {
      out.push_back(id_to_char_[id - 4]);
    } else {
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary of size " +
                  std::to_string(vocab_size()));
    }
  }
  return out;
}

std::vector<int> CharTokenizer::encode_chat(const std::vector<ChatMessage>& messages) const {
  std::string text;
  for (const auto& m : messages) {
    if (m.role != "user") continue;  // a char model has no system prompt or prior turns
    if (!text.empty()) text += '\n';
    text += m.content;
  }
  if (text.empty()) throw Error("the conversation has no user message");
  std::vector<int> ids{kBos};
  auto body = encode(text);
  ids.insert(ids.end(), body.begin(), body.end());
  ids.push_back(char_to_id_['\n']);
  return ids;
}

std::string CharTokenizer::to_json() const {
  // A valid minimal HF tokenizer.json: a BPE model with single-character vocab and no merges
  // tokenises exactly character by character, so other tools can open our checkpoints.
  nlohmann::json vocab = nlohmann::json::object();
  nlohmann::json added = nlohmann::json::array();
  for (int s = 0; s < 4; ++s) {
    vocab[kSpecials[s]] = s;
    added.push_back({{"id", s},
                     {"content", kSpecials[s]},
                     {"single_word", false},
                     {"lstrip", false},
                     {"rstrip", false},
                     {"normalized", false},
                     {"special", true}});
  }
  for (size_t i = 0; i < id_to_char_.size(); ++i)
    vocab[std::string(1, id_to_char_[i])] = static_cast<int>(i) + 4;
  nlohmann::json j = {{"version", "1.0"},
                      {"truncation", nullptr},
                      {"padding", nullptr},
                      {"added_tokens", added},
                      {"normalizer", nullptr},
                      {"pre_tokenizer", nullptr},
                      {"post_processor", nullptr},
                      {"decoder", nullptr},
                      {"model",
                       {{"type", "BPE"},
                        {"dropout", nullptr},
                        {"unk_token", nullptr},
                        {"vocab", vocab},
                        {"merges", nlohmann::json::array()}}},
                      {"handoff", {{"tokenizer", "char"}, {"chat_template", "<bos>{user}\\n"}}}};
  return j.dump(1);
}

CharTokenizer CharTokenizer::from_json(const std::string& json_text, const std::string& source) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(json_text);
  } catch (const std::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  CharTokenizer tok;
  if (!j.contains("handoff") || j["handoff"].value("tokenizer", "") != "char")
    throw Error(source + ": not a handoff character tokenizer");
  const auto& vocab = j["model"]["vocab"];
  if (!vocab.is_object() || static_cast<int>(vocab.size()) != tok.vocab_size())
    throw Error(source + ": vocabulary size differs from the character tokenizer's " +
                    std::to_string(tok.vocab_size()),
                "was it written by another version of handoff?");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    const std::string& key = it.key();
    int id = it.value().get<int>();
    int expect = -1;
    for (int s = 0; s < 4; ++s)
      if (key == kSpecials[s]) expect = s;
    if (expect < 0 && key.size() == 1) expect = tok.char_to_id_[static_cast<unsigned char>(key[0])];
    if (expect != id)
      throw Error(source + ": token '" + key + "' has id " + std::to_string(id) + ", expected " +
                  std::to_string(expect));
  }
  return tok;
}

namespace {

// A tokenizer.json that transformers converted from a SentencePiece model (Llama-2, Mistral): BPE with
// byte fallback and "▁" for spaces, which BpeTokenizer (byte-level only) does not implement.
bool is_sentencepiece_conversion(const nlohmann::json& j) {
  if (j["model"].value("byte_fallback", false)) return true;
  for (const char* part : {"normalizer", "pre_tokenizer", "decoder"})
    if (j.contains(part) && !j[part].is_null()) {
      const std::string text = j[part].dump();
      if (text.find("Metaspace") != std::string::npos || text.find("ByteFallback") != std::string::npos)
        return true;
    }
  return false;
}

const char* kSupported =
    "supported: byte-level BPE tokenizer.json (Qwen2, Llama-3), SentencePiece tokenizer.model (Llama-2, "
    "Mistral) and handoff character tokenizers";

}  // namespace

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  const bool has_model = file_exists(dir + "/tokenizer.model");
  if (!file_exists(path)) {
    if (has_model) return SentencePieceTokenizer::load(dir);
    throw Error("missing " + path, "a checkpoint directory needs tokenizer.json or tokenizer.model");
  }
  const std::string text = read_file(path);
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(text);
  } catch (const std::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
  try {
    if (j.is_object() && j.contains("handoff") && j["handoff"].value("tokenizer", "") == "char")
      return std::make_unique<CharTokenizer>(CharTokenizer::from_json(text, path));
    if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
      throw Error(path + ": has no \"model\" section", "is this a Hugging Face tokenizer.json?");
    // As transformers' fast tokenizers, tokenizer.json comes first; a SentencePiece conversion of it is read
    // from the original tokenizer.model instead.
    if (has_model && is_sentencepiece_conversion(j)) return SentencePieceTokenizer::load(dir);
    const std::string type = j["model"].value("type", "");
    if (type == "BPE") return BpeTokenizer::load(dir);
    throw Error(path + ": tokenizer model type '" + type + "' is not supported", kSupported);
  } catch (const nlohmann::json::exception& e) {
    // A field of the wrong JSON type, anywhere in the loaders: name the file, not only nlohmann's words.
    throw Error(path + ": a field has the wrong type or value: " + e.what(),
                "is this an unmodified Hugging Face tokenizer.json?");
  }
}

}  // namespace handoff
