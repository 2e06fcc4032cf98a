// The policy-gradient loss (paper §3.3) on a tiny model: its gradient is exactly the group-level estimator
// −(1/|kept|) Σ_i A_i ∇log π_θ(y_i), computed here one response at a time by autograd; and the method
// registry's table.
#include <gtest/gtest.h>

#include <torch/torch.h>

#include "common/error.h"
#include "model/logprobs.h"
#include "rl/method_registry.h"
#include "rl/policy_loss.h"
#include "tiny_model.h"

using namespace handoff;

namespace {

// Every parameter's gradient, flattened into one vector.
at::Tensor flat_grad(CausalLM& m) {
  std::vector<at::Tensor> g;
  for (auto& p : m->parameters())
    g.push_back(p.grad().defined() ? p.grad().flatten().clone() : at::zeros_like(p).flatten());
  return at::cat(g);
}

PolicyBatch toy_batch() {
  PolicyBatch b;
  b.prompts = {{5, 6, 7}, {5, 6, 7}, {8, 9}, {10, 11, 12, 13}};
  b.completions = {{20, 21, 22, 2}, {23, 2}, {30, 31, 32, 33, 34}, {40}};
  b.advantages = {0.75f, -0.25f, 1.5f, -2.0f};
  for (const auto& c : b.completions) b.old_logprobs.push_back(std::vector<float>(c.size(), -1.0f));
  b.kept_prompts = 3;  // rows come from 3 kept prompts (rows with A = 0 were left out)
  return b;
}

}  // namespace

TEST(PolicyLossTest, GradientIsTheGroupLevelEstimator) {
  torch::manual_seed(3);
  CausalLM model(handoff::testing::tiny_model_config());
  model->train();
  const PolicyBatch b = toy_batch();

  model->zero_grad();
  policy_loss(model, b, PolicyLossOptions{}).backward();
  const at::Tensor got = flat_grad(model);

  // −(1/|kept|) Σ_i A_i ∇ Σ_t log π(y_i,t), one response per backward pass.
  at::Tensor want = at::zeros_like(got);
  for (size_t i = 0; i < b.advantages.size(); ++i) {
    model->zero_grad();
    auto lp = completion_logprobs(model, {b.prompts[i]}, {b.completions[i]}, PromptPass::kPerRow);
    lp.token_logprobs.sum().backward();
    want -= flat_grad(model) * (b.advantages[i] / static_cast<double>(b.kept_prompts));
  }
  ASSERT_GT(want.abs().max().item<double>(), 1e-4);  // a real gradient, not zeros on both sides
  EXPECT_LT((got - want).abs().max().item<double>(), 1e-5 * (1 + want.abs().max().item<double>()));
}

// --handoff-credit decision: a row's advantage is carried by its tokens from credit_from on, in one batch and
// in length micro-batches alike.
TEST(PolicyLossTest, DecisionCreditCarriesTheAdvantageFromItsTokenOn) {
  torch::manual_seed(4);
  CausalLM model(handoff::testing::tiny_model_config());
  model->train();
  PolicyBatch b = toy_batch();
  b.credit_from = {3, 0, 4, 0};  // rows 0 and 2: their last token only
  model->zero_grad();
  policy_loss(model, b, PolicyLossOptions{}).backward();
  const at::Tensor got = flat_grad(model);
  at::Tensor want = at::zeros_like(got), whole = at::zeros_like(got);
  for (size_t i = 0; i < b.advantages.size(); ++i) {
    model->zero_grad();
    auto lp = completion_logprobs(model, {b.prompts[i]}, {b.completions[i]}, PromptPass::kPerRow);
    const int64_t from = b.credit_from[i];
    lp.token_logprobs.narrow(1, from, lp.token_logprobs.size(1) - from).sum().backward();
    want -= flat_grad(model) * (b.advantages[i] / static_cast<double>(b.kept_prompts));
  }
  const double tol = 1e-5 * (1 + want.abs().max().item<double>());
  EXPECT_LT((got - want).abs().max().item<double>(), tol);
  model->zero_grad();
  policy_loss(model, toy_batch(), PolicyLossOptions{}).backward();  // every token: another gradient
  EXPECT_GT((flat_grad(model) - want).abs().max().item<double>(), 100 * tol);
  // Micro-batches keep each row's credit with the row.
  model->zero_grad();
  for (const auto& part : length_microbatches(b, 10))
    policy_loss(model, part, PolicyLossOptions{}).backward();
  EXPECT_LT((flat_grad(model) - want).abs().max().item<double>(), tol);
}

