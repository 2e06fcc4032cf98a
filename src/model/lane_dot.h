#pragma once
// Dot products and row updates over a head's HD values for the attention kernels (one_token_attention,
// fused_attention): eight lane-wise partial sums folded pairwise. Lane-wise sums vectorise without
// reassociation (one running sum would not, and would wait on its own add latency), and the order is fixed
// by the source, so every build and CPU computes the same bits.
#include <cstdint>

namespace handoff {

template <int HD>
inline float lane_dot(const float* a, const float* b) {
  static_assert(HD % 8 == 0, "head sizes of a multiple of 8");
  float lane[8] = {};
  for (int d = 0; d < HD; d += 8)
    for (int l = 0; l < 8; ++l) lane[l] += a[d + l] * b[d + l];
  return ((lane[0] + lane[4]) + (lane[1] + lane[5])) + ((lane[2] + lane[6]) + (lane[3] + lane[7]));
}

// y += a · x over HD values.
template <int HD>
inline void lane_axpy(float a, const float* x, float* y) {
  for (int d = 0; d < HD; ++d) y[d] += a * x[d];
}

}  // namespace handoff
