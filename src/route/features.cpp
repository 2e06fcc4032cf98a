#include "route/features.h"

#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "common/error.h"

namespace handoff {

at::Tensor pooled_features(CausalLM& model, const DeviceSpeech& io, const std::vector<std::string>& queries,
                           const std::vector<std::string>& completions, int64_t batch) {
  if (!completions.empty() && completions.size() != queries.size())
    throw Error("pooled_features: one completion per query is required");
  c10::InferenceMode guard;
  const int64_t max_len = model->config.max_position_embeddings;
  std::vector<at::Tensor> rows;
  for (size_t start = 0; start < queries.size(); start += static_cast<size_t>(batch)) {
    const size_t end = std::min(queries.size(), start + static_cast<size_t>(batch));
    std::vector<std::vector<int>> seqs;
    int64_t L = 1;
    for (size_t i = start; i < end; ++i) {
      auto ids = io.encode_query(queries[i]);
      if (!completions.empty()) {
        auto c = io.tok.encode(completions[i]);
        ids.insert(ids.end(), c.begin(), c.end());
      }
      if (static_cast<int64_t>(ids.size()) > max_len) ids.resize(max_len);
      L = std::max<int64_t>(L, ids.size());
      seqs.push_back(std::move(ids));
    }
    const int64_t B = static_cast<int64_t>(seqs.size());
    std::vector<int64_t> flat(B * L, 0);
    std::vector<float> mask(B * L, 0.0f);
    for (int64_t b = 0; b < B; ++b)
      for (size_t t = 0; t < seqs[b].size(); ++t) {
        flat[b * L + t] = seqs[b][t];
        mask[b * L + t] = 1.0f;
      }
    const auto dev = model->device();
    auto ids = torch::from_blob(flat.data(), {B, L}, at::kLong).clone().to(dev);
    auto m = torch::from_blob(mask.data(), {B, L}, at::kFloat).clone().to(dev).unsqueeze(-1);
    auto pos = at::arange(L, at::TensorOptions().dtype(at::kLong).device(dev)).unsqueeze(0).expand({B, L});
    auto h = model->hidden(ids, pos);  // right padding: causality hides the pads from real tokens
    rows.push_back(((h * m).sum(1) / m.sum(1)).to(at::kCPU).clone());
  }
  return rows.empty() ? at::zeros({0, model->config.hidden_size}) : at::cat(rows, 0);
}

}  // namespace handoff