// policy_batch: a hand-off row's credit starts at its (last) hand-off token; other rows, and every row
// without a credit token, at 0.
TEST(PolicyLossTest, PolicyBatchCreditsAHandoffRowFromItsHandoffToken) {
  Rollout r;
  auto sample = [](std::vector<int> tokens, ResponseKind kind, double reward) {
    Sample s;
    s.out.prompt_tokens = {5, 6};
    s.out.tokens = std::move(tokens);
    s.out.logprobs.assign(s.out.tokens.size(), -1.0f);
    s.out.parsed.kind = kind;
    s.reward = reward;
    return s;
  };
  r.samples = {sample({20, 21, 2}, ResponseKind::kLocalAnswer, 2.2),
               sample({20, 99, 21, 99}, ResponseKind::kHandoff, 0.7),
               sample({99}, ResponseKind::kHandoff, 0.7), sample({22, 2}, ResponseKind::kLocalAnswer, 0.2)};
  Selection sel;
  sel.kept = {0};
  const RlMethod& gapg = find_rl_method("gapg");
  EXPECT_EQ(policy_batch(r, sel, gapg, 4, 99).credit_from, (std::vector<int64_t>{0, 3, 0, 0}));
  EXPECT_EQ(policy_batch(r, sel, gapg, 4).credit_from, (std::vector<int64_t>{0, 0, 0, 0}));
}

TEST(PolicyLossTest, ClippedLossAtRatioOneHasTheSameGradient) {
  // With the old log-probs equal to the current ones (first PPO epoch), the clipped objective's gradient is
  // the plain estimator's.
  torch::manual_seed(4);
  CausalLM model(handoff::testing::tiny_model_config());
  PolicyBatch b = toy_batch();
  {
    torch::NoGradGuard ng;
    auto lp = completion_logprobs(model, b.prompts, b.completions, PromptPass::kShared);
    for (size_t i = 0; i < b.completions.size(); ++i)
      for (size_t t = 0; t < b.completions[i].size(); ++t)
        b.old_logprobs[i][t] = lp.token_logprobs[i][t].item<float>();
  }
  model->zero_grad();
  policy_loss(model, b, PolicyLossOptions{}).backward();
  const at::Tensor plain = flat_grad(model);
  model->zero_grad();
  PolicyLossOptions clipped;
  clipped.clipped = true;
  policy_loss(model, b, clipped, old_logprobs_tensor(b, model->device())).backward();
  EXPECT_LT((flat_grad(model) - plain).abs().max().item<double>(), 1e-5);
}

TEST(PolicyLossTest, UpdateMovesTheWeightsAndAnEmptyBatchDoesNot) {
  torch::manual_seed(5);
  CausalLM model(handoff::testing::tiny_model_config());
  torch::optim::SGD opt(model->parameters(), torch::optim::SGDOptions(0.1));
  RlOptions o;
  const at::Tensor before = at::cat([&] {
    std::vector<at::Tensor> v;
    for (auto& p : model->parameters()) v.push_back(p.detach().flatten().clone());
    return v;
  }());
  EXPECT_EQ(policy_update(model, opt, PolicyBatch{}, o, nullptr), 0.0);
  const double loss = policy_update(model, opt, toy_batch(), o, nullptr);
  EXPECT_TRUE(std::isfinite(loss));
  std::vector<at::Tensor> v;
  for (auto& p : model->parameters()) v.push_back(p.detach().flatten());
  EXPECT_GT((at::cat(v) - before).abs().max().item<double>(), 0.0);
}

TEST(MethodRegistryTest, EveryMethodHasOneRowAndUnknownNamesAreRefused) {
  const auto names = rl_method_names();
  EXPECT_EQ(names, (std::vector<std::string>{"gapg", "collab-grpo", "collab-drgrpo", "task-tuning", "grpo"}));
  const RlMethod& g = find_rl_method("gapg");
  EXPECT_EQ(g.reward, RewardKind::kHierarchical);
  EXPECT_EQ(g.advantage, AdvantageKind::kGapg);
  EXPECT_TRUE(g.filter);
  EXPECT_EQ(g.budget, BudgetControl::kFilterCap);
  EXPECT_TRUE(g.needs_cloud());
  EXPECT_FALSE(find_rl_method("task-tuning").needs_cloud());
  EXPECT_EQ(find_rl_method("collab-grpo").advantage, AdvantageKind::kGrpo);
  for (const auto& m : rl_methods()) {
    EXPECT_EQ(m.filter, m.budget == BudgetControl::kFilterCap) << m.name;
    EXPECT_NE(rl_methods_help().find(m.name + (m.name == "gapg" ? " (default):" : ":")), std::string::npos)
        << m.name;
  }
  try {
    find_rl_method("ppo");
    FAIL() << "accepted an unknown method";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown RL algorithm 'ppo'"), std::string::npos);
    EXPECT_NE(std::string(e.what()).find("gapg, collab-grpo"), std::string::npos) << e.what();
  }
}

