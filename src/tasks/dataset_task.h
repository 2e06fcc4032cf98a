#pragma once
// A fixed set of real problems (GSM8K, MATH) behind the same Task interface as the synthetic generators, so
// evaluation and RL draw, verify and split them the same way. Difficulty is whatever the loader assigned
// (GSM8K: worked-solution lines; MATH: level 1-5). Answers are checked with math_answers_equal.
#include <map>
#include <vector>

#include "tasks/task.h"

namespace handoff {

class DatasetTask : public Task {
 public:
  // Throws Error when `problems` is empty.
  DatasetTask(std::string name, std::vector<Problem> problems);

  std::string name() const override { return name_; }
  int min_difficulty() const override { return min_difficulty_; }
  int max_difficulty() const override { return max_difficulty_; }
  // Uniform over the problems of that difficulty in that split (split_of(prompt)); Error naming the task,
  // difficulty and split when there are none.
  Problem sample(std::mt19937_64& rng, int difficulty, Split split) const override;
  bool verify(const Problem& problem, const std::string& answer_text) const override;
  // The datasets' worked solutions are not kept: only "Answer: <answer>".
  std::string solution(const Problem& problem) const override;

  const std::vector<Problem>& problems() const { return problems_; }

 private:
  std::string name_;
  std::vector<Problem> problems_;
  std::map<std::pair<int, Split>, std::vector<size_t>> by_difficulty_split_;
  int min_difficulty_ = 0, max_difficulty_ = 0;
};

}  // namespace handoff
