// `handoff protocol show NAME|FILE [--model DIR] [--query TEXT]`: a protocol as JSON (the start of a user's
// own file); with a model, checked against its tokenizer and shown as the device's rendered prompt, the ids
// that end a reply, and the cloud's conversation — what a rehearsal with a real tokenizer needs to see.
#include <cstdio>
#include <memory>

#include "cli/commands.h"
#include "common/error.h"
#include "io/checkpoint.h"
#include "tokenizer/protocol_fit.h"

namespace handoff::cli {

namespace {
struct ShowArgs {
  std::string protocol = "handoff", model, query = "What is 7 + 35?";
};

std::string token_list(const Tokenizer& tok, const std::vector<int>& ids) {
  std::string out;
  for (int id : ids) out += (out.empty() ? "" : ", ") + std::to_string(id) + " " + tok.decode({id});
  return out;
}

void show(const ShowArgs& a) {
  const Protocol p = load_protocol(a.protocol);
  std::printf("%s", p.to_json_text().c_str());
  if (a.model.empty()) return;
  auto tok = load_tokenizer(a.model);
  check_protocol_fits(p, *tok);
  apply_protocol(p, *tok);
  const std::vector<int> ids = tok->encode_chat(p.device_messages(a.query));
  std::printf("\ndevice prompt (%zu tokens):\n%s\n", ids.size(), tok->decode(ids).c_str());
  std::printf("\nstop ids: %s\n", token_list(*tok, tok->stop_ids()).c_str());
  std::printf("hand-off: %s\n", p.handoff_is_token()
                                    ? ("token id " + std::to_string(tok->handoff_id())).c_str()
                                    : ("phrase \"" + p.handoff + "\"").c_str());
  std::printf("\ncloud conversation:\n");
  for (const auto& m : p.cloud_messages(a.query)) std::printf("[%s] %s\n", m.role.c_str(), m.content.c_str());
}
}  // namespace

void register_protocol(CLI::App& app) {
  auto* cmd = app.add_subcommand("protocol", "Show a protocol: what the device and the cloud are told");
  cmd->require_subcommand(1);
  auto a = std::make_shared<ShowArgs>();
  auto* s =
      cmd->add_subcommand("show", "Print a protocol as JSON; with --model, how it renders for that model");
  s->add_option("protocol", a->protocol, "handoff | paper | a protocol JSON file")->capture_default_str();
  s->add_option("--model", a->model, "Checkpoint or tokenizer directory to render the device's prompt with");
  s->add_option("--query", a->query, "The query rendered")->capture_default_str();
  s->callback([a] { show(*a); });
}

}  // namespace handoff::cli
