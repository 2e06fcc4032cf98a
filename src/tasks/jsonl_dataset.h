#pragma once
// Real question/answer data in GSM8K's JSONL form, for evaluating checkpoints on it:
//   {"question": "...", "answer": "worked solution lines\n#### 42"}
// Each line becomes Problem{task, prompt = question, answer = the text after "####" with commas removed,
// difficulty = the number of non-empty worked-solution lines before "####" (0 when there are none)}.
// Its answers are checked with math_answers_equal (tasks/math_answer.h) through DatasetTask.
#include <string>
#include <vector>

#include "tasks/task.h"

namespace handoff {

// Throws Error naming the file (and the 1-based line number where one applies) for a missing or unreadable
// file, a file with no problems, a line that is not JSON, a missing or non-string "question"/"answer", or an
// answer without "####" or with nothing after it. Blank lines are skipped.
std::vector<Problem> load_jsonl_dataset(const std::string& path, const std::string& task_name = "gsm8k");

// MATH (Hendrycks et al.) in JSONL form:
//   {"problem": "...", "solution": "... worked solution ... \\boxed{\\frac{3}{4}} ...", "level": "Level 3",
//   ...}
// Each line becomes Problem{task, prompt = problem, answer = the "answer" field when the line has one (as
// MATH-500 does), else the contents of the LAST \boxed{...} of the solution (balanced braces), difficulty =
// the level's number (0 when absent)}. Answers are compared with math_answers_equal (tasks/math_answer.h).
// Errors as for load_jsonl_dataset, plus a solution without a closed \boxed{} or with an empty one.
std::vector<Problem> load_math_jsonl(const std::string& path, const std::string& task_name = "math");

}  // namespace handoff
