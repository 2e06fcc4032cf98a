#include "tokenizer/bpe_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <queue>

#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "protocol/response.h"
#include "tokenizer/byte_symbols.h"
#include "tokenizer/tokenizer_config.h"
#include "tokenizer/unicode_nfc.h"
#include "tokenizer/utf8.h"

namespace handoff {

using nlohmann::json;

namespace {

uint64_t pair_key(int a, int b) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b);
}

bool is_space_byte(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_word_byte(unsigned char c) {
  return std::isalnum(c) || c == '_' || c >= 0x80;
}

}  // namespace

// ---- loading ----

std::unique_ptr<BpeTokenizer> BpeTokenizer::load(const std::string& dir) {
  const std::string path = dir + "/tokenizer.json";
  const std::string config_path = dir + "/tokenizer_config.json";
  std::string config_text = file_exists(config_path) ? read_file(config_path) : "";
  // Newer checkpoints keep the template in its own file.
  const std::string jinja_path = dir + "/chat_template.jinja";
  if (file_exists(jinja_path)) {
    json c = config_text.empty() ? json::object() : json::parse(config_text, nullptr, false);
    if (c.is_object() && !c.contains("chat_template")) {
      c["chat_template"] = read_file(jinja_path);
      config_text = c.dump();
    }
  }
  auto tok = from_json(read_file(path), path, config_text, config_path);
  const std::string gen_path = dir + "/generation_config.json";
  if (file_exists(gen_path)) tok->read_generation_config(read_file(gen_path), gen_path);
  return tok;
}

