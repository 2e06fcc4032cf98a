#include "tokenizer/sentencepiece_tokenizer.h"

#include <algorithm>

#include <sentencepiece_processor.h>
#include <nlohmann/json.hpp>

#include "common/atomic_file.h"
#include "common/error.h"
#include "protocol/response.h"
#include "tokenizer/tokenizer_config.h"

namespace handoff {

using nlohmann::json;

namespace {

json parse_json_file(const std::string& path, const std::string& text) {
  try {
    return json::parse(text);
  } catch (const std::exception& e) {
    throw Error(path + ": not valid JSON: " + e.what());
  }
}

}  // namespace

std::unique_ptr<SentencePieceTokenizer> SentencePieceTokenizer::load(const std::string& dir) {
  const std::string model_path = dir + "/tokenizer.model";
  if (!file_exists(model_path))
    throw Error("missing " + model_path, "a SentencePiece checkpoint directory needs tokenizer.model");
  std::unique_ptr<SentencePieceTokenizer> t(new SentencePieceTokenizer());
  t->model_bytes_ = read_file(model_path);
  t->sp_ = SentencePieceModel::load(t->model_bytes_, model_path);
  if (t->piece_count() == 0)
    throw Error(model_path + ": not a valid SentencePiece model (it has no pieces)",
                "the file is corrupt or truncated; copy tokenizer.model from the original checkpoint");
  const int pieces = t->piece_count();

  // Control pieces (<s>, </s>) and <unk> written in the text are their ids, as transformers treats every
  // special token as unsplittable.
  for (int id = 0; id < pieces; ++id)
    if (t->sp_->is_control(id) || t->sp_->is_unknown(id)) {
      const std::string piece = t->sp_->id_to_piece(id);
      if (!piece.empty()) t->add_token(piece, id, true, model_path);
    }

  const std::string config_path = dir + "/tokenizer_config.json";
  json config = json::object();
  if (file_exists(config_path)) {
    t->config_text_ = read_file(config_path);
    config = parse_json_file(config_path, t->config_text_);
    if (!config.is_object()) throw Error(config_path + ": not a JSON object");
  }
  if (config.contains("added_tokens_decoder")) {
    const json& decoder = config["added_tokens_decoder"];
    if (!decoder.is_object()) throw Error(config_path + ": \"added_tokens_decoder\" is not an object");
    for (auto it = decoder.begin(); it != decoder.end(); ++it) {
      int id = -1;
      try {
        id = std::stoi(it.key());
      } catch (const std::exception&) {
      }
      const json& v = it.value();
      if (id < 0 || !v.is_object() || !v.contains("content") || !v["content"].is_string())
        throw Error(config_path + ": added token '" + it.key() + "' lacks a numeric id or a content");
      t->add_token(v["content"].get<std::string>(), id, v.value("special", false), config_path);
    }
  }
  // A transformers conversion of the same model (Llama-2 ships one) may list added tokens the config lacks.
  const std::string json_path = dir + "/tokenizer.json";
  if (file_exists(json_path)) {
    const json tok = parse_json_file(json_path, read_file(json_path));
    if (tok.is_object() && tok.contains("added_tokens") && tok["added_tokens"].is_array())
      for (const auto& a : tok["added_tokens"]) {
        if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id") ||
            !a["id"].is_number_integer())
          throw Error(json_path + ": an added token lacks content or id");
        t->add_token(a["content"].get<std::string>(), a["id"].get<int>(), a.value("special", false),
                     json_path);
      }
  }
  std::stable_sort(
      t->literals_.begin(), t->literals_.end(),
      [](const LiteralToken& a, const LiteralToken& b) { return a.content.size() > b.content.size(); });
  t->vocab_size_ = pieces;
  for (size_t i = 0; i < t->literals_.size(); ++i) {
    t->literal_index_of_id_[t->literals_[i].id] = i;
    t->vocab_size_ = std::max(t->vocab_size_, t->literals_[i].id + 1);
  }

  // Special ids: the names in tokenizer_config.json when they resolve, else the model's own.
  auto special = [&](const char* key, int model_id) {
    const int named = t->token_to_id(special_token_content(config, key));
    return named >= 0 ? named : model_id;
  };
  t->bos_id_ = special("bos_token", t->sp_->bos_id());
  t->eos_id_ = special("eos_token", t->sp_->eos_id());
  t->pad_id_ = special("pad_token", t->sp_->pad_id());
  if (t->pad_id_ < 0) t->pad_id_ = t->eos_id_;
  t->handoff_id_ = t->token_to_id(std::string(kHandoffMarker));

  // Chat template: tokenizer_config.json, or chat_template.jinja (newer checkpoints), or Llama-2 chat.
  std::string tmpl, template_source = config_path;
  if (config.contains("chat_template")) {
    const json& ct = config["chat_template"];
    if (ct.is_string()) {
      tmpl = ct.get<std::string>();
    } else if (ct.is_array()) {
      for (const auto& e : ct)
        if (e.value("name", "") == "default") tmpl = e.value("template", "");
    }
  }
  const std::string jinja_path = dir + "/chat_template.jinja";
  if (tmpl.empty() && file_exists(jinja_path)) {
    tmpl = t->template_text_ = read_file(jinja_path);
    template_source = jinja_path;
  }
  auto text_of = [&](int id) { return id < 0 ? std::string() : t->decode({id}); };
  const std::string bos = text_of(t->bos_id_), eos = text_of(t->eos_id_);
  t->chat_template_ =
      tmpl.empty() ? ChatTemplate::llama2(bos, eos) : ChatTemplate::parse(tmpl, bos, template_source, eos);
  return t;
}

