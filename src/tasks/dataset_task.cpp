#include "tasks/dataset_task.h"

#include <algorithm>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/math_answer.h"
#include "tasks/sampling.h"

namespace handoff {

DatasetTask::DatasetTask(std::string name, std::vector<Problem> problems)
    : name_(std::move(name)), problems_(std::move(problems)) {
  if (problems_.empty()) throw Error("task " + name_ + " has no problems");
  min_difficulty_ = max_difficulty_ = problems_[0].difficulty;
  for (size_t i = 0; i < problems_.size(); ++i) {
    const int d = problems_[i].difficulty;
    min_difficulty_ = std::min(min_difficulty_, d);
    max_difficulty_ = std::max(max_difficulty_, d);
    by_difficulty_split_[{d, split_of(problems_[i].prompt)}].push_back(i);
  }
}

Problem DatasetTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  check_difficulty(*this, difficulty);
  auto it = by_difficulty_split_.find({difficulty, split});
  if (it == by_difficulty_split_.end())
    throw Error("task " + name_ + " has no " + (split == Split::kTest ? "test" : "train") +
                    " problems of difficulty " + std::to_string(difficulty),
                "choose another difficulty");
  const auto& idx = it->second;
  return problems_[idx[draw_int(rng, 0, static_cast<int>(idx.size()) - 1)]];
}

bool DatasetTask::verify(const Problem& problem, const std::string& answer_text) const {
  return math_answers_equal(answer_text, problem.answer);
}

std::string DatasetTask::solution(const Problem& problem) const {
  return std::string(kAnswerPrefix) + " " + problem.answer;
}

}  // namespace handoff
