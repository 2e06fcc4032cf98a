#include "cli/protocol_flag.h"

namespace handoff {

void add_protocol_flag(CLI::App* cmd, std::string& protocol) {
  cmd->add_option("--protocol", protocol,
                  "What the device and the cloud are told and how replies are read: handoff (the embedded "
                  "default), paper, or a protocol JSON file (default: what the checkpoint records)");
}

void apply_protocol_flag(LoadedModel& model, const std::string& protocol) {
  if (!protocol.empty()) model.use_protocol(load_protocol(protocol));
}

}  // namespace handoff
