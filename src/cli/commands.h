#pragma once
// Each `handoff` subcommand registers itself on the app; main() only dispatches and maps errors to exit
// codes.
#include <CLI/CLI.hpp>

namespace handoff::cli {

void register_info(CLI::App& app);
void register_sft(CLI::App& app);
void register_eval(CLI::App& app);
void register_serve(CLI::App& app);
void register_train(CLI::App& app);
void register_demo(CLI::App& app);
void register_ask(CLI::App& app);
void register_add_token(CLI::App& app);
void register_export_gguf(CLI::App& app);
void register_route(CLI::App& app);
void register_init(CLI::App& app);
void register_protocol(CLI::App& app);

}  // namespace handoff::cli
