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
};

}  // namespace handoff
