#include "collab/device_run.h"

#include <algorithm>
#include <iterator>

#include "common/error.h"

namespace handoff {

void require_encodable(const DeviceSpeech& io, const std::vector<Problem>& problems) {
  for (const Problem& p : problems) {
    try {
      io.encode_query(p.prompt);
    } catch (const Error& e) {
      throw Error((p.source.empty() ? "a " + p.task + " problem" : p.source) +
                      ": the question cannot be encoded by the model's tokenizer: " + e.what(),
                  "edit or drop that item, or use a model whose tokenizer covers it");
    }
  }
}

void require_readable(const DeviceSpeech& io, const Task& task, const std::vector<Problem>& problems) {
  for (const Problem& p : problems) {
    const ParsedResponse r = io.protocol.parse(io.protocol.solution_text("", p.answer), true);
    if (r.kind != ResponseKind::kLocalAnswer || !task.verify(p, r.answer))
      throw Error((p.source.empty() ? "a " + p.task + " problem" : p.source) + ": its answer \"" + p.answer +
                      "\" cannot be read back from protocol \"" + io.protocol.name + "\"'s answer form (" +
                      answer_form_name(io.protocol.answer) + ")",
                  "use a protocol whose answer form can hold this task's answers");
  }
}

int handoff_token_id(const DeviceSpeech& io, const std::string& feature) {
  if (!io.protocol.handoff_is_token() || io.tok.handoff_id() < 0)
    throw Error(feature + " needs the " + std::string(kHandoffMarker) + " token, and protocol \"" +
                    io.protocol.name + "\" hands off with \"" + io.protocol.handoff + "\"",
                "use a protocol whose hand-off is the token, or do without " + feature);
  return io.tok.handoff_id();
}

SamplingOptions device_sampling(const DeviceSpeech& io, double temperature, int64_t max_new_tokens,
                                double top_p, double handoff_threshold) {
  const Tokenizer& tok = io.tok;
  SamplingOptions o;
  o.temperature = temperature;
  o.top_p = top_p;
  o.max_new_tokens = max_new_tokens;
  o.stop_ids = tok.stop_ids();  // EOS and the end of a chat turn
  if (tok.handoff_id() >= 0) o.stop_ids.push_back(tok.handoff_id());
  if (handoff_threshold <= 1.0) {
    o.boost_token = handoff_token_id(io, "the hand-off threshold");
    o.boost_threshold = handoff_threshold;
  }
  return o;
}

std::vector<DeviceOutput> run_device(CausalLM& model, const DeviceSpeech& io,
                                     const std::vector<std::string>& queries, const SamplingOptions& opts,
                                     const std::vector<uint64_t>& seeds, int64_t max_batch) {
  std::vector<std::vector<int>> prompts;
  prompts.reserve(queries.size());
  for (const auto& q : queries) prompts.push_back(io.encode_query(q));
  return run_device_prompts(model, io, std::move(prompts), opts, seeds, max_batch);
}

std::vector<DeviceOutput> read_device_outputs(const DeviceSpeech& io, std::vector<std::vector<int>> prompts,
                                              Generation gen) {
  const Tokenizer& tok = io.tok;
  std::vector<DeviceOutput> out(prompts.size());
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto& o = out[i];
    o.prompt_tokens = std::move(prompts[i]);
    o.tokens = std::move(gen.tokens.at(i));
    o.logprobs = std::move(gen.logprobs.at(i));
    if (i < gen.boost_peak.size()) o.handoff_score = gen.boost_peak[i];
    const auto stops = tok.stop_ids();
    o.ended_with_eos =
        !o.tokens.empty() && std::find(stops.begin(), stops.end(), o.tokens.back()) != stops.end();
    std::vector<int> visible = o.tokens;
    if (o.ended_with_eos) visible.pop_back();
    o.text = tok.decode(visible);
    o.parsed = io.protocol.parse(o.text, o.ended_with_eos);
  }
  return out;
}

std::vector<DeviceOutput> run_device_prompts(CausalLM& model, const DeviceSpeech& io,
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
    auto part = read_device_outputs(io, std::move(chunk), std::move(gen));
    out.insert(out.end(), std::make_move_iterator(part.begin()), std::make_move_iterator(part.end()));
  }
  return out;
}

}  // namespace handoff
