#include "io/gguf_tokenizer.h"

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "tokenizer/byte_symbols.h"
#include "tokenizer/char_tokenizer.h"

namespace handoff {

namespace {

using nlohmann::json;

// The pre-tokenizer regexes llama.cpp knows by name (llama-vocab.cpp, LLAMA_VOCAB_PRE_TYPE_*).
const char* kQwen2Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| "
    "?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|"
    "\\s+(?!\\S)|\\s+";
const char* kLlama3Regex =
    "(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
    "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";

// Collects the Split regexes and whether a ByteLevel step splits on GPT-2's regex itself.
// Any other step (Digits, Punctuation, Metaspace, a Split on a plain string…) changes the pieces in a way
// the pre-tokenizer's llama.cpp name does not say, so it is refused by name rather than exported as if
// absent.
void walk_pre(const json& p, std::vector<std::string>& regexes, bool& byte_level, bool& gpt2_regex) {
  if (p.is_null()) return;
  const std::string type = p.is_object() ? p.value("type", "") : "";
  if (type == "Sequence") {
    for (const auto& q : p.value("pretokenizers", json::array()))
      walk_pre(q, regexes, byte_level, gpt2_regex);
  } else if (type == "Split" && p.contains("pattern") && p["pattern"].is_object() &&
             p["pattern"].contains("Regex") && p["pattern"]["Regex"].is_string()) {
    regexes.push_back(p["pattern"]["Regex"].get<std::string>());
  } else if (type == "ByteLevel") {
    byte_level = true;
    gpt2_regex = gpt2_regex || p.value("use_regex", true);
  } else {
    const std::string step = type == "Split" ? "Split (not on a regex)" : type.empty() ? p.dump() : type;
    throw Error(
        "export-gguf: the tokenizer's pre-tokenizer step '" + step + "' has no llama.cpp equivalent",
        "supported: Sequence of Split(Regex) and ByteLevel steps, as Qwen2/Qwen3, Llama-3 and GPT-2 use");
  }
}

std::string pre_name(const json& tj) {
  std::vector<std::string> regexes;
  bool byte_level = false, gpt2_regex = false;
  walk_pre(tj.value("pre_tokenizer", json()), regexes, byte_level, gpt2_regex);
  if (!byte_level)
    throw Error("export-gguf: the tokenizer is BPE but not byte-level",
                "llama.cpp's gpt2 model needs ByteLevel");
  if (regexes.empty() && gpt2_regex) return "gpt-2";
  if (regexes.size() == 1 && !gpt2_regex) {
    if (regexes[0] == kQwen2Regex) return "qwen2";
    if (regexes[0] == kLlama3Regex) return "llama-bpe";
  }
  throw Error("export-gguf: the tokenizer's pre-tokenizer has no llama.cpp name",
              "supported: the Qwen2/Qwen3 and Llama-3 regexes, or GPT-2's ByteLevel");
}

std::string byte_level(const std::string& raw) {
  std::string out;
  for (unsigned char b : raw) out += byte_symbols().symbol[b];
  return out;
}

std::string merge_text(const json& m) {
  if (m.is_string()) return m.get<std::string>();
  if (m.is_array() && m.size() == 2) return m[0].get<std::string>() + " " + m[1].get<std::string>();
  throw Error("export-gguf: a merge in tokenizer.json is neither \"a b\" nor [a, b]");
}

void set_token(GgufVocab& v, int64_t id, const std::string& text, int32_t type) {
  if (id < 0 || id >= static_cast<int64_t>(v.tokens.size()))
    throw Error("export-gguf: token id " + std::to_string(id) + " ('" + text + "') is outside the model's " +
                std::to_string(v.tokens.size()) + " embedding rows");
  v.tokens[id] = text;
  v.types[id] = type;
}

}  // namespace

GgufVocab gguf_vocab(const Tokenizer& tok, int64_t n_vocab) {
  const std::string text = tok.to_json();
  if (text.empty())
    throw Error("export-gguf: SentencePiece tokenizers (tokenizer.model) are not supported",
                "export a checkpoint with a tokenizer.json (char or byte-level BPE)");
  const json tj = json::parse(text);
  if (tj.value("model", json()).value("type", "") != "BPE")
    throw Error(
        "export-gguf: tokenizer model '" + tj.value("model", json()).value("type", "") + "' is not supported",
        "byte-level BPE or handoff's char vocabulary");
  GgufVocab v;
  v.tokens.assign(static_cast<size_t>(n_vocab), "");
  v.types.assign(static_cast<size_t>(n_vocab), kTokenUnused);
  const bool chars = tj.contains("handoff") && tj["handoff"].value("tokenizer", "") == "char";
  v.pre = chars ? "default" : pre_name(tj);
  for (const auto& [s, id] : tj["model"]["vocab"].items())
    set_token(v, id.get<int64_t>(), chars ? byte_level(s) : s, kTokenNormal);
  for (const auto& m : tj["model"].value("merges", json::array())) v.merges.push_back(merge_text(m));
  for (const auto& a : tj.value("added_tokens", json::array())) {
    const int64_t id = a.at("id").get<int64_t>();
    const bool special = a.value("special", false) && id != tok.handoff_id();
    set_token(v, id, a.at("content").get<std::string>(), special ? kTokenControl : kTokenUserDefined);
  }
  for (size_t i = 0; i < v.tokens.size(); ++i)
    if (v.types[i] == kTokenUnused) v.tokens[i] = "[PAD" + std::to_string(i) + "]";
  v.bos = tok.bos_id();
  v.eos = tok.eos_id();
  v.pad = tok.pad_id();
  for (int id : tok.stop_ids())
    if (id != v.eos && v.eot < 0) v.eot = id;  // <|im_end|>, <|eot_id|>: the end of a chat turn
  if (chars) v.chat_template = CharTokenizer::kJinjaTemplate;  // its template is code, not a config file
  const auto extra = tok.extra_files();
  const auto cfg = extra.find("tokenizer_config.json");
  if (cfg != extra.end()) {
    const json c = json::parse(cfg->second, nullptr, false);
    if (c.is_object() && c.contains("chat_template") && c["chat_template"].is_string())
      v.chat_template = c["chat_template"].get<std::string>();
  }
  return v;
}

void add_gguf_vocab(GgufWriter& w, const GgufVocab& v) {
  w.add_string("tokenizer.ggml.model", v.model);
  w.add_string("tokenizer.ggml.pre", v.pre);
  w.add_strings("tokenizer.ggml.tokens", v.tokens);
  w.add_i32s("tokenizer.ggml.token_type", v.types);
  w.add_strings("tokenizer.ggml.merges", v.merges);  // required by llama.cpp even when empty
  if (v.bos >= 0) w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
  if (v.eos >= 0) w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
  if (v.pad >= 0) w.add_u32("tokenizer.ggml.padding_token_id", static_cast<uint32_t>(v.pad));
  if (v.eot >= 0) w.add_u32("tokenizer.ggml.eot_token_id", static_cast<uint32_t>(v.eot));
  // handoff's prompts carry their own BOS (the chat template writes it), as the checkpoint's encode does.
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.add_bool("tokenizer.ggml.add_eos_token", false);
  if (!v.chat_template.empty()) w.add_string("tokenizer.chat_template", v.chat_template);
}

}  // namespace handoff
