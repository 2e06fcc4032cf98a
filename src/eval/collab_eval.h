#pragma once
// The collaborative system measured end to end (`handoff eval --cloud URL`): every held-out query goes
// through the Collaborator — the device answers or hands off, hand-offs go to the real cloud over HTTP — and
// the final answer is verified. Per difficulty: accuracy, cloud-call rate, tokens and latency of each side.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collab/collaborator.h"
#include "tasks/task.h"

namespace handoff {

struct CollabStats {
  int difficulty = 0;  // -1: all difficulties together
  int64_t n = 0;
  double accuracy = 0;                         // final answer correct, whoever gave it
  double call_rate = 0;                        // the device handed off
  double device_correct = 0;                   // answered on the device and correct (fraction of n)
  double fallback_rate = 0;                    // the cloud failed and the device answered instead
  double device_tokens = 0, cloud_tokens = 0;  // per query (cloud: the completion tokens it billed)
  double cloud_prompt_tokens = 0;              // per query: the prompt tokens the cloud billed
  double cloud_no_answer = 0;  // fraction of queries the cloud answered with no answer in any form
  double device_ms = 0;        // per query, amortised over the batched device decode
  double cloud_ms = 0;  // per query: mean over all queries of the cloud round trip (0 where not called)
};

// Greedy device decisions on make_eval_set(task, difficulties, n, seed, split): the same items as `handoff
// eval`.
std::vector<CollabStats> evaluate_collab(Collaborator& collab, const Task& task,
                                         const std::vector<int>& difficulties, int64_t n_per_difficulty,
                                         uint64_t seed, Split split = Split::kTest);
std::string collab_eval_table(const std::vector<CollabStats>& stats);  // markdown; last row "all"
nlohmann::json collab_eval_json(const std::vector<CollabStats>& stats);

}  // namespace handoff
