#pragma once
// The C interface of libhandoff_sentencepiece.so, the one library that links Debian's libsentencepiece.
//
// Why a separate library: Debian's libsentencepiece.so exports the protobuf-lite it bundles (an older
// protobuf) without binding to it. In a process that also holds libtorch's libprotobuf.so, each copy binds to
// the other's symbols and the process crashes before main. So the handoff binaries never link
// libsentencepiece; sentencepiece_library.cpp loads this library with dlmopen() into a link namespace of its
// own, which keeps libsentencepiece on its own protobuf and out of everyone else's symbol lookup. Only C
// types cross: results come back through callbacks that copy them, so no allocation is freed on the other
// side.
#include <cstddef>

extern "C" {

// Copies `n` ints (encode) or bytes (decode, errors) out of the library.
typedef void (*hspm_int_sink)(void* ctx, const int* data, size_t n);
typedef void (*hspm_char_sink)(void* ctx, const char* data, size_t n);

// A SentencePieceProcessor from the bytes of a .model file; null with the reason sent to `err` on failure.
void* hspm_load(const char* bytes, size_t n, hspm_char_sink err, void* err_ctx);
void hspm_free(void* model);

int hspm_piece_size(const void* model);
// "bos", "eos", "pad", "unk": the id, -1 when the model has none.
int hspm_special_id(const void* model, const char* which);
// Bit 1: control, 2: unknown, 4: byte, 8: unused.
int hspm_piece_type(const void* model, int id);
const char* hspm_id_to_piece(const void* model, int id, size_t* len);
int hspm_piece_to_id(const void* model, const char* piece, size_t n);

// 0 on success; otherwise the reason goes to `err`.
int hspm_encode(const void* model, const char* text, size_t n, hspm_int_sink out, void* ctx,
                hspm_char_sink err, void* err_ctx);
int hspm_decode(const void* model, const int* ids, size_t n, hspm_char_sink out, void* ctx,
                hspm_char_sink err, void* err_ctx);

// SentencePieceTrainer::Train with spm_train's flags ("--input=... --model_prefix=..."); the trainer's log
// is silenced. 0 on success.
int hspm_train(const char* args, hspm_char_sink err, void* err_ctx);
}