TEST(PolicyLossTest, LengthMicrobatchesCoverEveryRowWithinTheTokenBudget) {
  const PolicyBatch b = toy_batch();  // row lengths (prompt + completion): 7, 5, 7, 5
  const auto parts = length_microbatches(b, 10);
  // Ascending length: rows 1 and 3 (5 tokens: 2 × 5 = 10 fits), then rows 0 and 2 (7: one each).
  ASSERT_EQ(parts.size(), 3u);
  EXPECT_EQ(parts[0].completions, (std::vector<std::vector<int>>{{23, 2}, {40}}));
  EXPECT_EQ(parts[1].completions, (std::vector<std::vector<int>>{{20, 21, 22, 2}}));
  EXPECT_EQ(parts[2].completions, (std::vector<std::vector<int>>{{30, 31, 32, 33, 34}}));
  EXPECT_EQ(parts[0].advantages, (std::vector<float>{-0.25f, -2.0f}));
  for (const auto& p : parts) {
    EXPECT_EQ(p.kept_prompts, 3);  // the whole batch's normaliser
    EXPECT_EQ(p.old_logprobs.size(), p.completions.size());
  }
  // A budget below one row still makes progress: one row per part.
  EXPECT_EQ(length_microbatches(b, 1).size(), 4u);
  EXPECT_EQ(length_microbatches(b, 1000).size(), 1u);
}

TEST(PolicyLossTest, MicrobatchedUpdateEqualsTheWholeBatchUpdate) {
  // The same optimiser step from one padded batch and from length micro-batches (gradients accumulated), with
  // the clipped ratio and the KL term on: the same weights up to float summation order.
  for (const bool kl : {false, true}) {
    torch::manual_seed(5);
    CausalLM a(handoff::testing::tiny_model_config()), c(handoff::testing::tiny_model_config()),
        ref(handoff::testing::tiny_model_config());
    {
      torch::NoGradGuard ng;
      auto pc = c->parameters();
      auto pa = a->parameters();
      for (size_t i = 0; i < pa.size(); ++i) pc[i].copy_(pa[i]);
    }
    RlOptions o;
    o.update_tokens = 0;  // one batch padded to its longest row
    o.ppo_epochs = 2;
    o.kl_coef = kl ? 0.1 : 0.0;
    torch::optim::SGD opt_a(a->parameters(), 0.5), opt_c(c->parameters(), 0.5);
    const PolicyBatch b = toy_batch();
    const double la = policy_update(a, opt_a, b, o, &ref);
    o.update_tokens = 10;
    const double lc = policy_update(c, opt_c, b, o, &ref);
    EXPECT_NEAR(la, lc, 1e-5) << kl;
    auto pa = a->parameters(), pc = c->parameters();
    double moved = 0, diff = 0;
    for (size_t i = 0; i < pa.size(); ++i) diff = std::max(diff, (pa[i] - pc[i]).abs().max().item<double>());
    torch::manual_seed(5);
    CausalLM fresh(handoff::testing::tiny_model_config());
    auto pf = fresh->parameters();
    for (size_t i = 0; i < pa.size(); ++i)
      moved = std::max(moved, (pa[i] - pf[i]).abs().max().item<double>());
    ASSERT_GT(moved, 1e-4) << kl;  // the step did change the weights
    EXPECT_LT(diff, 1e-6) << kl;
  }
}

TEST(PolicyLossTest, PromptsRunOnceForAllMicrobatchesWithTheSameGradient) {
  // policy_update runs the batch's distinct prompts once and differentiates every micro-batch with respect to
  // their states (policy_loss.h): with rows of one prompt in two micro-batches, on one and on two data
  // threads, the parameters' gradients equal those of the whole batch's own loss.
  torch::manual_seed(9);
  CausalLM model(handoff::testing::tiny_model_config());
  model->train();
  const PolicyBatch b = toy_batch();
  model->zero_grad();
  policy_loss(model, b, PolicyLossOptions{}).backward();
  const at::Tensor want = flat_grad(model);
  for (const int threads : {1, 2}) {
    RlOptions o;
    o.update_tokens = 10;  // rows 0 and 1 (one prompt) fall in different micro-batches
    o.data_threads = threads;
    o.grad_clip = 0;
    torch::optim::SGD opt(model->parameters(), 0.0);  // leaves the weights, and the gradients in .grad
    policy_update(model, opt, b, o, nullptr);
    const at::Tensor got = flat_grad(model);
    EXPECT_LT((got - want).abs().max().item<double>(), 1e-6 * (1.0 + want.abs().max().item<double>()))
        << threads << " threads";
    EXPECT_GT(got.abs().sum().item<double>(), 0.0);
  }
}
