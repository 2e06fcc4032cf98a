#pragma once
// Preallocated key/value cache, written in place: decoding appends one position per step without
// reallocating.
#include <ATen/Tensor.h>

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

}  // namespace handoff
