// The call-rate controller (rl/pure/call_rate_dual.h): dual ascent on λ, bounds, bad settings, and
// convergence of a toy policy's call rate to the target from above and from below.
#include <gtest/gtest.h>

#include <cmath>

#include "common/error.h"
#include "rl/pure/call_rate_dual.h"

using namespace handoff;

TEST(CallRateDualTest, LambdaRisesAboveTheTargetAndFallsBelowItButNeverUnderZero) {
  CallRateDual d(0.3, 2.0, 0.0, 5.0);  // K_p = 0: plain dual ascent, the price is λ
  EXPECT_EQ(d.lambda(), 0.0);
  EXPECT_NEAR(d.update(0.5), 0.4, 1e-12);  // 0 + 2 (0.5 − 0.3)
  EXPECT_NEAR(d.update(0.4), 0.6, 1e-12);
  EXPECT_NEAR(d.update(0.2), 0.4, 1e-12);
  EXPECT_EQ(d.update(0.0), 0.0);  // 0.4 − 0.6 clamps at 0
  EXPECT_EQ(d.update(0.0), 0.0);
  for (int i = 0; i < 100; ++i) d.update(1.0);
  EXPECT_EQ(d.lambda(), 5.0);  // lambda_max
  EXPECT_EQ(d.handoff_cost(), 5.0);
}

TEST(CallRateDualTest, ThePriceAddsAProportionalTermOnTheLastError) {
  CallRateDual d(0.3, 1.0, 2.0, 5.0);
  EXPECT_EQ(d.handoff_cost(), 0.0);                    // nothing measured yet
  EXPECT_NEAR(d.update(0.5), 0.2 + 2.0 * 0.2, 1e-12);  // λ = 0.2, price λ + K_p·0.2
  EXPECT_NEAR(d.lambda(), 0.2, 1e-12);
  EXPECT_EQ(d.update(0.2), 0.0);  // λ 0.1, price 0.1 − 2·0.1 < 0 clamps to 0
  EXPECT_NEAR(d.lambda(), 0.1, 1e-12);
  EXPECT_EQ(d.handoff_cost(), 0.0);
  // Resume restores the price exactly.
  CallRateDual r(0.3, 1.0, 2.0, 5.0);
  r.restore(d.lambda(), d.last_rate());
  EXPECT_EQ(r.handoff_cost(), d.handoff_cost());
  EXPECT_EQ(r.update(0.45), d.update(0.45));
}

TEST(CallRateDualTest, BadSettingsAndInputsAreErrors) {
  EXPECT_THROW(CallRateDual(0.0, 1.0, 0.0, 5.0), Error);
  EXPECT_THROW(CallRateDual(1.0, 1.0, 0.0, 5.0), Error);
  EXPECT_THROW(CallRateDual(std::nan(""), 1.0, 0.0, 5.0), Error);
  EXPECT_THROW(CallRateDual(0.3, 1.0, -1.0, 5.0), Error);
  try {
    CallRateDual(0.3, 0.0, 0.0, 5.0);
    FAIL() << "a zero step was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("never moves"), std::string::npos) << e.what();
  }
  EXPECT_THROW(CallRateDual(0.3, -1.0, 0.0, 5.0), Error);
  EXPECT_THROW(CallRateDual(0.3, 1.0, 0.0, 0.0), Error);
  CallRateDual d(0.3, 1.0, 0.0, 5.0);
  EXPECT_THROW(d.update(1.5), Error);
  EXPECT_THROW(d.update(-0.1), Error);
  EXPECT_THROW(d.restore(6.0, -1), Error);
  EXPECT_THROW(d.restore(-1.0, -1), Error);
  EXPECT_THROW(d.restore(1.0, 1.5), Error);
  d.restore(1.25, -1);
  EXPECT_EQ(d.lambda(), 1.25);
  // Two-sided: λ may go below 0 down to −lambda_max, and a saved negative λ restores.
  CallRateDual t(0.3, 1.0, 0.0, 5.0, true);
  EXPECT_NEAR(t.update(0.0), -0.3, 1e-12);
  EXPECT_NEAR(t.handoff_cost(), -0.3, 1e-12);
  EXPECT_THROW(d.restore(-0.3, -1), Error);
  EXPECT_NO_THROW(t.restore(-0.3, 0.0));
  EXPECT_THROW(t.restore(-6.0, 0.0), Error);
}

