#pragma once
// Dot products and row updates over a head's HD values for the attention kernel (one_token_attention): eight
// lane-wise partial sums folded as adjacent pairs — the order in which AVX2's horizontal adds reduce eight
// such dots at once (one_token_attention.cpp), so its eight-key form and this one give the same bits.
// Lane-wise sums vectorise without reassociation (one running sum would not, and would wait on its own add
// latency), and the order is fixed by the source, so every build and CPU computes the same bits (the file
// that uses it is built with -ffp-contract=off).
#include <cstdint>

namespace handoff {

template <int HD>
inline float lane_dot(const float* a, const float* b) {
  static_assert(HD % 8 == 0, "head sizes of a multiple of 8");
  float lane[8];
  for (int l = 0; l < 8; ++l) lane[l] = a[l] * b[l];
  for (int d = 8; d < HD; d += 8)
    for (int l = 0; l < 8; ++l) lane[l] = lane[l] + a[d + l] * b[d + l];
  return ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
}

// y += a · x over HD values.
template <int HD>
inline void lane_axpy(float a, const float* x, float* y) {
  for (int d = 0; d < HD; ++d) y[d] += a * x[d];
}

}  // namespace handoff
