#include "tasks/carry_task.h"

#include <algorithm>
#include <cmath>
#include <cstdint>

#include "common/error.h"
#include "protocol/response.h"
#include "tasks/answer.h"
#include "tasks/sampling.h"

namespace handoff {

namespace {

constexpr int kK = CarryTask::kSteps;
constexpr int kStepValues = 18;
using ClassModel = CarryTask::ClassModel;

// Step index 0..17 <-> signed step -9..-1, +1..+9.
int step_of(int j) {
  return j < 9 ? j - 9 : j - 8;
}
bool carries(int ones, int step) {
  return ones + step < 0 || ones + step > 9;
}
int next_ones(int ones, int step) {
  return (ones + step + 10) % 10;
}

// Whether step index j has the sign that `pattern` gives step i: the signs alternate, pattern 0 is
// "+ - + -", pattern 1 is "- + - +".
bool sign_fits(int pattern, int i, int j) {
  const bool plus = (i + pattern) % 2 == 0;
  return plus == (j >= 9);
}

// reach[pattern][i][u][n] for the current weights (see the header).
void compute_reach(ClassModel& m, int target_carries) {
  for (int pattern = 0; pattern < ClassModel::kPatterns; ++pattern) {
    auto& reach = m.reach[pattern];
    for (auto& by_u : reach)
      for (auto& by_n : by_u) by_n.fill(0.0);
    for (int u = 0; u < 10; ++u) reach[kK][u][target_carries] = 1.0;
    for (int i = kK - 1; i >= 0; --i)
      for (int u = 0; u < 10; ++u)
        for (int n = 0; n <= i; ++n) {
          double total = 0.0;
          for (int j = 0; j < kStepValues; ++j) {
            if (!sign_fits(pattern, i, j)) continue;
            const int s = step_of(j);
            total += m.step_weight[i][j] * reach[i + 1][next_ones(u, s)][n + (carries(u, s) ? 1 : 0)];
          }
          reach[i][u][n] = total;
        }
  }
}

// Total weight of the class's items with sign pattern `pattern` (before the pattern's own factor).
double pattern_mass(const ClassModel& m, int pattern) {
  double z = 0.0;
  for (int u = 0; u < 10; ++u) z += m.start_weight[u] * m.reach[pattern][0][u][0];
  return z;
}

// The exact marginals of Q_c under the current weights (per pattern: a forward pass times reach).
void compute_marginals(ClassModel& m) {
  double z = 0.0;
  for (int pattern = 0; pattern < ClassModel::kPatterns; ++pattern)
    z += m.pattern_weight[pattern] * pattern_mass(m, pattern);
  m.start_marginal.fill(0.0);
  for (auto& row : m.step_marginal) row.fill(0.0);
  for (int pattern = 0; pattern < ClassModel::kPatterns; ++pattern) {
    const auto& reach = m.reach[pattern];
    const double h = m.pattern_weight[pattern] / z;
    m.pattern_marginal[pattern] = h * pattern_mass(m, pattern);
    std::array<std::array<double, kK + 1>, 10> fwd{}, nxt{};
    for (int u = 0; u < 10; ++u) {
      fwd[u][0] = h * m.start_weight[u];
      m.start_marginal[u] += fwd[u][0] * reach[0][u][0];
    }
    for (int i = 0; i < kK; ++i) {
      for (auto& row : nxt) row.fill(0.0);
      for (int u = 0; u < 10; ++u)
        for (int n = 0; n <= i; ++n) {
          if (fwd[u][n] == 0.0) continue;
          for (int j = 0; j < kStepValues; ++j) {
            if (!sign_fits(pattern, i, j)) continue;
            const int s = step_of(j);
            const int u2 = next_ones(u, s), n2 = n + (carries(u, s) ? 1 : 0);
            const double w = fwd[u][n] * m.step_weight[i][j];
            m.step_marginal[i][j] += w * reach[i + 1][u2][n2];
            nxt[u2][n2] += w;
          }
        }
      fwd = nxt;
    }
  }
}

// Largest deviation from the uniform targets; NaN (a diverged fit) counts as 1.
double max_marginal_error(const ClassModel& m) {
  double err = 0.0;
  auto off = [&](double p, double target) {
    err = std::max(err, std::isfinite(p) ? std::fabs(p - target) : 1.0);
  };
  for (double p : m.start_marginal) off(p, 0.1);
  for (const auto& row : m.step_marginal)
    for (double p : row) off(p, 1.0 / kStepValues);
  for (double p : m.pattern_marginal) off(p, 1.0 / ClassModel::kPatterns);
  return err;
}

// Divides `weights` by their largest entry (keeps the factors away from overflow and underflow).
template <size_t N>
void normalise(std::array<double, N>& weights) {
  const double top = *std::max_element(weights.begin(), weights.end());
  for (double& w : weights) w /= top;
}

// Iterative proportional fitting: rescale one factor at a time so its marginal is uniform. Deterministic
// (plain double arithmetic, fixed order); converges geometrically, checked at the end.
ClassModel fit_class(int target_carries) {
  ClassModel m;
  m.start_weight.fill(1.0);
  for (auto& row : m.step_weight) row.fill(1.0);
  m.pattern_weight.fill(1.0);
  for (int sweep = 0; sweep < 5000; ++sweep) {
    compute_reach(m, target_carries);
    compute_marginals(m);
    if (max_marginal_error(m) < 1e-13) break;
    for (int pattern = 0; pattern < ClassModel::kPatterns; ++pattern)
      m.pattern_weight[pattern] *= (1.0 / ClassModel::kPatterns) / m.pattern_marginal[pattern];
    normalise(m.pattern_weight);
    compute_marginals(m);
    for (int u = 0; u < 10; ++u) m.start_weight[u] *= 0.1 / m.start_marginal[u];
    normalise(m.start_weight);
    compute_reach(m, target_carries);
    for (int i = 0; i < kK; ++i) {
      compute_marginals(m);
      for (int j = 0; j < kStepValues; ++j)
        m.step_weight[i][j] *= (1.0 / kStepValues) / m.step_marginal[i][j];
      normalise(m.step_weight[i]);
      compute_reach(m, target_carries);
    }
  }
  compute_reach(m, target_carries);
  compute_marginals(m);
  if (!(max_marginal_error(m) <= 1e-9))
    throw Error("carry: the sampler for " + std::to_string(target_carries) +
                    " carries did not reach uniform marginals (error " +
                    std::to_string(max_marginal_error(m)) + ")",
                "a change to CarryTask's constants made a class infeasible; revert it");
  return m;
}

const std::vector<ClassModel>& fitted_classes() {
  static const std::vector<ClassModel> classes = [] {
    std::vector<ClassModel> out;
    for (int c = 0; c <= kK; ++c) out.push_back(fit_class(c));
    return out;
  }();
  return classes;
}

// Uniform double in [0, 1) from the top 53 bits: fixed by the standard, like draw_int.
double draw_unit(std::mt19937_64& rng) {
  return static_cast<double>(rng() >> 11) * 0x1.0p-53;
}

// Index i with probability weights[i] / sum (weights non-negative, not all zero).
template <size_t N>
int draw_weighted(std::mt19937_64& rng, const std::array<double, N>& weights) {
  double total = 0.0;
  for (double w : weights) total += w;
  double r = draw_unit(rng) * total;
  int last = 0;
  for (size_t i = 0; i < N; ++i) {
    if (weights[i] <= 0.0) continue;
    last = static_cast<int>(i);
    if (r < weights[i]) return last;
    r -= weights[i];
  }
  return last;  // rounding at the top end
}

struct CarryChain {
  int start = 0;
  std::array<int, kK> steps{};
};

// Inverse of the prompt format "Q:<70..99>( +dd| -dd) x 4?" (operands 11..39, ones digit not 0); anything
// else is an Error.
CarryChain parse_prompt(const std::string& p) {
  auto fail = [&]() -> CarryChain {
    throw Error("carry: cannot parse prompt '" + p + "'", "expected like Q:87 +24 -13 +38 -29?");
  };
  if (p.size() != 5 + 4 * kK || p.compare(0, 2, "Q:") != 0 || p.back() != '?') return fail();
  auto digit = [](char c) { return c >= '0' && c <= '9'; };
  if (!digit(p[2]) || !digit(p[3])) return fail();
  CarryChain c;
  c.start = (p[2] - '0') * 10 + (p[3] - '0');
  if (c.start < CarryTask::kMinTens * 10 || c.start > CarryTask::kMaxTens * 10 + 9) return fail();
  for (int i = 0; i < kK; ++i) {
    const size_t at = 4 + 4 * i;
    if (p[at] != ' ' || (p[at + 1] != '+' && p[at + 1] != '-') ||
        p[at + 2] < '0' + CarryTask::kMinOperandTens || p[at + 2] > '0' + CarryTask::kMaxOperandTens ||
        p[at + 3] < '1' || p[at + 3] > '9')
      return fail();
    c.steps[i] = (p[at + 1] == '+' ? 1 : -1) * ((p[at + 2] - '0') * 10 + (p[at + 3] - '0'));
  }
  return c;
}

}  // namespace

CarryTask::CarryTask() : classes_(fitted_classes()) {}

const CarryTask::ClassModel& CarryTask::class_model(int difficulty) const {
  check_difficulty(*this, difficulty);
  return classes_[difficulty - kMinDifficulty];
}

Problem CarryTask::sample(std::mt19937_64& rng, int difficulty, Split split) const {
  const ClassModel& m = class_model(difficulty);
  return sample_in_split(*this, difficulty, split, [&] {
    // Exact draw from Q_c: each choice weighted by its factor times the weight of the completions that still
    // end with the class's carry count (so no draw is ever rejected for its class).
    const int tens = draw_int(rng, kMinTens, kMaxTens);
    std::array<double, ClassModel::kPatterns> pattern_w{};
    for (int pattern = 0; pattern < ClassModel::kPatterns; ++pattern)
      pattern_w[pattern] = m.pattern_weight[pattern] * pattern_mass(m, pattern);
    const int pattern = draw_weighted(rng, pattern_w);
    const auto& reach = m.reach[pattern];
    std::array<double, 10> start_w{};
    for (int u = 0; u < 10; ++u) start_w[u] = m.start_weight[u] * reach[0][u][0];
    int ones = draw_weighted(rng, start_w);
    int value = tens * 10 + ones;
    std::string prompt = "Q:" + std::to_string(value);
    int n = 0;
    for (int i = 0; i < kSteps; ++i) {
      std::array<double, kStepValues> w{};
      for (int j = 0; j < kStepValues; ++j) {
        const int s = step_of(j);
        if (sign_fits(pattern, i, j))
          w[j] = m.step_weight[i][j] * reach[i + 1][next_ones(ones, s)][n + (carries(ones, s) ? 1 : 0)];
      }
      const int s = step_of(draw_weighted(rng, w));  // the operand's signed ones digit
      const int operand = draw_int(rng, kMinOperandTens, kMaxOperandTens) * 10 + (s > 0 ? s : -s);
      n += carries(ones, s) ? 1 : 0;
      ones = next_ones(ones, s);
      value += s > 0 ? operand : -operand;
      prompt += std::string(" ") + (s > 0 ? '+' : '-') + std::to_string(operand);
    }
    prompt += "?";
    if (n != difficulty - kMinDifficulty)
      throw Error("carry: internal error: drew " + std::to_string(n) + " carries for difficulty " +
                  std::to_string(difficulty));
    return Problem{name(), prompt, std::to_string(value), difficulty};
  });
}

bool CarryTask::verify(const Problem& problem, const std::string& answer_text) const {
  return numeric_answers_equal(answer_text, problem.answer);
}

std::string CarryTask::solution(const Problem& problem) const {
  const CarryChain c = parse_prompt(problem.prompt);
  std::string out;
  int value = c.start;
  for (int d : c.steps) {
    const int next = value + d;
    out += std::to_string(value) + (d > 0 ? "+" : "-") + std::to_string(d > 0 ? d : -d) + "=" +
           std::to_string(next) + " ";
    value = next;
  }
  return out + std::string(kAnswerPrefix) + " " + std::to_string(value);
}

}  // namespace handoff
