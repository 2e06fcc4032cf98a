#include "model/slot_decoder.h"

#include <ATen/ATen.h>
#include <c10/core/InferenceMode.h>

#include <algorithm>

#include "common/error.h"
#include "model/decode_steps.h"

namespace handoff {

namespace {

bool same_sampling(const SamplingOptions& a, const SamplingOptions& b) {
  return a.temperature == b.temperature && a.top_p == b.top_p && a.boost_token == b.boost_token &&
         a.boost_threshold == b.boost_threshold && a.banned_ids == b.banned_ids;
}

at::Tensor long_tensor(const std::vector<int64_t>& v, const at::Device& dev) {
  return at::tensor(v, at::TensorOptions().dtype(at::kLong)).to(dev);
}

}  // namespace

SlotDecoder::SlotDecoder(CausalLM model) : model_(std::move(model)) {
  if (!model_) throw Error("SlotDecoder needs a model");
}

// Grows the cache to at least `rows` rows and `columns` columns (doubling columns, up to the context),
// keeping what is in it. Memory is bounded by the rows in use at once times the longest row seen.
void SlotDecoder::reserve(int64_t rows, int64_t columns) {
  const int64_t R = cache_rows(), C = cache_.capacity;
  if (rows <= R && columns <= C) return;
  const auto& cfg = model_->config;
  const int64_t new_r = std::max(R, rows);
  const int64_t new_c =
      columns <= C ? C
                   : std::min<int64_t>(cfg.max_position_embeddings, std::max({columns, 2 * C, int64_t{64}}));
  KVCache grown = model_->make_cache(new_r, new_c);
  for (size_t l = 0; l < grown.k.size() && R > 0 && C > 0; ++l) {
    grown.k[l].narrow(0, 0, R).narrow(2, 0, C).copy_(cache_.k[l]);
    grown.v[l].narrow(0, 0, R).narrow(2, 0, C).copy_(cache_.v[l]);
  }
  cache_ = std::move(grown);
  rows_.resize(static_cast<size_t>(new_r));
}

// The n lowest free rows (low rows first keeps the rows a step runs over, [0, highest used], short).
std::vector<int64_t> SlotDecoder::free_rows(int64_t n) {
  std::vector<int64_t> out;
  for (int64_t r = 0; r < cache_rows() && static_cast<int64_t>(out.size()) < n; ++r)
    if (!rows_[r].used) out.push_back(r);
  for (int64_t r = cache_rows(); static_cast<int64_t>(out.size()) < n; ++r) out.push_back(r);
  return out;
}

std::vector<int64_t> SlotDecoder::admit(const std::vector<std::vector<int>>& prompts,
                                        const SamplingOptions& opts, const std::vector<uint64_t>& seeds) {
  const auto& cfg = model_->config;
  if (seeds.size() != prompts.size()) throw Error("generate: one seed per prompt is required");
  check_sampling(cfg, opts);
  if (prompts.empty()) return {};
  c10::InferenceMode guard;
  const auto dev = model_->device();
  PaddedPrompts padded = left_pad(prompts, cfg, 0, dev);  // throws on an empty or too long prompt
  const int64_t B = static_cast<int64_t>(prompts.size()), P = padded.P;
  KVCache prompt_cache = model_->make_cache(B, P);
  at::Tensor logits =
      model_->forward(padded.input, padded.positions, padded.key_valid, &prompt_cache).select(1, P - 1);

  std::vector<int64_t> rows = free_rows(B);
  reserve(*std::max_element(rows.begin(), rows.end()) + 1, P + 1);
  auto shared_opts = std::make_shared<const SamplingOptions>(opts);
  try {
    for (int64_t i = 0; i < B; ++i) {  // row i's prompt sits at columns [pad, P) of the prompt cache
      const int64_t n = static_cast<int64_t>(prompts[i].size()), r = rows[i];
      for (size_t l = 0; l < cache_.k.size(); ++l) {
        cache_.k[l][r].narrow(1, 0, n).copy_(prompt_cache.k[l][i].narrow(1, P - n, n));
        cache_.v[l][r].narrow(1, 0, n).copy_(prompt_cache.v[l][i].narrow(1, P - n, n));
      }
      Row& row = rows_[r];
      row = Row{};
      row.used = true;
      row.len = n;
      // As generate(): every row of a request stops at the context's end for its longest prompt.
      row.limit = std::min<int64_t>(opts.max_new_tokens, cfg.max_position_embeddings - P);
      row.opts = shared_opts;
      row.rng.seed(seeds[i]);
      row.done = row.limit <= 0;
    }
    if (opts.max_new_tokens > 0) record(rows, logits);
  } catch (...) {  // nothing admitted: the rows claimed so far are free again
    for (int64_t r : rows)
      if (r < cache_rows()) rows_[r] = Row{};
    throw;
  }
  return rows;
}

// Picks and appends the next token of `rows` (row i of logits is rows[i]), one group per sampling rule.
void SlotDecoder::record(const std::vector<int64_t>& rows, const at::Tensor& logits) {
  std::vector<bool> taken(rows.size(), false);
  for (size_t first = 0; first < rows.size(); ++first) {
    if (taken[first]) continue;
    const SamplingOptions& opts = *rows_[rows[first]].opts;
    std::vector<int64_t> idx, group;
    std::vector<std::mt19937_64*> rngs;
    for (size_t i = first; i < rows.size(); ++i)
      if (!taken[i] && same_sampling(*rows_[rows[i]].opts, opts)) {
        taken[i] = true;
        idx.push_back(static_cast<int64_t>(i));
        group.push_back(rows[i]);
        rngs.push_back(&rows_[rows[i]].rng);
      }
    at::Tensor sub =
        idx.size() == rows.size() ? logits : logits.index_select(0, long_tensor(idx, logits.device()));
    at::Tensor boost_p;
    at::Tensor next = pick_next(sub, opts, rngs, &boost_p);
    at::Tensor lp = token_logprobs(sub, next).to(at::kCPU).contiguous();
    next = next.to(at::kCPU).contiguous();
    if (boost_p.defined()) boost_p = boost_p.to(at::kCPU).contiguous();
    for (size_t g = 0; g < group.size(); ++g) {
      Row& row = rows_[group[g]];
      if (boost_p.defined()) row.out.boost_peak = std::max(row.out.boost_peak, boost_p.data_ptr<float>()[g]);
      const int token = static_cast<int>(next.data_ptr<int64_t>()[g]);
      row.out.tokens.push_back(token);
      row.out.logprobs.push_back(lp.data_ptr<float>()[g]);
      row.last = token;
      const auto& stops = row.opts->stop_ids;
      row.out.stopped = std::find(stops.begin(), stops.end(), token) != stops.end();
      row.done = row.out.stopped || static_cast<int64_t>(row.out.tokens.size()) >= row.limit;
    }
  }
}

// One forward over rows [0, highest active]: each active row feeds its last pick at position = its length
// and writes it at column = its length; free and finished rows in between ride along on column 0.
at::Tensor SlotDecoder::step_logits(const std::vector<int64_t>& active) {
  const int64_t hi = active.back() + 1;
  int64_t width = 0;
  for (int64_t r : active) width = std::max(width, rows_[r].len + 1);
  reserve(hi, width);
  std::vector<int64_t> ids(hi, 0), cols(hi, 0);
  std::vector<uint8_t> valid(hi * width, 0);
  for (int64_t r = 0; r < hi; ++r) valid[r * width] = 1;
  for (int64_t r : active) {
    ids[r] = rows_[r].last;
    cols[r] = rows_[r].len;
    std::fill_n(valid.begin() + r * width, rows_[r].len + 1, 1);
  }
  const auto dev = model_->device();
  KVCache view;
  for (size_t l = 0; l < cache_.k.size(); ++l) {
    view.k.push_back(cache_.k[l].narrow(0, 0, hi));
    view.v.push_back(cache_.v[l].narrow(0, 0, hi));
  }
  view.capacity = cache_.capacity;
  view.length = width - 1;
  view.write_cols = long_tensor(cols, dev);
  auto key_valid =
      at::from_blob(valid.data(), {hi, width}, at::TensorOptions().dtype(at::kBool)).clone().to(dev);
  auto input = view.write_cols.unsqueeze(1);  // positions = columns: a row's prompt starts at column 0
  return model_->forward(long_tensor(ids, dev).unsqueeze(1), input, key_valid, &view).select(1, 0);
}

void SlotDecoder::step() {
  std::vector<int64_t> active;
  for (int64_t r = 0; r < cache_rows(); ++r)
    if (rows_[r].used && !rows_[r].done) active.push_back(r);
  if (active.empty()) return;
  c10::InferenceMode guard;
  at::Tensor logits = step_logits(active);
  for (int64_t r : active) ++rows_[r].len;
  record(active, active.size() == static_cast<size_t>(logits.size(0))
                     ? logits
                     : logits.index_select(0, long_tensor(active, logits.device())));
}

int64_t SlotDecoder::decoding() const {
  return std::count_if(rows_.begin(), rows_.end(), [](const Row& r) { return r.used && !r.done; });
}

bool SlotDecoder::finished(int64_t row) const {
  return row >= 0 && row < cache_rows() && rows_[row].used && rows_[row].done;
}

RowOutput SlotDecoder::release(int64_t row) {
  if (!finished(row)) throw Error("SlotDecoder: row " + std::to_string(row) + " is not finished");
  RowOutput out = std::move(rows_[row].out);
  rows_[row] = Row{};
  if (std::none_of(rows_.begin(), rows_.end(), [](const Row& r) { return r.used; })) reset();
  return out;
}

// Frees every row and the cache itself: an idle server does not keep the KV memory of its longest request.
void SlotDecoder::reset() {
  rows_.clear();
  cache_ = KVCache{};
}

}  // namespace handoff