void BpeTokenizer::read_generation_config(const std::string& text, const std::string& source) {
  json g;
  try {
    g = json::parse(text);
  } catch (const std::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  std::vector<int> ids;
  const json eos = g.is_object() && g.contains("eos_token_id") ? g["eos_token_id"] : json();
  for (const json& v : eos.is_array() ? eos : json::array({eos})) {
    if (v.is_null()) continue;
    if (!v.is_number_integer())
      throw Error(source + ": eos_token_id must be a token id or a list of them, not " + v.dump());
    const int id = v.get<int>();
    if (id < 0 || id >= vocab_size())
      throw Error(source + ": eos_token_id " + std::to_string(id) + " is outside the vocabulary of " +
                  std::to_string(vocab_size()) + " tokens");
    ids.push_back(id);
  }
  generation_stop_ids_ = std::move(ids);
  generation_config_text_ = text;
}

std::vector<int> BpeTokenizer::stop_ids() const {
  std::vector<int> ids{eos_id_};
  if (chat_template_) {  // the token each assistant turn of the template ends with
    const char* end = chat_template_->kind == ChatTemplate::Kind::kChatML   ? "<|im_end|>"
                      : chat_template_->kind == ChatTemplate::Kind::kLlama3 ? "<|eot_id|>"
                                                                            : "";
    ids.push_back(special_added_id(end));
  }
  ids.insert(ids.end(), generation_stop_ids_.begin(), generation_stop_ids_.end());
  std::vector<int> out;
  for (int id : ids)
    if (id >= 0 && std::find(out.begin(), out.end(), id) == out.end()) out.push_back(id);
  return out;
}

std::map<std::string, std::string> BpeTokenizer::extra_files() const {
  std::map<std::string, std::string> files;
  if (!config_text_.empty()) files["tokenizer_config.json"] = config_text_;
  if (!generation_config_text_.empty()) files["generation_config.json"] = generation_config_text_;
  return files;
}

std::unique_ptr<BpeTokenizer> BpeTokenizer::from_json(const std::string& tokenizer_json,
                                                      const std::string& source,
                                                      const std::string& config_json,
                                                      const std::string& config_source) {
  json j;
  try {
    j = json::parse(tokenizer_json);
  } catch (const std::exception& e) {
    throw Error(source + ": not valid JSON: " + e.what());
  }
  if (!j.is_object() || !j.contains("model") || !j["model"].is_object())
    throw Error(source + ": has no \"model\" section", "is this a Hugging Face tokenizer.json?");
  const std::string type = j["model"].value("type", "");
  if (type != "BPE")
    throw Error(source + ": tokenizer model type '" + type + "' is not supported",
                "supported: byte-level BPE (Qwen2, Llama-3) and handoff character tokenizers");

  std::unique_ptr<BpeTokenizer> t(new BpeTokenizer());
  t->json_text_ = tokenizer_json;
  t->config_text_ = config_json;
  t->parse_model(j["model"], source);

  // Added tokens: ids may extend past the vocabulary.
  if (j.contains("added_tokens") && j["added_tokens"].is_array()) {
    for (const auto& a : j["added_tokens"]) {
      AddedToken tok;
      tok.content = a.value("content", "");
      tok.id = a.value("id", -1);
      if (tok.content.empty() || tok.id < 0) throw Error(source + ": an added token lacks content or id");
      tok.special = a.value("special", false);
      tok.lstrip = a.value("lstrip", false);
      tok.rstrip = a.value("rstrip", false);
      tok.single_word = a.value("single_word", false);
      tok.normalized = a.contains("normalized") && a["normalized"].is_boolean() ? a["normalized"].get<bool>()
                                                                                : !tok.special;
      if (tok.id >= static_cast<int>(t->id_to_token_.size())) t->id_to_token_.resize(tok.id + 1);
      t->id_to_token_[tok.id] = tok.content;
      t->added_.push_back(tok);
    }
  }
  t->added_index_of_id_.assign(t->id_to_token_.size(), -1);
  for (size_t i = 0; i < t->added_.size(); ++i) {
    const AddedToken& a = t->added_[i];
    t->added_index_of_id_[a.id] = static_cast<int>(i);
    auto& by_byte = t->added_by_first_byte_[a.normalized ? 1 : 0];
    if (by_byte.empty()) by_byte.resize(256);
    by_byte[static_cast<unsigned char>(a.content[0])].push_back(static_cast<int>(i));
    if (a.content == kHandoffMarker) t->handoff_id_ = a.id;
  }
  for (auto& by_byte : t->added_by_first_byte_)
    for (auto& list : by_byte)
      std::stable_sort(list.begin(), list.end(), [&](int a, int b) {
        return t->added_[a].content.size() > t->added_[b].content.size();
      });

  // Normalizer: none or NFC (Qwen2).
  const json norm = j.value("normalizer", json());
  if (!norm.is_null()) {
    const std::string nt = norm.value("type", "");
    if (nt == "NFC")
      t->nfc_ = true;
    else if (!(nt == "Sequence" && norm.value("normalizers", json::array()).empty()))
      throw Error(source + ": normalizer '" + nt + "' is not supported", "supported: none, NFC");
  }
  t->parse_pre_tokenizer(j.value("pre_tokenizer", json()), source);
  const json dec = j.value("decoder", json());
  if (!dec.is_null() && dec.value("type", "") != "ByteLevel")
    throw Error(source + ": decoder '" + dec.value("type", "") + "' is not supported",
                "supported: ByteLevel");

  t->parse_config(config_json, config_source);
  return t;
}

void BpeTokenizer::parse_model(const json& model, const std::string& source) {
  if (model.contains("dropout") && !model["dropout"].is_null() && model["dropout"].get<double>() != 0.0)
    throw Error(source + ": BPE dropout is not supported");
  if (model.value("byte_fallback", false))
    throw Error(source + ": BPE byte_fallback is not supported", "byte-level BPE never needs it");
  for (const char* k : {"continuing_subword_prefix", "end_of_word_suffix"})
    if (model.contains(k) && model[k].is_string() && !model[k].get<std::string>().empty())
      throw Error(source + ": BPE " + k + " is not supported");
  ignore_merges_ = model.value("ignore_merges", false);

  if (!model.contains("vocab") || !model["vocab"].is_object())
    throw Error(source + ": model.vocab is missing or not an object");
  int max_id = -1;
  for (auto it = model["vocab"].begin(); it != model["vocab"].end(); ++it) {
    if (!it.value().is_number_integer() || it.value().get<int>() < 0)
      throw Error(source + ": vocabulary entry '" + it.key() + "' has no valid id");
    vocab_[it.key()] = it.value().get<int>();
    max_id = std::max(max_id, it.value().get<int>());
  }
  id_to_token_.assign(max_id + 1, "");
  for (const auto& [tok, id] : vocab_) id_to_token_[id] = tok;

  const json merges = model.value("merges", json::array());
  if (!merges.is_array()) throw Error(source + ": model.merges is not a list");
  merges_.reserve(merges.size());
  const auto id_of = [&](const std::string& tok, const std::string& merge) {
    auto it = vocab_.find(tok);
    if (it == vocab_.end())
      throw Error(source + ": merge '" + merge + "' refers to '" + tok + "', which is not in the vocabulary",
                  "the tokenizer.json is inconsistent");
    return it->second;
  };
  for (size_t rank = 0; rank < merges.size(); ++rank) {
    const json& m = merges[rank];
    std::string left, right;
    if (m.is_string()) {  // "a b" (tokenizers < 0.20)
      const std::string s = m.get<std::string>();
      const size_t sp = s.find(' ');
      if (sp == std::string::npos || s.find(' ', sp + 1) != std::string::npos)
        throw Error(source + ": merge " + std::to_string(rank) + " '" + s +
                    "' is not two tokens separated by a space");
      left = s.substr(0, sp);
      right = s.substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {  // ["a", "b"]
      left = m[0].get<std::string>();
      right = m[1].get<std::string>();
    } else {
      throw Error(source + ": merge " + std::to_string(rank) + " is neither \"a b\" nor [\"a\", \"b\"]");
    }
    const std::string label = left + " " + right;
    const int a = id_of(left, label), b = id_of(right, label), merged = id_of(left + right, label);
    merges_[pair_key(a, b)] =
        MergeTarget{static_cast<int>(rank), merged};  // a repeated pair: the last wins, as in HF
  }

  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    auto it = vocab_.find(model["unk_token"].get<std::string>());
    if (it != vocab_.end()) unk_id_ = it->second;
  }
  const ByteSymbols& bs = byte_symbols();
  for (int b = 0; b < 256; ++b) {
    auto it = vocab_.find(bs.symbol[b]);
    byte_id_[b] = it == vocab_.end() ? -1 : it->second;
  }
}

void BpeTokenizer::parse_pre_tokenizer(const json& pre, const std::string& source) {
  std::vector<json> steps;
  if (pre.is_object() && pre.value("type", "") == "Sequence") {
    for (const auto& s : pre.value("pretokenizers", json::array())) steps.push_back(s);
  } else if (pre.is_object()) {
    steps.push_back(pre);
  }
  if (steps.empty() || steps.back().value("type", "") != "ByteLevel")
    throw Error(source + ": the pre-tokenizer does not end in ByteLevel, so this is not byte-level BPE",
                "supported: Qwen2 / Llama-3 / GPT-2 style tokenizers");
  for (size_t i = 0; i < steps.size(); ++i) {
    const json& s = steps[i];
    const std::string type = s.value("type", "");
    if (type == "Split") {
      if (s.value("behavior", "") != "Isolated" || s.value("invert", false))
        throw Error(source + ": Split pre-tokenizer with behavior '" + s.value("behavior", "") +
                        "' / invert is not supported",
                    "supported: behavior Isolated, invert false");
      const json pattern = s.value("pattern", json::object());
      if (pattern.contains("Regex"))
        splits_.push_back(std::make_unique<SplitRegex>(pattern["Regex"].get<std::string>(), source));
      else if (pattern.contains("String"))
        splits_.push_back(
            std::make_unique<SplitRegex>(SplitRegex::literal(pattern["String"].get<std::string>()), source));
      else
        throw Error(source + ": Split pre-tokenizer has no pattern");
    } else if (type == "ByteLevel" && i + 1 == steps.size()) {
      add_prefix_space_ = s.value("add_prefix_space", false);
      if (s.value("use_regex", true))
        splits_.push_back(std::make_unique<SplitRegex>(SplitRegex::gpt2_pattern(), source));
    } else {
      throw Error(source + ": pre-tokenizer '" + type + "' is not supported here",
                  "supported: Sequence of Split (Isolated) steps ending in ByteLevel");
    }
  }
}

void BpeTokenizer::parse_config(const std::string& config_json, const std::string& config_source) {
  json c = json::object();
  if (!config_json.empty()) {
    try {
      c = json::parse(config_json);
    } catch (const std::exception& e) {
      throw Error(config_source + ": not valid JSON: " + e.what());
    }
  }
  if (!config_json.empty()) {
    eos_id_ = special_id(special_token_content(c, "eos_token"));
    bos_id_ = special_id(special_token_content(c, "bos_token"));
    pad_id_ = special_id(special_token_content(c, "pad_token"));
  } else {  // no tokenizer_config.json: the usual names, among the added special tokens only — Qwen's
            // vocabulary has an ordinary "<s>" (id 128245) that is no BOS, and a BOS is never invented
    for (const char* name : {"<|eot_id|>", "<|im_end|>", "<|endoftext|>", "<|end_of_text|>", "</s>"})
      if (eos_id_ < 0) eos_id_ = special_added_id(name);
    for (const char* name : {"<|begin_of_text|>", "<s>"})
      if (bos_id_ < 0) bos_id_ = special_added_id(name);
  }
  if (pad_id_ < 0) pad_id_ = eos_id_;  // Llama-3 has no pad token; padding is masked anyway

  std::string tmpl;
  if (c.contains("chat_template")) {
    const json& ct = c["chat_template"];
    if (ct.is_string()) {
      tmpl = ct.get<std::string>();
    } else if (ct.is_array()) {  // [{"name": "default", "template": "..."}, {"name": "tool_use", ...}]
      for (const auto& e : ct)
        if (e.value("name", "") == "default") tmpl = e.value("template", "");
    }
  }
  if (!tmpl.empty())
    chat_template_ = ChatTemplate::parse(tmpl, special_token_content(c, "bos_token"), config_source,
                                         special_token_content(c, "eos_token"));
}

int BpeTokenizer::special_id(const std::string& content) const {
  return content.empty() ? -1 : token_to_id(content);
}

int BpeTokenizer::special_added_id(const std::string& content) const {
  for (const AddedToken& a : added_)
    if (a.special && a.content == content) return a.id;
  return -1;
}

int BpeTokenizer::token_to_id(const std::string& token) const {
  for (const AddedToken& a : added_)
    if (a.content == token) return a.id;
  auto it = vocab_.find(token);
  return it == vocab_.end() ? -1 : it->second;
}

const std::string& BpeTokenizer::id_to_token(int id) const {
  static const std::string empty;
  return id >= 0 && id < vocab_size() ? id_to_token_[id] : empty;
}

// ---- encoding ----

void BpeTokenizer::split_added(std::string_view text, bool normalized_pass, std::vector<Segment>& out) const {
  const auto& by_byte = added_by_first_byte_[normalized_pass ? 1 : 0];
  if (by_byte.empty()) {
    if (!text.empty()) out.push_back({text, -1});
    return;
  }
  size_t start = 0;  // beginning of the text not yet emitted
  for (size_t i = 0; i < text.size();) {
    const AddedToken* hit = nullptr;
    for (int idx : by_byte[static_cast<unsigned char>(text[i])]) {
      const AddedToken& a = added_[idx];
      if (text.compare(i, a.content.size(), a.content) != 0) continue;
      if (a.single_word) {  // only as a whole word
        const size_t e = i + a.content.size();
        if ((i > 0 && is_word_byte(text[i - 1])) || (e < text.size() && is_word_byte(text[e]))) continue;
      }
      hit = &a;
      break;  // longest first
    }
    if (hit == nullptr) {
      ++i;
      continue;
    }
    size_t mstart = i, mend = i + hit->content.size();
    if (hit->lstrip)
      while (mstart > start && is_space_byte(text[mstart - 1])) --mstart;
    if (hit->rstrip)
      while (mend < text.size() && is_space_byte(text[mend])) ++mend;
    if (mstart > start) out.push_back({text.substr(start, mstart - start), -1});
    out.push_back({text.substr(mstart, mend - mstart), hit->id});
    start = i = mend;
  }
  if (start < text.size()) out.push_back({text.substr(start), -1});
}

std::vector<int> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> raw, normalized;
  split_added(text, false, raw);
  for (const Segment& seg : raw) {
    if (seg.added_id >= 0) {
      ids.push_back(seg.added_id);
      continue;
    }
    const std::string nfc_text = nfc_ ? unicode_nfc(seg.text) : std::string();
    normalized.clear();
    split_added(nfc_ ? std::string_view(nfc_text) : seg.text, true, normalized);
    for (const Segment& s : normalized) {
      if (s.added_id >= 0)
        ids.push_back(s.added_id);
      else
        encode_text(s.text, ids);
    }
  }
  return ids;
}