void SentencePieceTokenizer::add_token(const std::string& content, int id, bool special,
                                       const std::string& source) {
  if (content.empty()) throw Error(source + ": added token " + std::to_string(id) + " has no content");
  if (id < piece_count() && sp_->id_to_piece(id) != content)
    throw Error(source + ": added token " + std::to_string(id) + " is '" + content +
                    "' but tokenizer.model has '" + sp_->id_to_piece(id) + "' there",
                "the tokenizer files do not belong together");
  for (LiteralToken& l : literals_) {
    if (l.id == id) {
      if (l.content != content)
        throw Error(source + ": token id " + std::to_string(id) + " is both '" + l.content + "' and '" +
                        content + "'",
                    "the tokenizer files do not belong together");
      return;  // listed in several files
    }
    if (l.content == content)
      throw Error(source + ": token '" + content + "' has two ids, " + std::to_string(l.id) + " and " +
                  std::to_string(id));
  }
  literals_.push_back({content, id, special});
}

const SentencePieceTokenizer::LiteralToken* SentencePieceTokenizer::literal_of_id(int id) const {
  auto it = literal_index_of_id_.find(id);
  return it == literal_index_of_id_.end() ? nullptr : &literals_[it->second];
}

int SentencePieceTokenizer::token_to_id(const std::string& token) const {
  if (token.empty()) return -1;
  for (const LiteralToken& l : literals_)
    if (l.content == token) return l.id;
  // PieceToId answers the unknown id for anything it lacks.
  const int id = sp_->piece_to_id(token);
  return id >= 0 && sp_->id_to_piece(id) == token ? id : -1;
}

// ---- encoding ----

void SentencePieceTokenizer::encode_text(std::string_view text, std::vector<int>& ids) const {
  if (text.empty()) return;  // as transformers, which skips empty pieces between special tokens
  const std::vector<int> out = sp_->encode(text);
  ids.insert(ids.end(), out.begin(), out.end());
}

std::vector<int> SentencePieceTokenizer::encode(const std::string& text) const {
  std::vector<int> ids;
  size_t start = 0, pos = 0;
  while (pos < text.size()) {
    const LiteralToken* match = nullptr;
    for (const LiteralToken& l : literals_)  // longest first, so "<handoff>" wins over a shorter prefix
      if (text.compare(pos, l.content.size(), l.content) == 0) {
        match = &l;
        break;
      }
    if (match == nullptr) {
      ++pos;
      continue;
    }
    encode_text(std::string_view(text).substr(start, pos - start), ids);
    ids.push_back(match->id);
    pos += match->content.size();
    start = pos;
  }
  encode_text(std::string_view(text).substr(start), ids);
  return ids;
}

std::string SentencePieceTokenizer::decode(const std::vector<int>& ids, bool skip_special) const {
  std::string out;
  std::vector<int> run;
  auto flush = [&] {
    if (run.empty()) return;
    out += sp_->decode(run);
    run.clear();
  };
  const int pieces = piece_count();
  for (int id : ids) {
    if (id < 0 || id >= vocab_size_) continue;
    if (const LiteralToken* l = literal_of_id(id)) {
      flush();
      if (!(skip_special && l->special)) out += l->content;
    } else if (id < pieces) {
      run.push_back(id);
    }
  }
  flush();
  return out;
}

std::vector<int> SentencePieceTokenizer::encode_chat(const std::vector<ChatMessage>& messages) const {
  return encode(render_chat(chat_template_, messages));
}

// ---- saving ----

std::map<std::string, std::string> SentencePieceTokenizer::extra_files() const {
  json config = config_text_.empty() ? json::object() : json::parse(config_text_);
  if (config_text_.empty()) {  // what transformers' LlamaTokenizer needs to load tokenizer.model
    config["tokenizer_class"] = "LlamaTokenizer";
    if (bos_id_ >= 0) config["bos_token"] = decode({bos_id_});
    if (eos_id_ >= 0) config["eos_token"] = decode({eos_id_});
    const int unk = sp_->unk_id();
    if (unk >= 0) config["unk_token"] = sp_->id_to_piece(unk);
    config["add_bos_token"] = true;
    config["add_eos_token"] = false;
    config["legacy"] = true;  // the encoding we implement
  }
  if (!template_text_.empty() && !config.contains("chat_template")) config["chat_template"] = template_text_;
  // Every literal token, so the saved directory keeps tokens that came from tokenizer.json.
  json& decoder = config["added_tokens_decoder"];
  if (!decoder.is_object()) decoder = json::object();
  std::vector<const LiteralToken*> by_id;
  for (const LiteralToken& l : literals_) by_id.push_back(&l);
  std::sort(by_id.begin(), by_id.end(),
            [](const LiteralToken* a, const LiteralToken* b) { return a->id < b->id; });
  for (const LiteralToken* l : by_id) {
    const std::string key = std::to_string(l->id);
    if (decoder.contains(key)) continue;
    decoder[key] = {{"content", l->content}, {"lstrip", false},      {"normalized", false},
                    {"rstrip", false},       {"single_word", false}, {"special", l->special}};
  }
  return {{"tokenizer.model", model_bytes_}, {"tokenizer_config.json", config.dump(2) + "\n"}};
}

}  // namespace handoff
