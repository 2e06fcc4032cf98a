#include "route/pure/auc.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "common/error.h"

namespace handoff::route {

double roc_auc(const std::vector<double>& scores, const std::vector<uint8_t>& positive) {
  if (scores.empty() || scores.size() != positive.size())
    throw Error("roc_auc: " + std::to_string(scores.size()) + " scores for " +
                std::to_string(positive.size()) + " labels (need the same, non-zero number)");
  for (double s : scores)
    if (!std::isfinite(s)) throw Error("roc_auc: a score is not finite");
  std::vector<size_t> order(scores.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Rank sum of the positives, tied scores sharing their average rank (1-based).
  double rank_sum = 0;
  size_t n_pos = 0;
  for (size_t i = 0; i < order.size();) {
    size_t j = i;
    while (j < order.size() && scores[order[j]] == scores[order[i]]) ++j;
    const double avg_rank = 0.5 * static_cast<double>(i + 1 + j);
    for (size_t k = i; k < j; ++k)
      if (positive[order[k]]) {
        rank_sum += avg_rank;
        ++n_pos;
      }
    i = j;
  }
  const size_t n_neg = scores.size() - n_pos;
  if (n_pos == 0 || n_neg == 0) return std::numeric_limits<double>::quiet_NaN();
  const double np = static_cast<double>(n_pos);
  return (rank_sum - np * (np + 1) / 2) / (np * static_cast<double>(n_neg));
}

}  // namespace handoff::route
