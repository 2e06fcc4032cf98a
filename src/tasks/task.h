#pragma once
// A task: generator of problems with a difficulty knob, an exact verifier, and worked solutions for SFT.
#include <cstdint>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

namespace handoff {

enum class Split { kTrain, kTest };

struct Problem {
  std::string task;         // task name, e.g. "chain"
  std::string prompt;       // the query text the model sees (the user message)
  std::string answer;       // canonical final answer, e.g. "20"
  int difficulty = 0;       // the knob it was sampled at
  std::string source = {};  // "file:line" of a dataset item (empty for generated ones), for error messages
};

class Task {
 public:
  virtual ~Task() = default;
  virtual std::string name() const = 0;
  virtual int min_difficulty() const = 0;
  virtual int max_difficulty() const = 0;
  // Deterministic given the rng state. Draws until the problem falls in `split` (disjoint by prompt hash).
  virtual Problem sample(std::mt19937_64& rng, int difficulty, Split split) const = 0;
  // Exact check of a final answer text (what follows "Answer:" in a completion, trimmed).
  virtual bool verify(const Problem& problem, const std::string& answer_text) const = 0;
  // Worked chain of thought ending in "Answer: X" (no EOS token).
  virtual std::string solution(const Problem& problem) const = 0;
};

// A synthetic generator (chain, countdown, wordmath): its name and difficulty range are fixed when it is
// made; subclasses sample, verify and solve.
class SyntheticTask : public Task {
 public:
  std::string name() const final { return name_; }
  int min_difficulty() const final { return min_difficulty_; }
  int max_difficulty() const final { return max_difficulty_; }

 protected:
  SyntheticTask(std::string name, int min_difficulty, int max_difficulty)
      : name_(std::move(name)), min_difficulty_(min_difficulty), max_difficulty_(max_difficulty) {}

 private:
  std::string name_;
  int min_difficulty_, max_difficulty_;
};

// Split membership by a stable hash of the prompt: about 1 in 8 prompts belongs to the test split.
Split split_of(const std::string& prompt);

// The difficulties to use: `requested`, each checked against the task's range (Error naming the range), or
// the task's whole range when `requested` is empty.
std::vector<int> resolve_difficulties(const Task& task, const std::vector<int>& requested);

// Names: "chain" (default), "countdown", "wordmath", "carry", "hops". Throws Error listing the known names
// otherwise.
std::unique_ptr<Task> make_task(const std::string& name);
std::vector<std::string> task_names();

}  // namespace handoff
