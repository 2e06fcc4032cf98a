#pragma once
// How well a router's score ranks the items it should hand off: the area under the ROC curve for predicting
// the task-tuned device's failures (issue 15 §3). On `chain` a prompt probe reads the difficulty from the
// prompt's length; a task whose prompt hides difficulty should bring the prompt router's AUC towards 0.5
// while routers that look at the device's own solving keep theirs.
#include <cstdint>
#include <vector>

namespace handoff::route {

// The chance that a random positive item scores above a random negative one, ties counting ½ (the
// Mann–Whitney U statistic over n₊·n₋). NaN when either class is empty. Throws Error on mismatched sizes,
// an empty input or a non-finite score.
double roc_auc(const std::vector<double>& scores, const std::vector<uint8_t>& positive);

}  // namespace handoff::route
