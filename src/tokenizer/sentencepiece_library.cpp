#include "tokenizer/sentencepiece_library.h"

#include <dlfcn.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include "common/error.h"
#include "tokenizer/sentencepiece_shim/sentencepiece_shim.h"

#ifndef HANDOFF_SENTENCEPIECE_LIB
#define HANDOFF_SENTENCEPIECE_LIB "libhandoff_sentencepiece.so"
#endif

namespace handoff {

namespace {

struct ShimFunctions {
  decltype(&hspm_load) load = nullptr;
  decltype(&hspm_free) free = nullptr;
  decltype(&hspm_piece_size) piece_size = nullptr;
  decltype(&hspm_special_id) special_id = nullptr;
  decltype(&hspm_piece_type) piece_type = nullptr;
  decltype(&hspm_id_to_piece) id_to_piece = nullptr;
  decltype(&hspm_piece_to_id) piece_to_id = nullptr;
  decltype(&hspm_encode) encode = nullptr;
  decltype(&hspm_decode) decode = nullptr;
  decltype(&hspm_train) train = nullptr;
};

std::vector<std::string> candidate_paths() {
  std::vector<std::string> out;
  if (const char* env = std::getenv("HANDOFF_SENTENCEPIECE_LIB")) out.emplace_back(env);
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) out.push_back((exe.parent_path() / "libhandoff_sentencepiece.so").string());
  out.emplace_back(HANDOFF_SENTENCEPIECE_LIB);
  return out;
}

ShimFunctions open_shim() {
  std::string tried;
  void* lib = nullptr;
  for (const std::string& path : candidate_paths()) {
    // A link namespace of its own: libsentencepiece binds to its bundled protobuf and nobody else binds to
    // it. (RTLD_DEEPBIND alone is not enough: libstdc++ inside would use an uninitialised std::cerr, whose
    // live copy sits in the executable.)
    lib = dlmopen(LM_ID_NEWLM, path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib) break;
    const char* why = dlerror();
    tried += "\n  " + path + ": " + (why ? why : "not found");
  }
  if (!lib)
    throw Error(
        "cannot load libhandoff_sentencepiece.so, needed for SentencePiece tokenizers (tokenizer.model):" +
            tried,
        "build it with `ninja -C build handoff_sentencepiece` (needs libsentencepiece-dev), or set "
        "HANDOFF_SENTENCEPIECE_LIB to its path");
  ShimFunctions f;
  auto sym = [&](auto& fn, const char* name) {
    fn = reinterpret_cast<std::remove_reference_t<decltype(fn)>>(dlsym(lib, name));
    if (!fn) throw Error(std::string("libhandoff_sentencepiece.so lacks ") + name, "rebuild it");
  };
  sym(f.load, "hspm_load");
  sym(f.free, "hspm_free");
  sym(f.piece_size, "hspm_piece_size");
  sym(f.special_id, "hspm_special_id");
  sym(f.piece_type, "hspm_piece_type");
  sym(f.id_to_piece, "hspm_id_to_piece");
  sym(f.piece_to_id, "hspm_piece_to_id");
  sym(f.encode, "hspm_encode");
  sym(f.decode, "hspm_decode");
  sym(f.train, "hspm_train");
  return f;
}

// Loaded once, never closed (libsentencepiece keeps global state).
const ShimFunctions& shim() {
  static const ShimFunctions f = open_shim();
  return f;
}

void append_chars(void* ctx, const char* data, size_t n) {
  static_cast<std::string*>(ctx)->append(data, n);
}
void append_ints(void* ctx, const int* data, size_t n) {
  auto* v = static_cast<std::vector<int>*>(ctx);
  v->insert(v->end(), data, data + n);
}

}  // namespace

std::unique_ptr<SentencePieceModel> SentencePieceModel::load(const std::string& bytes,
                                                             const std::string& source) {
  std::string why;
  void* handle = shim().load(bytes.data(), bytes.size(), append_chars, &why);
  if (!handle)
    throw Error(source + ": not a valid SentencePiece model (" + why + ")",
                "the file is corrupt or truncated; copy tokenizer.model from the original checkpoint");
  return std::unique_ptr<SentencePieceModel>(new SentencePieceModel(handle));
}

SentencePieceModel::~SentencePieceModel() {
  shim().free(handle_);
}

int SentencePieceModel::piece_size() const {
  return shim().piece_size(handle_);
}
int SentencePieceModel::bos_id() const {
  return shim().special_id(handle_, "bos");
}
int SentencePieceModel::eos_id() const {
  return shim().special_id(handle_, "eos");
}
int SentencePieceModel::pad_id() const {
  return shim().special_id(handle_, "pad");
}
int SentencePieceModel::unk_id() const {
  return shim().special_id(handle_, "unk");
}
bool SentencePieceModel::is_control(int id) const {
  return shim().piece_type(handle_, id) & 1;
}
bool SentencePieceModel::is_unknown(int id) const {
  return shim().piece_type(handle_, id) & 2;
}
bool SentencePieceModel::is_byte(int id) const {
  return shim().piece_type(handle_, id) & 4;
}

std::string SentencePieceModel::id_to_piece(int id) const {
  size_t len = 0;
  const char* p = shim().id_to_piece(handle_, id, &len);
  return std::string(p, len);
}

int SentencePieceModel::piece_to_id(std::string_view piece) const {
  return shim().piece_to_id(handle_, piece.data(), piece.size());
}

std::vector<int> SentencePieceModel::encode(std::string_view text) const {
  std::vector<int> ids;
  std::string why;
  if (shim().encode(handle_, text.data(), text.size(), append_ints, &ids, append_chars, &why) != 0)
    throw Error("SentencePiece could not encode the text: " + why);
  return ids;
}

std::string SentencePieceModel::decode(const std::vector<int>& ids) const {
  std::string text, why;
  if (shim().decode(handle_, ids.data(), ids.size(), append_chars, &text, append_chars, &why) != 0)
    throw Error("SentencePiece could not decode the ids: " + why);
  return text;
}

void train_sentencepiece(const std::string& args) {
  std::string why;
  if (shim().train(args.c_str(), append_chars, &why) != 0)
    throw Error("SentencePiece training failed: " + why);
}

}  // namespace handoff
