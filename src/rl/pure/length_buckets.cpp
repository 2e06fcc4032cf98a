#include "rl/pure/length_buckets.h"

#include <algorithm>
#include <numeric>

namespace handoff {

std::vector<std::vector<size_t>> length_buckets(const std::vector<int64_t>& lengths, int64_t max_tokens) {
  std::vector<size_t> order(lengths.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return lengths[a] < lengths[b]; });
  std::vector<std::vector<size_t>> buckets;
  for (size_t i : order) {
    // Ascending lengths: row i is the longest of its bucket, so the bucket pads to lengths[i].
    if (buckets.empty() || static_cast<int64_t>(buckets.back().size() + 1) * lengths[i] > max_tokens)
      buckets.emplace_back();
    buckets.back().push_back(i);
  }
  return buckets;
}

}  // namespace handoff
