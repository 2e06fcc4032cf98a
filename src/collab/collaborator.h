#pragma once
// Collaborative inference: the device model answers a query; where its response ends in a hand-off
// (paper.md §1), the query goes to the cloud and the cloud's reply is the answer. The one place that turns a
// device completion into a final answer and says who gave it — used by `handoff ask`, the collaborative
// endpoint of `handoff serve` and `handoff eval --cloud`.
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "cloud/cloud_client.h"
#include "cloud/decode_batcher.h"
#include "collab/device_run.h"
#include "collab/pure/budget_guard.h"
#include "collab/remote_device.h"
#include "common/error.h"
#include "io/checkpoint.h"

namespace handoff {

struct CollabOptions {
  double temperature = 0.0;  // device decoding (0 = greedy: the deployed policy's decision)
  double top_p = 1.0;
  int64_t max_new_tokens = 96;     // device generation limit
  double handoff_threshold = 1.1;  // ≤ 1: the deployment knob of sampler.h (more hand-offs as it falls)
  int64_t cloud_max_tokens = 256;  // max_tokens of the cloud request
  // Paper.md §1: the cloud sees the original query only. With this on, the device's reasoning before the
  // hand-off is appended to the last user message (reviewers asked for it; measure whether it helps).
  bool forward_reasoning = false;
  // When the cloud fails (down, timeout, garbage): false → the failure is an Error for this query;
  // true → the device answers itself (decoded again with <handoff> banned) and the result is flagged.
  bool fallback = false;
};

enum class AnsweredBy { kDevice, kCloud, kDeviceFallback };
std::string answered_by_name(AnsweredBy who);  // "device" | "cloud" | "device-fallback"

struct CollabResult {
  AnsweredBy answered_by = AnsweredBy::kDevice;
  std::string text;    // the final reply shown to the user (device completion or cloud reply)
  std::string answer;  // the final answer extracted by the shared parser; "" when there is none
  std::string finish_reason = "stop";  // "length" when the answering side hit its token limit
  std::string device_text;  // what the device generated (its reasoning, ending in the marker on a hand-off)
  ResponseKind device_kind = ResponseKind::kFormatError;
  int64_t device_prompt_tokens = 0, device_tokens = 0;  // device tokens incl. a fallback decode
  int64_t cloud_prompt_tokens = 0, cloud_tokens = 0;
  double device_ms = 0, cloud_ms = 0;
  bool called_cloud = false;  // the device handed off (whether or not the cloud then succeeded)
  std::string cloud_error;    // set when the cloud failed and the fallback answered
  // With a hand-off threshold: the one this decision used and the device's score against it (its highest
  // P(<handoff>) up to the decision, DeviceOutput::handoff_score); −1 without one. With the budget guard:
  // whether the guard changed the decision (BudgetGuard::record).
  double handoff_threshold = -1, handoff_score = -1;
  bool guarded = false, guard_changed = false;
};

// The error answer() throws when the hand-offs failed only because the cloud's slots were all taken.
struct CloudBusy : Error {
  using Error::Error;
};
inline constexpr const char* kCloudBusyMessage = "the cloud is busy: every cloud slot is in use";

class Collaborator {
 public:
  // `device` must have a tokenizer with a hand-off token; `cloud` is any OpenAI-compatible client.
  Collaborator(std::shared_ptr<LoadedModel> device, std::shared_ptr<const CloudClient> cloud,
               CollabOptions opts);
  // The device behind an OpenAI-compatible server (remote_device.h), spoken to by `protocol`. What needs the
  // device's own logits is refused here with an Error: the hand-off threshold and the budget guard. The
  // fallback asks the server again with the hand-off token banned (logit_bias), so with a protocol whose
  // hand-off is the token it needs that token's id on the server, `handoff_token` (remote_handoff_token()).
  Collaborator(std::shared_ptr<const CloudClient> device_server, Protocol protocol,
               std::shared_ptr<const CloudClient> cloud, CollabOptions opts, int handoff_token = -1);
  // The refusals above; `handoff_token_known`: the fallback can ban the hand-off.
  static void check_remote_options(const CollabOptions& opts, bool handoff_token_known);
  // Queries are conversations (a single user message for `handoff ask`). One result per query, in order; the
  // device decodes them as one batch, hand-offs go to the cloud `cloud_concurrency` at a time. Throws Error
  // when the cloud fails and fallback is off. Thread-safe (device decoding is serialised).
  std::vector<CollabResult> answer(const std::vector<std::vector<ChatMessage>>& queries,
                                   const std::vector<uint64_t>& seeds, int cloud_concurrency = 4) {
    return answer(queries, seeds, opts_, cloud_concurrency);
  }
  // Same, with per-call options (the collaborative endpoint's request temperature and max_tokens).
  std::vector<CollabResult> answer(const std::vector<std::vector<ChatMessage>>& queries,
                                   const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                   int cloud_concurrency = 4);
  CollabResult answer(const std::string& query, uint64_t seed = 0);