// --dual-bonus-sampled: while λ ≤ 0 and the greedy rate is below the target, the error is taken from the
// larger of the greedy and the sampled rate, and neither λ nor the price may turn into a price from it.
TEST(CallRateDualTest, TheBonusFollowsTheSampledRateAndIsWithdrawnNotTurnedIntoAPrice) {
  CallRateDual g(0.3, 1.0, 0.5, 2.0, true, true), p(0.3, 1.0, 0.5, 2.0, true);
  // Both below the target: the bonus grows by the sampled rate's (smaller) shortfall, not the greedy one's.
  EXPECT_NEAR(g.update(0.0, 0.1), -0.2 - 0.5 * 0.2, 1e-12);  // λ −0.2, price λ + K_p (0.1 − 0.3)
  EXPECT_NEAR(p.update(0.0, 0.1), -0.3 - 0.5 * 0.3, 1e-12);  // plain: the greedy rate's shortfall
  EXPECT_NEAR(g.lambda(), -0.2, 1e-12);
  EXPECT_DOUBLE_EQ(g.last_sampled(), 0.1);
  // The samples call more than the target while the greedy rate lags at 0: the bonus is withdrawn up to 0,
  // and the price stays a bonus-or-nothing (the plain controller winds the bonus further up).
  EXPECT_EQ(g.update(0.0, 0.6), 0.0);  // λ −0.2 + 0.3 → capped at 0; price 0 + 0.15 → capped at 0
  EXPECT_EQ(g.lambda(), 0.0);
  EXPECT_NEAR(p.update(0.0, 0.6), -0.6 - 0.15, 1e-12);
  // At or above the target the greedy (deployed) rate alone sets the penalty, as before.
  EXPECT_NEAR(g.update(0.35, 0.9), 0.05 + 0.5 * 0.05, 1e-12);
  // With a price on (λ > 0) a greedy rate below the target lowers λ by the greedy rate, as before; once λ is
  // a bonus the samples' over-calling caps the price at 0.
  EXPECT_EQ(g.update(0.2, 0.9), 0.0);
  EXPECT_NEAR(g.lambda(), -0.05, 1e-12);  // 0.05 + (0.2 − 0.3)
  // No sampled rate known: the plain two-sided rule.
  CallRateDual u(0.3, 1.0, 0.5, 2.0, true, true);
  EXPECT_NEAR(u.update(0.0), -0.45, 1e-12);
  // Resume restores the price and the next step exactly.
  g.update(0.1, 0.2);
  CallRateDual r(0.3, 1.0, 0.5, 2.0, true, true);
  r.restore(g.lambda(), g.last_rate(), g.last_sampled());
  EXPECT_EQ(r.handoff_cost(), g.handoff_cost());
  EXPECT_EQ(r.update(0.1, 0.5), g.update(0.1, 0.5));
  // Bad settings and inputs.
  EXPECT_THROW(CallRateDual(0.3, 1.0, 0.5, 2.0, false, true), Error);  // one-sided: there is no bonus
  EXPECT_THROW(g.update(0.1, 1.5), Error);
  EXPECT_THROW(g.update(0.1, std::nan("")), Error);
  EXPECT_THROW(r.restore(-0.1, 0.1, 2.0), Error);
}

namespace {

// A toy collaborative policy: half the queries are easy (a local answer is right with probability 0.9), half
// hard (0.1). On each kind the policy hands off with probability σ(θ_k). Reward (§3.2 without format): α_a
// for a right local answer, α_c − λ for a hand-off (the cloud is always right). Unconstrained, the policy
// hands off every hard query and no easy one (rate 0.5, since α_a·0.1 < α_c < α_a·0.9). Exact gradient ascent
// on θ, PI dual control of the price from the exact call rate. Returns the call rate after `iters`, and its
// mean over the last quarter.
std::pair<double, double> toy_run(double target, double theta0, double kp = 1.0, int iters = 6000,
                                  bool two_sided = false) {
  const double alpha_a = 2.0, alpha_c = 0.7, q[2] = {0.9, 0.1};
  double theta[2] = {theta0, theta0};
  CallRateDual dual(target, 0.05, kp, 5.0, two_sided);
  auto sig = [](double x) { return 1.0 / (1.0 + std::exp(-x)); };
  double rate = 0, tail = 0;
  for (int it = 0; it < iters; ++it) {
    rate = 0.5 * (sig(theta[0]) + sig(theta[1]));
    dual.update(rate);
    for (int k = 0; k < 2; ++k) {
      const double p = sig(theta[k]);
      theta[k] += 1.0 * p * (1 - p) * (alpha_c - dual.handoff_cost() - alpha_a * q[k]);
    }
    if (it >= iters * 3 / 4) tail += rate / (iters / 4);
  }
  return {rate, tail};
}

}  // namespace

TEST(CallRateDualTest, AToyPolicyConvergesToTheTargetFromAboveAndBelow) {
  // Without control the toy settles at 0.5: the controller must bring it to each target.
  for (double target : {0.1, 0.2, 0.3, 0.4}) {
    for (double theta0 : {3.0, -3.0}) {  // starts calling 95 % / 5 % of queries
      const auto [last, mean] = toy_run(target, theta0);
      EXPECT_NEAR(last, target, 0.02) << "target " << target << " from θ0 " << theta0;
      EXPECT_NEAR(mean, target, 0.02) << "target " << target << " from θ0 " << theta0;
    }
  }
  // A target above what the reward asks for is not forced: λ stays 0 and the rate stays at the toy's 0.5.
  EXPECT_NEAR(toy_run(0.7, 0.0).first, 0.5, 0.02);
  // Two-sided, the price becomes a bonus below the target, and the rate tracks 0.7 too.
  EXPECT_NEAR(toy_run(0.7, 0.0, 1.0, 6000, true).first, 0.7, 0.02);
  EXPECT_NEAR(toy_run(0.7, 0.0, 1.0, 6000, true).second, 0.7, 0.02);
  // Why the proportional term: plain dual ascent (K_p = 0) only gets the time average right; the last iterate
  // is still swinging far from the target.
  const auto [last, mean] = toy_run(0.3, 3.0, 0.0);
  EXPECT_NEAR(mean, 0.3, 0.02);
  EXPECT_GT(std::abs(last - 0.3), 0.1);
}
