// One query token per row over a KV cache view (every decoding step): our kernel
// (model/one_token_attention.h) against the two ATen forms — broadcast multiply-sums
// (AttentionImpl::attend_one_token) and a batched matmul — on RL rollouts' shapes (quick device: 4 heads of
// 16) and a 0.5B model's (14 query heads over 2 key/value heads of 64), alternated in one run, median of
// rounds. Also the kernel's largest difference from the float64 matmul form. Usage: bench_one_token_attention
// [threads = 1]
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <vector>

#include "model/decoder.h"
#include "model/one_token_attention.h"
#include "runtime/runtime.h"

using namespace handoff;

namespace {

at::Tensor by_matmul(const at::Tensor& q, const at::Tensor& k, const at::Tensor& v, const at::Tensor& bias) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), KV = k.size(1), hd = q.size(3);
  auto qg = q.reshape({B, KV, H / KV, T, hd});
  auto s = at::matmul(qg, k.unsqueeze(2).transpose(-1, -2)) * (1.0 / std::sqrt(static_cast<double>(hd)));
  auto p = at::softmax(s + bias.unsqueeze(1), -1);
  return at::matmul(p, v.unsqueeze(2)).reshape({B, H, T, hd}).transpose(1, 2).reshape({B, T, H * hd});
}

double median_us(const std::function<void()>& f, int reps) {
  std::vector<double> us;
  for (int i = 0; i < reps; ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    f();
    us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(us.begin(), us.end());
  return us[us.size() / 2];
}

// Alternates the forms for 5 rounds; the median of each form's round medians.
std::vector<double> timed(const std::vector<std::function<void()>>& forms, int reps) {
  std::vector<std::vector<double>> t(forms.size());
  for (int round = 0; round < 5; ++round)
    for (size_t i = 0; i < forms.size(); ++i) t[i].push_back(median_us(forms[i], reps));
  std::vector<double> out;
  for (auto& x : t) {
    std::sort(x.begin(), x.end());
    out.push_back(x[2]);
  }
  return out;
}

double max_err(const at::Tensor& a, const at::Tensor& ref) {
  return (a.to(at::kDouble) - ref).abs().max().item<double>();
}

void decode_row(int64_t B, int64_t H, int64_t KV, int64_t hd, int64_t S, int64_t capacity) {
  ModelConfig c;
  c.hidden_size = H * hd;
  c.num_attention_heads = H;
  c.num_key_value_heads = KV;
  c.intermediate_size = 4 * c.hidden_size;
  Attention attn(c);
  auto q = at::randn({B, H, 1, hd});
  auto k = at::randn({B, KV, capacity, hd}).narrow(2, 0, S),
       v = at::randn({B, KV, capacity, hd}).narrow(2, 0, S);
  auto valid = at::rand({B, 1, 1, S}) > 0.2;  // some keys masked, as left-padded prompts' are
  valid.select(3, S - 1).fill_(true);
  auto bias = at::zeros({B, 1, 1, S}).masked_fill(valid.logical_not(), -1e30);
  const int reps = std::max<int>(5, static_cast<int>(2e7 / (B * H * S * hd)));
  at::InferenceMode guard;
  const auto t = timed({[&] { one_token_attention(q, k, v, bias); },
                        [&] { attn->attend_one_token(q, k, v, bias); }, [&] { by_matmul(q, k, v, bias); }},
                       reps);
  const auto ref = by_matmul(q.to(at::kDouble), k.to(at::kDouble), v.to(at::kDouble), bias.to(at::kDouble));
  std::printf("| %ld | %ld/%ld x %ld | %ld | %.1f | %.1f | %.1f | %.2fx | %.2fx | %.1e |\n", B, H, KV, hd, S,
              t[0], t[1], t[2], t[1] / t[0], t[2] / t[0], max_err(one_token_attention(q, k, v, bias), ref));
}

}  // namespace

int main(int argc, char** argv) {
  configure_threads(argc > 1 ? std::atoi(argv[1]) : 1);
  at::manual_seed(0);
  std::printf(
      "| rows | heads/kv x hd | keys | ours us | multiply-sum us | matmul us | multiply-sum / "
      "ours | matmul / ours | ours: max err (vs float64) |\n|---|---|---|---|---|---|---|---|---|\n");
  for (int64_t S : {48, 96, 160}) decode_row(256, 4, 4, 16, S, 224);  // RL rollouts, quick device
  for (int64_t B : {1, 16}) decode_row(B, 14, 2, 64, 512, 1024);      // serving, 0.5B-shaped
  return 0;
}
