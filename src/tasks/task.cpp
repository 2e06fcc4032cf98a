// Task-level helpers shared by every task: the train/test split and the registry of task names.
#include "tasks/task.h"

#include "tasks/sampling.h"

#include "common/error.h"
#include "tasks/carry_task.h"
#include "tasks/chain_task.h"
#include "tasks/countdown_task.h"
#include "tasks/dataset_task.h"
#include "tasks/hops_task.h"
#include "tasks/jsonl_dataset.h"
#include "tasks/wordmath_task.h"

namespace handoff {

Split split_of(const std::string& prompt) {
  // FNV-1a 64: fixed constants, so the split is the same on every machine and in every run. Splitting by
  // prompt (not by draw) keeps a test prompt out of training even when the generator repeats it.
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : prompt) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h % 8 == 0 ? Split::kTest : Split::kTrain;
}

std::vector<std::string> task_names() {
  return {"chain", "countdown", "wordmath", "carry", "hops"};
}

std::unique_ptr<Task> make_task(const std::string& name) {
  if (name == "chain") return std::make_unique<ChainTask>();
  if (name == "countdown") return std::make_unique<CountdownTask>();
  if (name == "wordmath") return std::make_unique<WordMathTask>();
  if (name == "carry") return std::make_unique<CarryTask>();
  if (name == "hops") return std::make_unique<HopsTask>();
  // Real data behind the same interface: "gsm8k:FILE.jsonl" (`#### 42` answers) or "math:FILE.jsonl"
  // (`\boxed{}` answers). The loaders name the file and line of anything malformed.
  for (const std::string kind : {"gsm8k", "math"}) {
    const std::string prefix = kind + ":";
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string path = name.substr(prefix.size());
    if (path.empty()) throw Error("task '" + name + "' names no file", "use " + prefix + "PATH.jsonl");
    auto problems = kind == "gsm8k" ? load_jsonl_dataset(path, kind) : load_math_jsonl(path, kind);
    return std::make_unique<DatasetTask>(kind, std::move(problems));
  }
  std::string known;
  for (const auto& n : task_names()) known += (known.empty() ? "" : ", ") + n;
  throw Error("unknown task '" + name + "'", "known tasks: " + known + ", gsm8k:FILE.jsonl, math:FILE.jsonl");
}

std::vector<int> resolve_difficulties(const Task& task, const std::vector<int>& requested) {
  std::vector<int> out = requested;
  if (out.empty())
    for (int d = task.min_difficulty(); d <= task.max_difficulty(); ++d) out.push_back(d);
  for (int d : out) check_difficulty(task, d);
  return out;
}

}  // namespace handoff
