#pragma once
// Linear warm-up, then cosine decay to lr · min_ratio at the last step.
#include <cmath>
#include <cstdint>

namespace handoff {

struct LrSchedule {
  double lr;
  int64_t warmup_steps;
  int64_t total_steps;
  double min_ratio;

  double operator()(int64_t step) const {
    if (warmup_steps > 0 && step < warmup_steps) return lr * static_cast<double>(step + 1) / warmup_steps;
    const double span = static_cast<double>(std::max<int64_t>(1, total_steps - warmup_steps));
    const double progress = std::min(1.0, static_cast<double>(step - warmup_steps) / span);
    return lr * (min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + std::cos(M_PI * progress)));
  }
};

}  // namespace handoff