void BpeTokenizer::encode_text(std::string_view text, std::vector<int>& ids) const {
  std::string prefixed;
  if (add_prefix_space_ && !text.empty() && text[0] != ' ') {  // ByteLevel(add_prefix_space): " " + text
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  std::vector<std::string_view> pieces{text}, next;
  for (const auto& split : splits_) {
    next.clear();
    for (std::string_view p : pieces) split->split(p, next);
    pieces.swap(next);
  }
  for (std::string_view p : pieces) encode_piece(p, ids);
}

void BpeTokenizer::encode_piece(std::string_view piece, std::vector<int>& ids) const {
  constexpr size_t kMaxCachedPiece = 256, kMaxCacheEntries = 1 << 18;
  const bool cacheable = piece.size() < kMaxCachedPiece;
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    auto it = cache_.find(std::string(piece));
    if (it != cache_.end()) {
      ids.insert(ids.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  std::vector<int> out = merge_piece(piece);
  ids.insert(ids.end(), out.begin(), out.end());
  if (cacheable) {
    std::lock_guard<std::mutex> lock(cache_mu_);
    if (cache_.size() >= kMaxCacheEntries) cache_.clear();
    cache_.emplace(std::string(piece), std::move(out));
  }
}

// BPE on one pre-tokenized piece: its bytes as symbols, then repeatedly the adjacent pair of lowest merge
// rank (leftmost among equal ranks) is merged, using a priority queue over a linked list of symbols: O(n log
// n) per piece instead of rescanning all pairs after every merge.
std::vector<int> BpeTokenizer::merge_piece(std::string_view piece) const {
  if (ignore_merges_) {  // Llama-3: a piece that is itself a token is taken whole
    std::string symbols;
    for (unsigned char b : piece) symbols += byte_symbols().symbol[b];
    auto it = vocab_.find(symbols);
    if (it != vocab_.end()) return {it->second};
  }
  struct Sym {
    int id, prev, next;
  };
  std::vector<Sym> sym;
  sym.reserve(piece.size());
  for (unsigned char b : piece) {
    int id = byte_id_[b];
    if (id < 0) id = unk_id_;
    if (id < 0) continue;  // no symbol and no unk token: dropped, as HF does
    const int k = static_cast<int>(sym.size());
    sym.push_back({id, k - 1, -1});
    if (k > 0) sym[k - 1].next = k;
  }
  struct Candidate {
    int rank, pos, id;
    bool operator>(const Candidate& o) const { return rank != o.rank ? rank > o.rank : pos > o.pos; }
  };
  std::priority_queue<Candidate, std::vector<Candidate>, std::greater<Candidate>> queue;
  const auto push_pair = [&](int pos) {
    if (pos < 0 || sym[pos].next < 0) return;
    auto it = merges_.find(pair_key(sym[pos].id, sym[sym[pos].next].id));
    if (it != merges_.end()) queue.push({it->second.rank, pos, it->second.id});
  };
  for (int k = 0; k + 1 < static_cast<int>(sym.size()); ++k) push_pair(k);
  while (!queue.empty()) {
    const Candidate c = queue.top();
    queue.pop();
    Sym& left = sym[c.pos];
    if (left.id < 0 || left.next < 0) continue;  // merged away, or now the last symbol
    auto it = merges_.find(pair_key(left.id, sym[left.next].id));
    if (it == merges_.end() || it->second.id != c.id) continue;  // the pair changed since it was queued
    Sym& right = sym[left.next];
    left.id = c.id;
    left.next = right.next;
    if (right.next >= 0) sym[right.next].prev = c.pos;
    right.id = -1;
    push_pair(left.prev);
    push_pair(c.pos);
  }
  std::vector<int> out;
  for (int k = sym.empty() ? -1 : 0; k >= 0; k = sym[k].next) out.push_back(sym[k].id);
  return out;
}

// ---- decoding ----

std::string BpeTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  const ByteSymbols& bs = byte_symbols();
  std::string bytes, raw;
  for (int id : ids) {
    if (id < 0 || id >= vocab_size() || id_to_token_[id].empty()) continue;
    const int ai = added_index_of_id_[id];
    if (ai >= 0 && added_[ai].special && skip_special) continue;
    // As HF's ByteLevel decoder: a token whose every character is a byte symbol becomes those bytes; any
    // other token (e.g. an added "<|im_end|>" with a space) is taken as its UTF-8 text.
    const std::string& tok = id_to_token_[id];
    raw.clear();
    bool all_symbols = true;
    for (size_t i = 0; i < tok.size() && all_symbols;) {
      const auto c = utf8::next(tok, i);
      if (c.cp < 0 || c.cp >= static_cast<int32_t>(bs.byte_of_cp.size()) || bs.byte_of_cp[c.cp] < 0)
        all_symbols = false;
      else
        raw.push_back(static_cast<char>(bs.byte_of_cp[c.cp]));
      i += c.len;
    }
    bytes += all_symbols ? raw : tok;
  }
  return utf8::to_valid(bytes);
}

std::vector<int> BpeTokenizer::encode_chat(const std::vector<ChatMessage>& messages) const {
  if (!chat_template_)
    throw Error(
        "this checkpoint's tokenizer has no chat template",
        "tokenizer_config.json needs a \"chat_template\" (ChatML or Llama-3); base models often lack one");
  return encode(render_chat(*chat_template_, messages));
}

}  // namespace handoff
