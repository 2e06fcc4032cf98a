#pragma once
// Rows cut into micro-batches of similar length (issue 18): the rows in order of length (stable), each
// bucket closed before its padded size — rows × its longest row — would pass `max_tokens` (at least one row
// each). Both the RL update (rl/policy_loss.h) and SFT (rl/sft.cpp) run their batches this way: padded to its
// longest row, a whole batch computes ~45 % padding.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace handoff {

// Indices into `lengths`, bucket by bucket.
std::vector<std::vector<size_t>> length_buckets(const std::vector<int64_t>& lengths, int64_t max_tokens);

}  // namespace handoff
