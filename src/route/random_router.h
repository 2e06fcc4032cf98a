#pragma once
// Naive offloading: every item gets an independent uniform score in [0, 1) from a seeded generator, so a
// threshold hands off a random fraction of the queries.
#include <random>

#include "route/router.h"

namespace handoff::route {

class RandomRouter : public Router {
 public:
  explicit RandomRouter(uint64_t seed) : seed_(seed), rng_(seed) {}
  std::string key() const override { return "random"; }
  std::string name() const override { return "task-tuning & naive offloading (random)"; }
  // Scores continue one stream: the demo scores validation, then test, and the test items get the draws
  // after the validation ones. state() records the seed and the draws so far, so a router saved after its
  // validation scores goes on where it stopped.
  std::vector<double> score(const RouterSplit& split) override;
  nlohmann::json state() const override { return {{"seed", seed_}, {"draws", draws_}}; }
  void load_state(const nlohmann::json& state) override;

 private:
  double draw();
  uint64_t seed_, draws_ = 0;
  std::mt19937_64 rng_;
};

}  // namespace handoff::route
