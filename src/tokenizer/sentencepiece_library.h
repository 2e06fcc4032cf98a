#pragma once
// A SentencePiece model (libsentencepiece's SentencePieceProcessor) reached through
// libhandoff_sentencepiece.so, which is loaded at first use with dlmopen (a link namespace of its own): see
// sentencepiece_shim/sentencepiece_shim.h for why libsentencepiece cannot be linked into our binaries.
// The library is looked up in $HANDOFF_SENTENCEPIECE_LIB, next to the running executable, then at its build
// path; failing that, Error says what to build.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace handoff {

class SentencePieceModel {
 public:
  // From the bytes of a .model file; throws Error naming `source` when they are not a SentencePiece model.
  static std::unique_ptr<SentencePieceModel> load(const std::string& bytes, const std::string& source);
  ~SentencePieceModel();
  SentencePieceModel(const SentencePieceModel&) = delete;
  SentencePieceModel& operator=(const SentencePieceModel&) = delete;

  int piece_size() const;
  int bos_id() const;  // -1 when absent, as the other three
  int eos_id() const;
  int pad_id() const;
  int unk_id() const;
  bool is_control(int id) const;
  bool is_unknown(int id) const;
  bool is_byte(int id) const;
  std::string id_to_piece(int id) const;
  int piece_to_id(std::string_view piece) const;  // the unknown id for a piece the model lacks

  // SentencePiece's own encoding and decoding (normalization, dummy prefix, byte fallback); throw Error.
  std::vector<int> encode(std::string_view text) const;
  std::string decode(const std::vector<int>& ids) const;

 private:
  explicit SentencePieceModel(void* handle) : handle_(handle) {}
  void* handle_;
};

// SentencePieceTrainer::Train with spm_train's flags; throws Error with the trainer's reason. Tests use it to
// build small models.
void train_sentencepiece(const std::string& args);

}  // namespace handoff
