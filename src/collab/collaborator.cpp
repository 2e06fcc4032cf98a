#include "collab/collaborator.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <thread>

#include <c10/core/InferenceMode.h>

#include "common/error.h"
#include "protocol/final_answer.h"
#include "protocol/response.h"
#include "tokenizer/protocol_fit.h"

namespace handoff {

namespace {
double ms_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

std::string answered_by_name(AnsweredBy who) {
  switch (who) {
    case AnsweredBy::kDevice:
      return "device";
    case AnsweredBy::kCloud:
      return "cloud";
    case AnsweredBy::kDeviceFallback:
      return "device-fallback";
  }
  return "device";
}

Collaborator::Collaborator(std::shared_ptr<LoadedModel> device, std::shared_ptr<const CloudClient> cloud,
                           CollabOptions opts)
    : device_(std::move(device)), cloud_(std::move(cloud)), opts_(opts) {
  if (!device_ || !device_->model || !device_->tokenizer)
    throw Error("Collaborator needs a loaded device model");
  if (!cloud_) throw Error("Collaborator needs a cloud client");
  if (device_->protocol.handoff_is_token() && device_->tokenizer->handoff_id() < 0)
    throw Error("the device model's tokenizer has no " + std::string(kHandoffMarker) +
                    " token, so it can never call the cloud",
                "add it with `handoff add-token --model DIR --out DIR2` and post-train with `handoff train`, "
                "or use a protocol whose hand-off is a phrase (--protocol paper)");
  check_protocol_fits(device_->protocol, *device_->tokenizer);
  if (opts_.handoff_threshold <= 1.0 && !device_->protocol.handoff_is_token())
    throw Error("the hand-off threshold needs the " + std::string(kHandoffMarker) +
                    " token, and protocol \"" + device_->protocol.name + "\" hands off with \"" +
                    device_->protocol.handoff + "\"",
                "use a protocol whose hand-off is the token, or no threshold");
  device_->model->eval();
}

Collaborator::Collaborator(std::shared_ptr<const CloudClient> device_server, Protocol protocol,
                           std::shared_ptr<const CloudClient> cloud, CollabOptions opts, int handoff_token)
    : device_server_(std::move(device_server)),
      remote_protocol_(std::move(protocol)),
      remote_handoff_token_(handoff_token),
      cloud_(std::move(cloud)),
      opts_(opts) {
  if (!device_server_) throw Error("Collaborator needs a device server client");
  if (!cloud_) throw Error("Collaborator needs a cloud client");
  check_remote_options(opts_, handoff_token >= 0 || !remote_protocol_.handoff_is_token());
}

void Collaborator::check_remote_options(const CollabOptions& opts, bool handoff_token_known) {
  if (opts.handoff_threshold <= 1.0)
    throw Error("--handoff-threshold reads the device's P(" + std::string(kHandoffMarker) +
                    "), and a device behind --device-url is known by its reply text only",
                "serve the device with --device DIR for the threshold");
  if (opts.fallback && !handoff_token_known)
    throw Error("--fallback asks the device server again with " + std::string(kHandoffMarker) +
                    " banned, and its token id on that server is not known",
                "give --device-handoff-token-id, or a server with /tokenize (llama-server, handoff serve)");
}

DeviceSpeech Collaborator::speech() const {
  if (remote_device()) throw Error("the device is a server (--device-url): it has no local tokenizer");
  return {*device_->tokenizer, device_->protocol};
}

int64_t Collaborator::device_context() const {
  if (remote_device()) throw Error("the device is a server (--device-url): its context is the server's");
  return device_->model->config.max_position_embeddings;
}

std::vector<ChatMessage> Collaborator::cloud_messages(const std::vector<ChatMessage>& query,
                                                      const std::string& reasoning,
                                                      const CollabOptions& opts) const {
  // Paper.md §1: the cloud sees the original query (in the protocol's cloud conversation); forwarding the
  // device's partial reasoning is an option.
  std::vector<ChatMessage> messages = protocol().cloud_conversation(query);
  if (opts.forward_reasoning && !reasoning.empty()) {
    for (auto it = messages.rbegin(); it != messages.rend(); ++it) {
      if (it->role != "user") continue;
      it->content += "\nPartial work by a smaller model (may be wrong): " + reasoning;
      break;
    }
  }
  return messages;
}

CollabResult Collaborator::answer(const std::string& query, uint64_t seed) {
  return answer({{{"user", query}}}, {seed}, opts_, 1).front();
}

std::vector<CollabResult> Collaborator::answer(const std::vector<std::vector<ChatMessage>>& queries,
                                               const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                               int cloud_concurrency) {
  if (seeds.size() != queries.size()) throw Error("Collaborator::answer: one seed per query is required");
  std::vector<CollabResult> results(queries.size());
  if (remote_device()) return answer_remote(queries, seeds, opts, cloud_concurrency);
  const std::vector<std::vector<int>> prompts = encode_queries(queries);
  CollabOptions decide = opts;
  if (guard_) decide.handoff_threshold = guard_->threshold();  // read once: the whole batch decides by it
  const std::vector<DeviceOutput> outs = decode_on_device(prompts, seeds, decide, results);
  const std::vector<size_t> to_cloud = take_device_outputs(outs, results);
  report_to_guard(outs, decide.handoff_threshold, results);
  const std::vector<std::string> errors =
      ask_cloud(queries, outs, to_cloud, opts, cloud_concurrency, results);

  std::vector<size_t> failed;
  for (size_t i : to_cloud)
    if (!errors[i].empty()) failed.push_back(i);
  if (failed.empty()) return results;
  const bool busy = std::all_of(failed.begin(), failed.end(),
                                [&](size_t i) { return errors[i].rfind(kCloudBusyMessage, 0) == 0; });
  if (!opts.fallback && busy)
    throw CloudBusy(errors[failed.front()], "retry shortly, or raise --cloud-slots");
  if (!opts.fallback)
    throw Error(
        "the device handed off and the cloud failed: " + errors[failed.front()],
        "check the cloud URL and model, or pass --fallback to answer on the device when the cloud fails");
  answer_on_device_instead(failed, errors, prompts, seeds, opts, results);
  return results;
}

std::vector<CollabResult> Collaborator::answer_remote(const std::vector<std::vector<ChatMessage>>& queries,
                                                      const std::vector<uint64_t>& seeds,
                                                      const CollabOptions& opts, int cloud_concurrency) {
  // The per-call options too (the endpoint's, eval's).
  check_remote_options(opts, remote_handoff_token_ >= 0 || !remote_protocol_.handoff_is_token());
  std::vector<CollabResult> results(queries.size());
  const std::vector<DeviceOutput> outs = ask_device_server(queries, seeds, opts, cloud_concurrency, results);
  const std::vector<size_t> to_cloud = take_device_outputs(outs, results);
  const std::vector<std::string> errors =
      ask_cloud(queries, outs, to_cloud, opts, cloud_concurrency, results);
  std::vector<size_t> failed;
  for (size_t i : to_cloud)
    if (!errors[i].empty()) failed.push_back(i);
  if (failed.empty()) return results;
  if (!opts.fallback) {
    if (std::all_of(failed.begin(), failed.end(),
                    [&](size_t i) { return errors[i].rfind(kCloudBusyMessage, 0) == 0; }))
      throw CloudBusy(errors[failed.front()], "retry shortly, or raise --cloud-slots");
    throw Error("the device handed off and the cloud failed: " + errors[failed.front()],
                "check the cloud URL and model, or pass --fallback to answer on the device when it fails");
  }
  // The device server's own answer, asked again with the hand-off token banned, flagged as such.
  std::vector<std::vector<ChatMessage>> again;
  std::vector<uint64_t> again_seeds;
  for (size_t i : failed) {
    again.push_back(queries[i]);
    again_seeds.push_back(seeds[i]);
  }
  std::vector<CollabResult> retry(failed.size());
  const std::vector<DeviceOutput> answers =
      ask_device_server(again, again_seeds, opts, cloud_concurrency, retry, remote_handoff_token_);
  for (size_t k = 0; k < failed.size(); ++k) {
    auto& r = results[failed[k]];
    const auto& o = answers[k];
    r.answered_by = AnsweredBy::kDeviceFallback;
    r.cloud_error = errors[failed[k]];
    r.text = o.text;
    r.answer = o.parsed.kind == ResponseKind::kLocalAnswer ? o.parsed.answer : "";
    r.finish_reason = o.ended_with_eos ? "stop" : "length";
    r.device_tokens += retry[k].device_tokens;
    r.device_ms += retry[k].device_ms;
  }
  return results;
}

std::vector<std::vector<int>> Collaborator::encode_queries(
    const std::vector<std::vector<ChatMessage>>& queries) const {
  const Tokenizer& tok = *device_->tokenizer;
  std::vector<std::vector<int>> prompts;
  prompts.reserve(queries.size());
  for (const auto& q : queries) prompts.push_back(tok.encode_chat(device_->protocol.device_conversation(q)));
  const int64_t context = device_context();
  for (const auto& p : prompts)
    if (static_cast<int64_t>(p.size()) >= context)
      throw Error("the query has " + std::to_string(p.size()) + " tokens; the device model's context is " +
                  std::to_string(context));
  return prompts;
}

std::vector<DeviceOutput> Collaborator::decode_on_device(const std::vector<std::vector<int>>& prompts,
                                                         const std::vector<uint64_t>& seeds,
                                                         const CollabOptions& opts,
                                                         std::vector<CollabResult>& results) {
  // Worker threads of the HTTP server: grad mode is thread-local, OpenMP needs its per-thread setup.
  static thread_local const bool threads_ready = [] {
    at::init_num_threads();
    return true;
  }();
  (void)threads_ready;
  const auto t0 = std::chrono::steady_clock::now();
  std::vector<DeviceOutput> outs = run_on_device(
      prompts,
      device_sampling(speech(), opts.temperature, opts.max_new_tokens, opts.top_p, opts.handoff_threshold),
      seeds);
  // A batch finishes together: every query in it waited the whole decode.
  const double ms = ms_since(t0);
  for (auto& r : results) r.device_ms = ms;
  return outs;
}

std::vector<size_t> Collaborator::take_device_outputs(const std::vector<DeviceOutput>& outs,
                                                      std::vector<CollabResult>& results) {
  std::vector<size_t> to_cloud;
  for (size_t i = 0; i < outs.size(); ++i) {
    auto& r = results[i];
    const auto& o = outs[i];
    r.device_text = o.text;
    r.device_kind = o.parsed.kind;
    if (!o.prompt_tokens.empty()) {  // decoded here (a device server's counts are its usage, set before)
      r.device_prompt_tokens = static_cast<int64_t>(o.prompt_tokens.size());
      r.device_tokens = static_cast<int64_t>(o.tokens.size());
    }
    if (o.parsed.kind == ResponseKind::kHandoff) {
      r.called_cloud = true;
      to_cloud.push_back(i);
    } else {
      // A local answer, or a format error: the device's reply stands (no answer to extract in the latter).
      r.answered_by = AnsweredBy::kDevice;
      r.text = o.text;
      r.answer = o.parsed.kind == ResponseKind::kLocalAnswer ? o.parsed.answer : "";
      r.finish_reason = o.ended_with_eos ? "stop" : "length";
    }
  }
  return to_cloud;
}

std::vector<DeviceOutput> Collaborator::ask_device_server(
    const std::vector<std::vector<ChatMessage>>& queries, const std::vector<uint64_t>& seeds,
    const CollabOptions& opts, int concurrency, std::vector<CollabResult>& results, int banned_token) const {
  std::vector<DeviceOutput> outs(queries.size());
  std::vector<std::string> errors(queries.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < queries.size();) {
      try {
        const RemoteDeviceReply reply =
            ask_remote_device(*device_server_, remote_protocol_, queries[i], opts.temperature, opts.top_p,
                              opts.max_new_tokens, seeds[i], banned_token);
        outs[i].text = reply.text;
        outs[i].ended_with_eos = reply.ended;
        outs[i].parsed = remote_protocol_.parse(reply.text, reply.ended);
        results[i].device_prompt_tokens = reply.prompt_tokens;
        results[i].device_tokens = reply.tokens;
        results[i].device_ms = reply.ms;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
    }
  };
  std::vector<std::thread> threads;
  const size_t n = std::min<size_t>(queries.size(), static_cast<size_t>(std::max(1, concurrency)));
  for (size_t t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  for (const auto& e : errors)
    if (!e.empty()) throw DeviceUnavailable(e);
  return outs;
}

void Collaborator::report_to_guard(const std::vector<DeviceOutput>& outs, double threshold,
                                   std::vector<CollabResult>& results) const {
  for (size_t i = 0; i < outs.size(); ++i) {
    auto& r = results[i];
    if (outs[i].handoff_score < 0) continue;  // decoded without a threshold
    r.handoff_threshold = threshold;
    r.handoff_score = outs[i].handoff_score;
    if (!guard_) continue;
    r.guarded = true;
    r.guard_changed = guard_->record(r.called_cloud, r.handoff_score);
  }
}

void Collaborator::guard_budget(std::shared_ptr<BudgetGuard> guard) {
  if (guard && remote_device())
    throw Error("--max-call-rate moves the threshold on the device's P(" + std::string(kHandoffMarker) +
                    "), which a device behind --device-url does not report",
                "serve the device with --device DIR for the budget guard");
  if (guard && !device_->protocol.handoff_is_token())
    throw Error("the budget guard sets the hand-off threshold, which needs the " +
                    std::string(kHandoffMarker) + " token, and protocol \"" + device_->protocol.name +
                    "\" hands off with \"" + device_->protocol.handoff + "\"",
                "use a protocol whose hand-off is the token, or no --max-call-rate");
  guard_ = std::move(guard);
}

std::vector<std::string> Collaborator::ask_cloud(const std::vector<std::vector<ChatMessage>>& queries,
                                                 const std::vector<DeviceOutput>& outs,
                                                 const std::vector<size_t>& to_cloud,
                                                 const CollabOptions& opts, int cloud_concurrency,
                                                 std::vector<CollabResult>& results) const {
  // Hand-offs go to the cloud, a few at a time (each call is a blocking HTTP round trip).
  std::vector<std::string> errors(queries.size());
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t k; (k = next.fetch_add(1)) < to_cloud.size();) {
      const size_t i = to_cloud[k];
      auto& r = results[i];
      const auto t0 = std::chrono::steady_clock::now();
      const int limit = cloud_slots_;
      if (limit > 0 && cloud_in_flight_.fetch_add(1) >= limit) {
        --cloud_in_flight_;
        errors[i] = std::string(kCloudBusyMessage) + " (" + std::to_string(limit) + " calls in flight)";
        continue;
      }
      struct Release {
        std::atomic<int>* count;
        ~Release() {
          if (count) --*count;
        }
      } release{limit > 0 ? &cloud_in_flight_ : nullptr};
      try {
        ChatOptions co;
        co.max_tokens = opts.cloud_max_tokens;
        co.temperature = 0.0;  // the cloud is treated as deterministic (paper §4), as in training
        auto reply = cloud_->chat(cloud_messages(queries[i], outs[i].parsed.reasoning, opts), co);
        r.answered_by = AnsweredBy::kCloud;
        r.text = reply.content;
        r.answer = extract_final_answer(reply.content).value_or("");  // \boxed{}, <answer>, ####, Answer:
        r.cloud_prompt_tokens = reply.usage.prompt_tokens;
        r.cloud_tokens = reply.usage.completion_tokens;
        r.finish_reason = reply.finish_reason.empty() ? "stop" : reply.finish_reason;
      } catch (const std::exception& e) {
        errors[i] = e.what();
      }
      r.cloud_ms = ms_since(t0);
    }
  };
  std::vector<std::thread> threads;
  const size_t n = std::min<size_t>(to_cloud.size(), static_cast<size_t>(std::max(1, cloud_concurrency)));
  for (size_t t = 0; t < n; ++t) threads.emplace_back(worker);
  for (auto& t : threads) t.join();
  return errors;
}

void Collaborator::share_device_decodes(int max_rows) {
  if (remote_device()) return;  // the device server batches its own requests
  device_batcher_ = std::make_unique<DecodeBatcher>(device_->model, max_rows);
}

std::vector<DeviceOutput> Collaborator::run_on_device(std::vector<std::vector<int>> prompts,
                                                      const SamplingOptions& so,
                                                      const std::vector<uint64_t>& seeds) {
  if (device_batcher_) {
    Generation gen = device_batcher_->run(DecodeRequest{prompts, so, seeds});
    return read_device_outputs(speech(), std::move(prompts), std::move(gen));
  }
  c10::InferenceMode inference;
  std::lock_guard<std::mutex> lock(device_mutex_);
  return run_device_prompts(device_->model, speech(), std::move(prompts), so, seeds);
}

void Collaborator::answer_on_device_instead(const std::vector<size_t>& failed,
                                            const std::vector<std::string>& errors,
                                            const std::vector<std::vector<int>>& prompts,
                                            const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                            std::vector<CollabResult>& results) {
  // The device's own best answer, decoded again with the hand-off token banned, flagged as such.
  const Tokenizer& tok = *device_->tokenizer;
  std::vector<std::vector<int>> retry_prompts;
  std::vector<uint64_t> retry_seeds;
  for (size_t i : failed) {
    retry_prompts.push_back(prompts[i]);
    retry_seeds.push_back(seeds[i]);
  }
  SamplingOptions so = device_sampling(speech(), opts.temperature, opts.max_new_tokens, opts.top_p);
  if (tok.handoff_id() >= 0) so.banned_ids = {tok.handoff_id()};  // (a hand-off phrase is read as a call)
  std::vector<DeviceOutput> retry;
  const auto t0 = std::chrono::steady_clock::now();
  retry = run_on_device(std::move(retry_prompts), so, retry_seeds);
  const double ms = ms_since(t0);
  for (size_t k = 0; k < failed.size(); ++k) {
    auto& r = results[failed[k]];
    const auto& o = retry[k];
    r.answered_by = AnsweredBy::kDeviceFallback;
    r.cloud_error = errors[failed[k]];
    r.text = o.text;
    r.answer = o.parsed.kind == ResponseKind::kLocalAnswer ? o.parsed.answer : "";
    r.device_tokens += static_cast<int64_t>(o.tokens.size());
    r.finish_reason = o.ended_with_eos ? "stop" : "length";
    r.device_ms += ms;
  }
}

}  // namespace handoff
