#include "tasks/sampling.h"

#include <string>

#include "common/error.h"

namespace handoff {

int draw_int(std::mt19937_64& rng, int lo, int hi) {
  if (hi < lo) throw Error("draw_int: empty range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  uint64_t span = static_cast<uint64_t>(static_cast<int64_t>(hi) - lo) + 1;
  return static_cast<int>(lo + static_cast<int64_t>(rng() % span));
}

void check_difficulty(const Task& task, int difficulty) {
  if (difficulty < task.min_difficulty() || difficulty > task.max_difficulty())
    throw Error("difficulty " + std::to_string(difficulty) + " is outside " + task.name() + "'s range",
                "use a difficulty in [" + std::to_string(task.min_difficulty()) + ", " +
                    std::to_string(task.max_difficulty()) + "]");
}

Problem sample_in_split(const Task& task, int difficulty, Split split,
                        const std::function<Problem()>& draw_one) {
  check_difficulty(task, difficulty);
  for (int attempt = 0; attempt < kMaxSplitAttempts; ++attempt) {
    Problem p = draw_one();
    if (split_of(p.prompt) == split) return p;
  }
  throw Error(task.name() + ": no " + std::string(split == Split::kTest ? "test" : "train") +
                  " problem at difficulty " + std::to_string(difficulty) + " in " +
                  std::to_string(kMaxSplitAttempts) + " draws",
              "the generator has too few distinct prompts there; use another difficulty");
}

}  // namespace handoff
