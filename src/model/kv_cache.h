#pragma once
// Preallocated key/value cache, written in place: decoding appends one position per step without
// reallocating.
#include <ATen/Tensor.h>

#include <cstdint>
#include <vector>

namespace handoff {

struct KVCache {
  std::vector<at::Tensor> k, v;  // per layer: [B, n_kv, capacity, head_dim]
  int64_t length = 0;            // positions filled
  int64_t capacity = 0;
  // Rows of different lengths in one cache (SlotDecoder): when defined ([B] int64), a one-token step writes
  // row b's key/value at column write_cols[b] instead of at `length`, and attends over columns
  // [0, length + 1), which the caller's key mask narrows to each row's own prefix.
  at::Tensor write_cols;
};

// A prompt's keys and values shared by the rows that continue it (batched sampling of G samples per prompt,
// model/sampler.cpp with model/fused_decode.h): the rows' own KVCache then holds only their generated
// columns, and attention reads the prompt's columns from here (one_token_attention_prefixed).
struct SharedPrefix {
  std::vector<at::Tensor> k, v;  // per layer: [D, n_kv, P, head_dim] for D distinct prompts, contiguous
  std::vector<int64_t> rows;     // per row of the batch: the index of its prompt in [0, D)
  at::Tensor bias;               // [D, 1, 1, P] additive: 0, or -1e30 on a padding column
};

}  // namespace handoff
