#include "tokenizer/sentencepiece_shim/sentencepiece_shim.h"

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#define HSPM_EXPORT __attribute__((visibility("default")))

namespace {

using Processor = sentencepiece::SentencePieceProcessor;

const Processor& processor(const void* model) {
  return *static_cast<const Processor*>(model);
}

void report(const sentencepiece::util::Status& status, hspm_char_sink err, void* err_ctx) {
  const std::string text = status.ToString();
  err(err_ctx, text.data(), text.size());
}

}  // namespace

extern "C" {

HSPM_EXPORT void* hspm_load(const char* bytes, size_t n, hspm_char_sink err, void* err_ctx) {
  auto* sp = new Processor();
  const auto status = sp->LoadFromSerializedProto(std::string_view(bytes, n));
  if (!status.ok()) {
    report(status, err, err_ctx);
    delete sp;
    return nullptr;
  }
  return sp;
}

HSPM_EXPORT void hspm_free(void* model) {
  delete static_cast<Processor*>(model);
}

HSPM_EXPORT int hspm_piece_size(const void* model) {
  return processor(model).GetPieceSize();
}

HSPM_EXPORT int hspm_special_id(const void* model, const char* which) {
  const Processor& sp = processor(model);
  if (std::strcmp(which, "bos") == 0) return sp.bos_id();
  if (std::strcmp(which, "eos") == 0) return sp.eos_id();
  if (std::strcmp(which, "pad") == 0) return sp.pad_id();
  if (std::strcmp(which, "unk") == 0) return sp.unk_id();
  return -1;
}

HSPM_EXPORT int hspm_piece_type(const void* model, int id) {
  const Processor& sp = processor(model);
  return (sp.IsControl(id) ? 1 : 0) | (sp.IsUnknown(id) ? 2 : 0) | (sp.IsByte(id) ? 4 : 0) |
         (sp.IsUnused(id) ? 8 : 0);
}

HSPM_EXPORT const char* hspm_id_to_piece(const void* model, int id, size_t* len) {
  const std::string& piece = processor(model).IdToPiece(id);  // owned by the model
  *len = piece.size();
  return piece.data();
}

HSPM_EXPORT int hspm_piece_to_id(const void* model, const char* piece, size_t n) {
  return processor(model).PieceToId(std::string_view(piece, n));
}

HSPM_EXPORT int hspm_encode(const void* model, const char* text, size_t n, hspm_int_sink out, void* ctx,
                            hspm_char_sink err, void* err_ctx) {
  std::vector<int> ids;
  const auto status = processor(model).Encode(std::string_view(text, n), &ids);
  if (!status.ok()) {
    report(status, err, err_ctx);
    return 1;
  }
  out(ctx, ids.data(), ids.size());
  return 0;
}

HSPM_EXPORT int hspm_decode(const void* model, const int* ids, size_t n, hspm_char_sink out, void* ctx,
                            hspm_char_sink err, void* err_ctx) {
  std::string text;
  const auto status = processor(model).Decode(std::vector<int>(ids, ids + n), &text);
  if (!status.ok()) {
    report(status, err, err_ctx);
    return 1;
  }
  out(ctx, text.data(), text.size());
  return 0;
}

HSPM_EXPORT int hspm_train(const char* args, hspm_char_sink err, void* err_ctx) {
  // The trainer logs every step to stderr.
  std::fflush(stderr);
  const int saved = dup(2), null = open("/dev/null", O_WRONLY);
  if (null >= 0) dup2(null, 2);
  const auto status = sentencepiece::SentencePieceTrainer::Train(args);
  std::fflush(stderr);
  if (saved >= 0) dup2(saved, 2);
  if (null >= 0) close(null);
  if (saved >= 0) close(saved);
  if (!status.ok()) {
    report(status, err, err_ctx);
    return 1;
  }
  return 0;
}
}
