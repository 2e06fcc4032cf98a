// Adaptive prompt filtering: paper §3.3 (D_b¹, D_b², |D_b²| ≤ ρ|D_b¹|, random choice when the cap binds).
#include "rl/pure/prompt_filter.h"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <string>

#include "common/error.h"

namespace handoff {
namespace {

// Uniform in [0, n) by rejection: the same sequence on every standard library (unlike the std distributions).
uint64_t uniform_below(std::mt19937_64& rng, uint64_t n) {
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = rng();
  } while (x >= limit);
  return x % n;
}

void check(const PromptOutcome& o, size_t index) {
  if (o.group_size < 2) {
    throw Error("prompt filter: prompt " + std::to_string(index) + " has a group of " +
                    std::to_string(o.group_size) + " samples",
                "sample G >= 2 responses per prompt (the paper uses G = 8)");
  }
  if (o.local_correct_count < 0 || o.local_correct_count > o.group_size) {
    throw Error("prompt filter: prompt " + std::to_string(index) + " has " +
                    std::to_string(o.local_correct_count) + " correct samples out of " +
                    std::to_string(o.group_size),
                "count the locally correct samples of the group (0..G)");
  }
}

}  // namespace

FilterResult filter_prompts(const std::vector<PromptOutcome>& batch, BudgetController& budget,
                            std::mt19937_64& rng) {
  FilterResult out;
  for (size_t i = 0; i < batch.size(); ++i) {
    check(batch[i], i);
    if (batch[i].local_correct_count > 0) {
      out.d1.push_back(static_cast<int>(i));
    } else if (batch[i].cloud_correct) {
      out.d2_candidates.push_back(static_cast<int>(i));
    }
  }

  out.d2_cap = budget.allow(out.num_d1(), out.num_d2_candidates());
  // Choose d2_cap candidates uniformly at random: a partial Fisher-Yates shuffle.
  std::vector<int> pool = out.d2_candidates;
  const size_t take = static_cast<size_t>(out.d2_cap);
  if (take < pool.size()) {
    for (size_t i = 0; i < take; ++i) std::swap(pool[i], pool[i + uniform_below(rng, pool.size() - i)]);
  }
  out.d2_kept.assign(pool.begin(), pool.begin() + static_cast<std::ptrdiff_t>(take));
  std::sort(out.d2_kept.begin(), out.d2_kept.end());

  std::merge(out.d1.begin(), out.d1.end(), out.d2_kept.begin(), out.d2_kept.end(),
             std::back_inserter(out.kept));
  for (size_t i = 0, k = 0; i < batch.size(); ++i) {
    if (k < out.kept.size() && out.kept[k] == static_cast<int>(i)) {
      ++k;
    } else {
      out.dropped.push_back(static_cast<int>(i));
    }
  }
  return out;
}

}  // namespace handoff