  // At most `slots` cloud calls in flight across all answer() calls (0 = no limit). A hand-off past the
  // limit is not queued: it fails at once with a CloudBusy message (→ HTTP 503 at the endpoint, or the
  // flagged fallback), so hung cloud calls can hold at most `slots` of the server's worker threads and the
  // rest keep answering on the device (issue 16: cloud concurrency separate from the device's).
  void limit_cloud_calls(int slots) { cloud_slots_ = slots; }
  // Concurrent answer() calls share the device's forward passes (continuous batching: DecodeBatcher, up to
  // max_rows rows decoding at once) instead of taking turns behind one mutex — the collaborative endpoint's
  // setting (`serve --max-batch`). Off by default: evaluation decodes its own large batches with generate(),
  // whose float sums, and so its recorded results, stay as they are. Call before serving.
  void share_device_decodes(int max_rows);
  // The budget guard (`serve --max-call-rate`, issue 20): from now on every decision's hand-off threshold is
  // the guard's, and every decision is reported to it. Needs a protocol whose hand-off is the <handoff>
  // token (Error otherwise). Call before serving.
  void guard_budget(std::shared_ptr<BudgetGuard> guard);
  std::shared_ptr<const BudgetGuard> budget_guard() const { return guard_; }
  DecodeBatcherStats device_batch_stats() const {
    return device_batcher_ ? device_batcher_->stats() : DecodeBatcherStats{};
  }

  // A device behind --device-url: no tokenizer, context or logits here (speech() and device_context()
  // throw Error); its server encodes and checks the prompt.
  bool remote_device() const { return device_server_ != nullptr; }
  const Protocol& protocol() const { return remote_device() ? remote_protocol_ : device_->protocol; }
  // The device's tokenizer and protocol (what it is told, how its replies are read).
  DeviceSpeech speech() const;
  int64_t device_context() const;
  const CollabOptions& options() const { return opts_; }

 private:
  std::vector<ChatMessage> cloud_messages(const std::vector<ChatMessage>& query, const std::string& reasoning,
                                          const CollabOptions& opts) const;
  // The steps of answer(): the device prompts (Error when one does not fit the context); one batched device
  // decode (sets device_ms); the device outputs into `results`, returning the hand-offs' indices; the cloud
  // calls, returning each query's cloud error ("" when none); the fallback decode of the failed hand-offs.
  std::vector<std::vector<int>> encode_queries(const std::vector<std::vector<ChatMessage>>& queries) const;
  std::vector<DeviceOutput> decode_on_device(const std::vector<std::vector<int>>& prompts,
                                             const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                             std::vector<CollabResult>& results);
  static std::vector<size_t> take_device_outputs(const std::vector<DeviceOutput>& outs,
                                                 std::vector<CollabResult>& results);
  void report_to_guard(const std::vector<DeviceOutput>& outs, double threshold,
                       std::vector<CollabResult>& results) const;
  std::vector<std::string> ask_cloud(const std::vector<std::vector<ChatMessage>>& queries,
                                     const std::vector<DeviceOutput>& outs,
                                     const std::vector<size_t>& to_cloud, const CollabOptions& opts,
                                     int cloud_concurrency, std::vector<CollabResult>& results) const;
  std::vector<DeviceOutput> run_on_device(std::vector<std::vector<int>> prompts, const SamplingOptions& so,
                                          const std::vector<uint64_t>& seeds);
  void answer_on_device_instead(const std::vector<size_t>& failed, const std::vector<std::string>& errors,
                                const std::vector<std::vector<int>>& prompts,
                                const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                std::vector<CollabResult>& results);
  // The queries asked of the device server (remote_device()), `concurrency` at a time: DeviceOutputs with
  // the reply's text and parse (no token ids), each result's device token counts and time set.
  std::vector<DeviceOutput> ask_device_server(const std::vector<std::vector<ChatMessage>>& queries,
                                              const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                              int concurrency, std::vector<CollabResult>& results,
                                              int banned_token = -1) const;
  // answer() with a device server: ask it, hand off, and on failed cloud calls (with the fallback) ask it
  // again with the hand-off banned.
  std::vector<CollabResult> answer_remote(const std::vector<std::vector<ChatMessage>>& queries,
                                          const std::vector<uint64_t>& seeds, const CollabOptions& opts,
                                          int cloud_concurrency);
  std::shared_ptr<LoadedModel> device_;               // null when the device is a server
  std::shared_ptr<const CloudClient> device_server_;  // set when it is
  Protocol remote_protocol_;
  int remote_handoff_token_ = -1;  // the hand-off token's id on the device server, when known
  std::shared_ptr<const CloudClient> cloud_;
  CollabOptions opts_;
  std::mutex device_mutex_;                        // one generate() at a time when not shared
  std::unique_ptr<DecodeBatcher> device_batcher_;  // set by share_device_decodes()
  std::shared_ptr<BudgetGuard> guard_;             // set by guard_budget()
  std::atomic<int> cloud_slots_{0};
  mutable std::atomic<int> cloud_in_flight_{0};
};

}  // namespace handoff
