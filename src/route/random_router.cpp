#include "route/random_router.h"

#include "common/error.h"

namespace handoff::route {

double RandomRouter::draw() {
  ++draws_;
  return std::uniform_real_distribution<double>(0, 1)(rng_);
}

std::vector<double> RandomRouter::score(const RouterSplit& split) {
  std::vector<double> out(split.items.size());
  for (auto& x : out) x = draw();
  return out;
}

void RandomRouter::load_state(const nlohmann::json& state) {
  auto count = [&](const char* k) {
    if (!state.is_object() || !state.contains(k)) return false;
    const auto& x = state[k];
    return x.is_number_unsigned() || (x.is_number_integer() && x.get<int64_t>() >= 0);
  };
  if (!count("seed") || !count("draws"))
    throw Error("random router: state needs unsigned 'seed' and 'draws'",
                "refit it with `handoff route fit`");
  seed_ = state["seed"].get<uint64_t>();
  rng_.seed(seed_);
  const uint64_t n = state["draws"].get<uint64_t>();
  draws_ = 0;
  while (draws_ < n) draw();
}

}  // namespace handoff::route
