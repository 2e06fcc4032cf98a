#pragma once
// Percentile bootstrap confidence interval of a mean (paper.md §5: every accuracy is reported with its
// interval). Deterministic by seed on every standard library: the generator is std::mt19937_64 (its output
// sequence is fixed by the C++ standard) and the resample indices come from our own unbiased draw
// (uniform_index), not from std::uniform_int_distribution, whose algorithm differs between libraries.
#include <cstdint>
#include <random>
#include <vector>

namespace handoff::eval {

struct BootstrapOptions {
  int resamples = 2000;  // B, >= 1
  double level = 0.95;   // in (0, 1)
  uint64_t seed = 7;
};

struct ConfidenceInterval {
  double mean = 0;  // of the original sample (not of the resamples)
  double lo = 0, hi = 0;
  double level = 0.95;
};

// Uniform integer in [0, n), unbiased (Lemire, "Fast random integer generation in an interval", 2019: the
// high 64 bits of x·n for a 64-bit draw x, redrawing when the low 64 bits fall below 2^64 mod n). Needs
// unsigned __int128 (GCC, Clang). Throws Error when n == 0.
uint64_t uniform_index(std::mt19937_64& rng, uint64_t n);

// B resamples of size n with replacement; the interval is the (1−level)/2 and (1+level)/2 quantiles of the
// B resample means, each the linear interpolation between order statistics at position q·(B−1) (the "type
// 7" sample quantile). Throws Error on an empty sample, a non-finite value, B < 1 or a level outside (0, 1).
ConfidenceInterval bootstrap_mean_ci(const std::vector<double>& values, const BootstrapOptions& options = {});
// The same for 0/1 outcomes (non-zero counts as 1), e.g. per-item correctness.
ConfidenceInterval bootstrap_mean_ci(const std::vector<uint8_t>& outcomes,
                                     const BootstrapOptions& options = {});

// The paired difference mean(a − b) of two methods' 0/1 outcomes on the same items, with the bootstrap
// resampling items (both methods' outcomes of an item move together). Throws Error when the sizes differ.
ConfidenceInterval paired_difference_ci(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b,
                                        const BootstrapOptions& options = {});

}  // namespace handoff::eval
