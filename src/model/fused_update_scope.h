#pragma once
// The switch that routes the decoder's training forward to the fused kernels (model/fused_attention.h,
// model/fused_layers.h) inside the RL policy update only.
namespace handoff {

// While one is alive on a thread, the decoder's attention over more than one query token, its RMSNorms and
// its RoPE take the fused kernels where they apply (the policy update, rl/policy_loss.cpp). Elsewhere — SFT,
// whose recipes made the reference checkpoints and must retrain them bit for bit — they keep ATen's ops.
class FusedUpdateScope {
 public:
  FusedUpdateScope();
  ~FusedUpdateScope();
  FusedUpdateScope(const FusedUpdateScope&) = delete;
  FusedUpdateScope& operator=(const FusedUpdateScope&) = delete;
  static bool active();

 private:
  bool was_;
};

}  // namespace handoff
