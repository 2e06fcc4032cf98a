#include "tasks/chain_task.h"

#include <vector>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/answer.h"
#include "tasks/sampling.h"

namespace handoff {

namespace {

struct Chain {
  int start = 0;
  std::vector<int> deltas;  // signed, each in [-9, -1] or [1, 9]
};

// Inverse of the prompt format "Q:<start>( +d| -d)*?"; the solution is rebuilt from the prompt alone.
Chain parse_prompt(const std::string& prompt) {
  auto fail = [&]() -> Chain {
    throw Error("chain: cannot parse prompt '" + prompt + "'", "expected like Q:23 +4 -7?");
  };
  if (prompt.size() < 4 || prompt.compare(0, 2, "Q:") != 0 || prompt.back() != '?') return fail();
  Chain c;
  size_t i = 2;
  size_t end = prompt.size() - 1;
  size_t digits = 0;
  while (i < end && prompt[i] >= '0' && prompt[i] <= '9' && digits < 3) {
    c.start = c.start * 10 + (prompt[i++] - '0');
    ++digits;
  }
  if (digits == 0) return fail();
  while (i < end) {
    if (i + 3 > end || prompt[i] != ' ' || (prompt[i + 1] != '+' && prompt[i + 1] != '-') ||
        prompt[i + 2] < '1' || prompt[i + 2] > '9')
      return fail();
    int d = prompt[i + 2] - '0';
    c.deltas.push_back(prompt[i + 1] == '+' ? d : -d);
    i += 3;
  }
  if (c.deltas.empty()) return fail();
  return c;
}

}  // namespace

Problem ChainTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  return sample_in_split(*this, difficulty, split, [&] {
    int value = draw_int(rng, kMinStart, kMaxStart);
    std::string prompt = "Q:" + std::to_string(value);
    for (int k = 0; k < difficulty; ++k) {
      int d = draw_int(rng, 1, 9);
      bool plus = draw_int(rng, 0, 1) == 1;
      // With |d| <= 9 and 0 <= value <= 99 at least one sign keeps the value in range: flip if needed.
      if (plus && value + d > kMaxValue) plus = false;
      if (!plus && value - d < 0) plus = true;
      value += plus ? d : -d;
      prompt += std::string(" ") + (plus ? '+' : '-') + std::to_string(d);
    }
    prompt += "?";
    return Problem{name(), prompt, std::to_string(value), difficulty};
  });
}

bool ChainTask::verify(const Problem& problem, const std::string& answer_text) const {
  return numeric_answers_equal(answer_text, problem.answer);
}

std::string ChainTask::solution(const Problem& problem) const {
  Chain c = parse_prompt(problem.prompt);
  std::string out;
  int value = c.start;
  for (int d : c.deltas) {
    int next = value + d;
    out += std::to_string(value) + (d > 0 ? "+" : "-") + std::to_string(d > 0 ? d : -d) + "=" +
           std::to_string(next) + " ";
    value = next;
  }
  return out + std::string(kAnswerPrefix) + " " + std::to_string(value);
}

}  // namespace handoff
