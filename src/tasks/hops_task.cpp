#include "tasks/hops_task.h"

#include <array>
#include <string>
#include <utility>
#include <vector>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/answer.h"
#include "tasks/sampling.h"

namespace handoff {

namespace {

constexpr int kN = HopsTask::kNodes;
using Nodes = std::array<int, kN>;

struct Graph {
  int start = 0;
  Nodes next{}, step{};  // node index -> target index (0 is 'a'); node -> signed step in [-9,-1] u [1,9]
};

char label(int node) {
  return static_cast<char>('a' + node);
}

// "Q:23 e+5>e h-2>b ...?": the nodes in the order `order` (a permutation of 0..kN-1).
std::string format_prompt(const Graph& g, const Nodes& order) {
  std::string p = "Q:" + std::to_string(g.start);
  for (int node : order) {
    const int s = g.step[node];
    p += std::string(" ") + label(node) + (s > 0 ? '+' : '-') + std::to_string(s > 0 ? s : -s) + '>' +
         label(g.next[node]);
  }
  return p + "?";
}

// Inverse of format_prompt; the solution is rebuilt from the prompt alone.
Graph parse_prompt(const std::string& prompt) {
  const auto fail = [&]() -> Graph {
    throw Error("hops: cannot parse prompt '" + prompt + "'",
                "expected a start and every node a..h once, like Q:23 e+5>e h-2>b a-4>c ... f-6>h?");
  };
  if (prompt.size() != 5 + 6 * kN || prompt.compare(0, 2, "Q:") != 0 || prompt.back() != '?') return fail();
  if (prompt[2] < '1' || prompt[2] > '9' || prompt[3] < '0' || prompt[3] > '9') return fail();
  Graph g;
  g.start = (prompt[2] - '0') * 10 + (prompt[3] - '0');
  g.next.fill(-1);
  for (int i = 0; i < kN; ++i) {
    const size_t at = 4 + 6 * static_cast<size_t>(i);  // " e+5>e"
    const int node = prompt[at + 1] - 'a', target = prompt[at + 5] - 'a';
    if (prompt[at] != ' ' || node < 0 || node >= kN || g.next[node] >= 0 ||
        (prompt[at + 2] != '+' && prompt[at + 2] != '-') || prompt[at + 3] < '1' || prompt[at + 3] > '9' ||
        prompt[at + 4] != '>' || target < 0 || target >= kN)
      return fail();
    g.next[node] = target;
    g.step[node] = (prompt[at + 2] == '+' ? 1 : -1) * (prompt[at + 3] - '0');
  }
  return g;
}

// The walk from 'a' to the first node that points to itself; throws if it loops without one.
std::vector<int> walk(const Graph& g) {
  std::vector<int> path{0};
  while (g.next[path.back()] != path.back()) {
    path.push_back(g.next[path.back()]);
    if (path.size() > static_cast<size_t>(kN))
      throw Error("hops: the walk from 'a' never reaches a fixed point");
  }
  return path;
}

// A uniform permutation of the first `n` entries of `items` (Fisher-Yates on draw_int, the same everywhere).
void shuffle(Nodes& items, int n, std::mt19937_64& rng) {
  for (int i = n - 1; i > 0; --i) std::swap(items[i], items[draw_int(rng, 0, i)]);
}

// A uniform label in b..h other than `self`.
int draw_other(std::mt19937_64& rng, int self) {
  for (;;) {
    const int t = draw_int(rng, 1, kN - 1);
    if (t != self) return t;
  }
}

int final_value(const Graph& g) {
  int value = g.start;
  const std::vector<int> path = walk(g);
  for (size_t k = 0; k + 1 < path.size(); ++k) value += g.step[path[k]];
  return value;
}

}  // namespace

Problem HopsTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  return sample_in_split(*this, difficulty, split, [&] {
    Graph g;
    g.start = draw_int(rng, kMinStart, kMaxStart);
    for (int& s : g.step) s = (draw_int(rng, 0, 1) == 1 ? 1 : -1) * draw_int(rng, 1, 9);
    Nodes labels{};  // the path's labels: the first `difficulty` of a uniform shuffle of b..h
    for (int i = 0; i < kN - 1; ++i) labels[i] = i + 1;
    shuffle(labels, kN - 1, rng);
    std::array<bool, kN> on_path{};
    on_path[0] = true;
    int at = 0;
    for (int k = 0; k < difficulty; ++k) {
      g.next[at] = labels[k];
      at = labels[k];
      on_path[at] = true;
    }
    g.next[at] = at;  // the fixed point
    for (int i = 1; i < kN; ++i)
      if (!on_path[i]) g.next[i] = draw_other(rng, i);
    // The nodes in a uniform order, so that finding a node is a search by content, not by position.
    Nodes order{};
    for (int i = 0; i < kN; ++i) order[i] = i;
    shuffle(order, kN, rng);
    return Problem{name(), format_prompt(g, order), std::to_string(final_value(g)), difficulty};
  });
}

bool HopsTask::verify(const Problem& problem, const std::string& answer_text) const {
  return numeric_answers_equal(answer_text, problem.answer);
}

std::string HopsTask::solution(const Problem& problem) const {
  const Graph g = parse_prompt(problem.prompt);
  const std::vector<int> path = walk(g);
  std::string out;
  int value = g.start;
  for (size_t k = 0; k < path.size(); ++k) {
    const int node = path[k];
    out += std::string(1, label(node)) + ">" + label(g.next[node]) + " ";
    if (k + 1 == path.size()) break;
    const int s = g.step[node], next = value + s;
    out += std::to_string(value) + (s > 0 ? "+" : "-") + std::to_string(s > 0 ? s : -s) + "=" +
           std::to_string(next) + " ";
    value = next;
  }
  return out + std::string(kAnswerPrefix) + " " + std::to_string(value);
}

}  // namespace handoff
