#include "tasks/countdown_task.h"

#include <algorithm>
#include <map>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/expression.h"
#include "tasks/sampling.h"

namespace handoff {

namespace {

// Redraws of numbers/tree allowed per problem before giving up (targets over 999 are common at n = 5).
constexpr int kMaxTreeAttempts = 1000;

// A partial expression while the random tree is built: its value, its text, and its precedence
// (0 = + -, 1 = * /, 2 = a literal or parenthesised) for minimal parentheses.
struct Node {
  int64_t value;
  std::string text;
  int prec;
};

int precedence(char op) {
  return op == '+' || op == '-' ? 0 : 1;
}

// Minimal parentheses: a lower-precedence operand always needs them; an equal-precedence right operand
// needs them after '-' and '/' (a-(b-c) != a-b-c). Re-parsing the text gives the same value.
Node combine(const Node& a, char op, const Node& b, int64_t value) {
  int p = precedence(op);
  std::string l = a.prec < p ? "(" + a.text + ")" : a.text;
  bool wrap_r = b.prec < p || (b.prec == p && (op == '-' || op == '/'));
  std::string r = wrap_r ? "(" + b.text + ")" : b.text;
  return Node{value, l + op + r, p};
}

// Operations on (a, b) whose result is a positive integer and which are not no-ops (x*1, x/1): the larger
// operand first for '-' and '/'.
struct Move {
  char op;
  bool swap;  // evaluate b op a
  int64_t value;
};

std::vector<Move> legal_moves(int64_t a, int64_t b) {
  std::vector<Move> m;
  m.push_back({'+', false, a + b});
  if (a != b) m.push_back({'-', a<b, a> b ? a - b : b - a});
  if (a > 1 && b > 1) m.push_back({'*', false, a * b});
  int64_t hi = std::max(a, b), lo = std::min(a, b);
  if (lo > 1 && hi % lo == 0) m.push_back({'/', a < b, hi / lo});
  return m;
}

// One attempt at a puzzle with n numbers; nullopt when the target is rejected.
std::optional<Problem> draw_puzzle(std::mt19937_64& rng, int n, const std::string& task_name) {
  std::vector<int64_t> numbers;
  std::vector<Node> pool;
  for (int i = 0; i < n; ++i) {
    numbers.push_back(draw_int(rng, 1, CountdownTask::kMaxNumber));
    pool.push_back(Node{numbers.back(), std::to_string(numbers.back()), 2});
  }
  while (pool.size() > 1) {
    int i = draw_int(rng, 0, static_cast<int>(pool.size()) - 1);
    int j = draw_int(rng, 0, static_cast<int>(pool.size()) - 2);
    if (j >= i) ++j;
    auto moves = legal_moves(pool[i].value, pool[j].value);
    const Move& mv = moves[draw_int(rng, 0, static_cast<int>(moves.size()) - 1)];
    if (mv.value > 1000000) return std::nullopt;  // far beyond any target we keep
    Node merged =
        mv.swap ? combine(pool[j], mv.op, pool[i], mv.value) : combine(pool[i], mv.op, pool[j], mv.value);
    pool.erase(pool.begin() + std::max(i, j));
    pool.erase(pool.begin() + std::min(i, j));
    pool.push_back(std::move(merged));
  }
  int64_t target = pool[0].value;
  if (target < 1 || target > CountdownTask::kMaxTarget) return std::nullopt;
  if (std::find(numbers.begin(), numbers.end(), target) != numbers.end()) return std::nullopt;
  std::string prompt = "C:";
  for (size_t i = 0; i < numbers.size(); ++i) prompt += (i ? " " : "") + std::to_string(numbers[i]);
  prompt += "=" + std::to_string(target) + "?";
  return Problem{task_name, prompt, pool[0].text, n};
}

}  // namespace

CountdownPuzzle parse_countdown_prompt(const std::string& prompt) {
  auto fail = [&]() -> CountdownPuzzle {
    throw Error("countdown: cannot parse prompt '" + prompt + "'", "expected like C:3 5 2 7=16?");
  };
  if (prompt.size() < 6 || prompt.compare(0, 2, "C:") != 0 || prompt.back() != '?') return fail();
  size_t eq = prompt.find('=');
  if (eq == std::string::npos) return fail();
  CountdownPuzzle p;
  auto read_int = [&](const std::string& s) -> int64_t {
    if (s.empty() || s.size() > 9 || s.find_first_not_of("0123456789") != std::string::npos) fail();
    return std::stoll(s);
  };
  std::string list = prompt.substr(2, eq - 2);
  size_t start = 0;
  while (true) {
    size_t sp = list.find(' ', start);
    p.numbers.push_back(
        read_int(list.substr(start, sp == std::string::npos ? std::string::npos : sp - start)));
    if (sp == std::string::npos) break;
    start = sp + 1;
  }
  p.target = read_int(prompt.substr(eq + 1, prompt.size() - eq - 2));
  return p;
}

Problem CountdownTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  return sample_in_split(*this, difficulty, split, [&] {
    for (int attempt = 0; attempt < kMaxTreeAttempts; ++attempt)
      if (auto p = draw_puzzle(rng, difficulty, name())) return *p;
    throw Error("countdown: no acceptable puzzle with " + std::to_string(difficulty) + " numbers in " +
                std::to_string(kMaxTreeAttempts) + " draws");
  });
}

bool CountdownTask::verify(const Problem& problem, const std::string& answer_text) const {
  CountdownPuzzle puzzle = parse_countdown_prompt(problem.prompt);
  auto v = evaluate_expression(answer_text);
  if (!v || v->value != Rational{puzzle.target, 1}) return false;
  std::map<int64_t, int> available;
  for (int64_t x : puzzle.numbers) ++available[x];
  for (int64_t x : v->literals)
    if (--available[x] < 0) return false;  // not given, or used more often than given
  return true;
}

std::string CountdownTask::solution(const Problem& problem) const {
  auto v = evaluate_expression(problem.answer);
  if (!v) throw Error("countdown: the stored answer '" + problem.answer + "' is not an expression");
  std::string out;
  for (const ExprStep& s : v->steps)
    out += s.lhs.to_string() + s.op + s.rhs.to_string() + "=" + s.result.to_string() + " ";
  return out + std::string(kAnswerPrefix) + " " + problem.answer;
}

}  // namespace handoff
