// Cloud-call budget across steps: paper §3.1 (ρ) and §3.3 (|D_b²| ≤ ρ|D_b¹|), with the remainder carried.
#include "rl/pure/budget.h"

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>

#include "common/error.h"

namespace handoff {
namespace {

// ρ·|D¹| in floating point can land a hair below an integer (3/7 · 7 = 2.9999…); do not lose that unit.
constexpr double kRoundingSlack = 1e-9;

std::string num(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

}  // namespace

double budget_from_call_rate(double call_rate) {
  if (!std::isfinite(call_rate) || call_rate <= 0 || call_rate >= 1) {
    throw Error("max call rate " + num(call_rate) + " is outside (0, 1)",
                "give the fraction of queries allowed to call the cloud, e.g. 0.3");
  }
  return call_rate / (1.0 - call_rate);
}

BudgetController::BudgetController(double rho, bool carry_remainder)
    : rho_(rho), carry_remainder_(carry_remainder) {
  if (!std::isfinite(rho) || rho <= 0) {
    throw Error(
        "budget rho " + num(rho) + " is not a finite positive number",
        "rho is cloud calls per local answer, e.g. 3/7 for a 30 % call rate (or set a max call rate)");
  }
}

int BudgetController::allow(int d1_count, int d2_candidates) {
  if (d1_count < 0 || d2_candidates < 0) {
    throw Error("budget: negative prompt counts (|D1| = " + std::to_string(d1_count) +
                    ", D2 candidates = " + std::to_string(d2_candidates) + ")",
                "a wiring bug in the caller");
  }
  const double fresh = rho_ * d1_count;
  // Paper §3.3 cap, per batch (strict) or with at most one unit of unspent budget carried in.
  const double credit = carry_remainder_ ? std::min(credit_, 1.0) + fresh : fresh;
  const int cap =
      static_cast<int>(std::min(std::floor(credit + kRoundingSlack), static_cast<double>(d2_candidates)));
  const int keep = std::max(0, cap);
  credit_ = carry_remainder_ ? std::max(0.0, credit - keep) : 0.0;
  return keep;
}

void BudgetController::restore_credit(double credit) {
  if (!std::isfinite(credit) || credit < 0) {
    throw Error("budget: saved credit " + num(credit) + " is not a finite number >= 0",
                "the checkpoint's budget state is damaged; resume from another checkpoint");
  }
  credit_ = carry_remainder_ ? credit : 0.0;
}

}  // namespace handoff
