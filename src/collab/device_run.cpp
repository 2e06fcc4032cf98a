#include "collab/device_run.h"

#include <algorithm>
#include <iterator>

#include "common/error.h"

namespace handoff {

void require_encodable(const Tokenizer& tok, const std::vector<Problem>& problems) {
  for (const Problem& p : problems) {
    try {
      tok.encode_query(p.prompt);
    } catch (const Error& e) {
      throw Error((p.source.empty() ? "a " + p.task + " problem" : p.source) +
                      ": the question cannot be encoded by the model's tokenizer: " + e.what(),
                  "edit or drop that item, or use a model whose tokenizer covers it");
    }
  }
}

SamplingOptions device_sampling(const Tokenizer& tok, double temperature, int64_t max_new_tokens,
                                double top_p, double handoff_threshold) {
  SamplingOptions o;
  o.temperature = temperature;
  o.top_p = top_p;
  o.max_new_tokens = max_new_tokens;
  o.stop_ids = tok.stop_ids();  // EOS and the end of a chat turn
  o.stop_ids.push_back(tok.handoff_id());
  if (handoff_threshold <= 1.0) {
    o.boost_token = tok.handoff_id();
    o.boost_threshold = handoff_threshold;
  }
  return o;
}

std::vector<DeviceOutput> run_device(CausalLM& model, const Tokenizer& tok,
                                     const std::vector<std::string>& queries, const SamplingOptions& opts,
                                     const std::vector<uint64_t>& seeds, int64_t max_batch) {
  std::vector<std::vector<int>> prompts;
  prompts.reserve(queries.size());
  for (const auto& q : queries) prompts.push_back(tok.encode_query(q));
  return run_device_prompts(model, tok, std::move(prompts), opts, seeds, max_batch);
}

std::vector<DeviceOutput> read_device_outputs(const Tokenizer& tok, std::vector<std::vector<int>> prompts,
                                              Generation gen) {
  std::vector<DeviceOutput> out(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto& o = out[i];
    o.prompt_tokens = std::move(prompts[i]);
    o.tokens = std::move(gen.tokens.at(i));
    o.logprobs = std::move(gen.logprobs.at(i));
    const auto stops = tok.stop_ids();
    o.ended_with_eos =
        !o.tokens.empty() && std::find(stops.begin(), stops.end(), o.tokens.back()) != stops.end();
    std::vector<int> visible = o.tokens;
    if (o.ended_with_eos) visible.pop_back();
    o.text = tok.decode(visible);
    o.parsed = parse_response(o.text, o.ended_with_eos);
  }
  return out;
}

std::vector<DeviceOutput> run_device_prompts(CausalLM& model, const Tokenizer& tok,
                                             std::vector<std::vector<int>> prompts,
                                             const SamplingOptions& opts, const std::vector<uint64_t>& seeds,
                                             int64_t max_batch) {
  if (seeds.size() != prompts.size()) throw Error("run_device: one seed per prompt is required");
  std::vector<DeviceOutput> out;
  out.reserve(prompts.size());
  for (size_t start = 0; start < prompts.size(); start += static_cast<size_t>(max_batch)) {
    const size_t end = std::min(prompts.size(), start + static_cast<size_t>(max_batch));
    std::vector<std::vector<int>> chunk(std::make_move_iterator(prompts.begin() + start),
                                        std::make_move_iterator(prompts.begin() + end));
    std::vector<uint64_t> chunk_seeds(seeds.begin() + start, seeds.begin() + end);
    auto gen = generate(model, chunk, opts, chunk_seeds);
    auto part = read_device_outputs(tok, std::move(chunk), std::move(gen));
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return out;
}

}  // namespace handoff
