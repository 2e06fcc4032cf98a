#pragma once
// A router decides, per query, whether the device's answer stands or the query goes to the cloud. Every
// router of the comparison (paper.md §5's practitioners' baselines) is one of these: it learns from the
// validation split (fit), gives every item a score (higher = more likely to hand off), and is calibrated on
// the validation scores to a cloud-call rate (route/pure/calibration.h); on another split it hands off the
// items whose score is strictly above that threshold.
//
// The hand-off threshold of a model trained to decide itself (GAPG) acts inside decoding instead of on
// scores: route/handoff_threshold.h.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "collab/verdicts.h"
#include "model/decoder.h"
#include "tasks/task.h"
#include "tokenizer/tokenizer.h"

namespace handoff::route {

// One split as a router sees it: the items and the device's greedy verdicts on them (same order).
struct RouterSplit {
  const std::vector<Problem>& items;
  const DeviceVerdicts& device;
};

// The frozen device model the probes read hidden states of (the one whose verdicts are routed).
struct RouterDevice {
  CausalLM model{nullptr};
  const Tokenizer* tokenizer = nullptr;
  const Protocol* protocol = nullptr;  // what the device is told; null: the embedded default
  DeviceSpeech speech() const;
};

class Router {
 public:
  virtual ~Router() = default;
  virtual std::string key() const = 0;   // "random", "prompt-router", …: names it in files and results
  virtual std::string name() const = 0;  // the report's row
  // Learns from the validation split; the default learns nothing.
  virtual void fit(const RouterSplit& val) { (void)val; }
  // One score per item of `split`, higher = more likely to hand off.
  virtual std::vector<double> score(const RouterSplit& split) = 0;
  // The threshold at which at most `rate` of the validation scores lie above (route::calibrate_threshold).
  virtual double calibrate(const std::vector<double>& val_scores, double rate) const;
  // 1 where score > threshold: the items handed off.
  std::vector<uint8_t> decide(const std::vector<double>& scores, double threshold) const;
  // What fit() learned (and a stateful router's position), as JSON, and back. Throws Error on a state that
  // is not this router's.
  virtual nlohmann::json state() const { return nlohmann::json::object(); }
  virtual void load_state(const nlohmann::json& state) { (void)state; }
};

// The score routers by key: random, prompt-router, post-inference-router, confidence, oracle.
std::vector<std::string> router_keys();
// `seed` is the random router's (the others ignore it); `device` is read by the probes only. Throws Error
// naming the known keys on an unknown one.
std::unique_ptr<Router> make_router(const std::string& key, const RouterDevice& device, uint64_t seed = 5);

}  // namespace handoff::route
