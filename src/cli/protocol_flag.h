#pragma once
// `--protocol NAME|FILE` for the commands that render a device prompt or read a device reply (eval, ask,
// serve, route; train and sft carry it in their option tables): what the device and the cloud are told and
// how the device's reply is read (protocol/protocol.h). Unset: the protocol the checkpoint records, else
// the embedded default.
#include <CLI/CLI.hpp>
#include <string>

#include "io/checkpoint.h"

namespace handoff {

void add_protocol_flag(CLI::App* cmd, std::string& protocol);
// Replaces the checkpoint's recorded protocol with `protocol` when given (checked against its tokenizer).
void apply_protocol_flag(LoadedModel& model, const std::string& protocol);

}  // namespace handoff
