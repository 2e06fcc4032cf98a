#include "model/fused_update_scope.h"

namespace handoff {

namespace {
thread_local bool t_fused_update = false;
}  // namespace

FusedUpdateScope::FusedUpdateScope() : was_(t_fused_update) {
  t_fused_update = true;
}
FusedUpdateScope::~FusedUpdateScope() {
  t_fused_update = was_;
}
bool FusedUpdateScope::active() {
  return t_fused_update;
}

}  // namespace handoff
