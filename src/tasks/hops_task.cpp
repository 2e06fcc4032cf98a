#include "tasks/hops_task.h"

#include <array>
#include <string>
#include <utility>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/answer.h"
#include "tasks/sampling.h"

namespace handoff {

namespace {

using Pointers = std::array<int, HopsTask::kNodes>;  // node index -> target index (0 is 'a')

char label(int node) {
  return static_cast<char>('a' + node);
}

// "Q:g>x c>y ... k>z?": the pairs in the order `order` (a permutation of the nodes).
std::string format_prompt(const Pointers& next, const Pointers& order) {
  std::string p = "Q:";
  for (int i = 0; i < HopsTask::kNodes; ++i) {
    if (i > 0) p += ' ';
    p += label(order[i]);
    p += '>';
    p += label(next[order[i]]);
  }
  return p + "?";
}

// A uniform permutation of the first `n` entries of `items` (Fisher-Yates on draw_int, which is the same on
// every platform).
template <size_t N>
void shuffle(std::array<int, N>& items, int n, std::mt19937_64& rng) {
  for (int i = n - 1; i > 0; --i) std::swap(items[i], items[draw_int(rng, 0, i)]);
}

// Inverse of format_prompt; the solution is rebuilt from the prompt alone.
Pointers parse_prompt(const std::string& prompt) {
  const size_t expected = 2 + 4 * HopsTask::kNodes;
  if (prompt.size() != expected || prompt.compare(0, 2, "Q:") != 0 || prompt.back() != '?')
    throw Error("hops: cannot parse prompt '" + prompt + "'", "expected like Q:a>k b>c ... p>d?");
  Pointers next{};
  next.fill(-1);
  for (int i = 0; i < HopsTask::kNodes; ++i) {
    const size_t at = 2 + 4 * static_cast<size_t>(i);
    const int source = prompt[at] - 'a', target = prompt[at + 2] - 'a';
    if (source < 0 || source >= HopsTask::kNodes || next[source] >= 0 || prompt[at + 1] != '>' ||
        target < 0 || target >= HopsTask::kNodes || (i + 1 < HopsTask::kNodes && prompt[at + 3] != ' '))
      throw Error("hops: cannot parse prompt '" + prompt + "'",
                  "expected every node a..p once, like Q:g>k b>c ... a>d?");
    next[source] = target;
  }
  return next;
}

// The walk from 'a' to the first node that points to itself; throws if it loops without one.
std::vector<int> walk(const Pointers& next) {
  std::vector<int> path{0};
  while (next[path.back()] != path.back()) {
    path.push_back(next[path.back()]);
    if (path.size() > HopsTask::kNodes) throw Error("hops: the walk from 'a' never reaches a fixed point");
  }
  return path;
}

// A uniform label in b..p other than `self` (self may be 0, then any of b..p).
int draw_other(std::mt19937_64& rng, int self) {
  for (;;) {
    const int t = draw_int(rng, 1, HopsTask::kNodes - 1);
    if (t != self) return t;
  }
}

}  // namespace

Problem HopsTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  return sample_in_split(*this, difficulty, split, [&] {
    // The path's labels: the first `difficulty` of a uniform shuffle of b..p (Fisher-Yates with draw_int).
    Pointers order{};
    for (int i = 0; i < kNodes - 1; ++i) order[i] = i + 1;
    shuffle(order, kNodes - 1, rng);
    Pointers next{};
    std::array<bool, kNodes> on_path{};
    on_path[0] = true;
    int at = 0;
    for (int k = 0; k < difficulty; ++k) {
      next[at] = order[k];
      at = order[k];
      on_path[at] = true;
    }
    next[at] = at;  // the fixed point
    for (int i = 1; i < kNodes; ++i)
      if (!on_path[i]) next[i] = draw_other(rng, i);
    // The pairs in a uniform order, so that finding a node's pair is a search by content (an induction
    // lookup), not arithmetic on its position in the alphabet.
    Pointers listing{};
    for (int i = 0; i < kNodes; ++i) listing[i] = i;
    shuffle(listing, kNodes, rng);
    return Problem{name(), format_prompt(next, listing), std::string(1, label(at)), difficulty};
  });
}

bool HopsTask::verify(const Problem& problem, const std::string& answer_text) const {
  return trim(answer_text) == problem.answer;
}

std::string HopsTask::solution(const Problem& problem) const {
  const Pointers next = parse_prompt(problem.prompt);
  std::string out;
  for (int node : walk(next)) out += std::string(1, label(node)) + ">" + label(next[node]) + " ";
  return out + std::string(kAnswerPrefix) + " " + label(walk(next).back());
}

}  // namespace handoff
