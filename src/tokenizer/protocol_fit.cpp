// Whether a tokenizer can write what a protocol asks of the device (issue 17: "a marker the tokenizer cannot
// encode" is a clear error, never a silently wrong reward).
#include "tokenizer/protocol_fit.h"

#include <utility>
#include <vector>

#include "common/error.h"

namespace handoff {

void check_protocol_fits(const Protocol& p, const Tokenizer& tok, bool needs_handoff) {
  const std::string who = "protocol \"" + p.name + "\"";
  if (needs_handoff && p.handoff_is_token() && tok.handoff_id() < 0)
    throw Error(who + " hands off with the " + std::string(kHandoffMarker) +
                    " token, which the device's tokenizer does not have",
                "add it with `handoff add-token`, or use a protocol whose hand-off is a phrase (e.g. paper)");
  std::vector<std::pair<std::string, std::string>> texts;  // field → text the device must be able to write
  if (!p.handoff_is_token()) texts.push_back({"device.handoff", p.handoff});
  switch (p.answer) {
    case AnswerForm::kAnswerLine:
      texts.push_back({"device.answer", "Answer:"});
      break;
    case AnswerForm::kAnswerTags:
      texts.push_back({"device.answer", "<answer>"});
      texts.push_back({"device.answer", "</answer>"});
      break;
    case AnswerForm::kBoxed:
      texts.push_back({"device.answer", "\\boxed{}"});
      break;
    case AnswerForm::kHashes:
      texts.push_back({"device.answer", "####"});
      break;
  }
  if (p.think) texts.push_back({"device.think", "<think></think>"});
  for (const auto& [field, text] : texts) {
    std::string back;
    try {
      back = tok.decode(tok.encode(text));
    } catch (const Error& e) {
      throw Error(who + ": " + field + " \"" + text +
                  "\" cannot be encoded by the device's tokenizer: " + e.what());
    }
    if (back != text)
      throw Error(who + ": " + field + " \"" + text +
                  "\" does not survive the device's tokenizer (it decodes as \"" + back + "\")");
  }
}

void apply_protocol(const Protocol& p, Tokenizer& tok) {
  tok.set_enable_thinking(p.enable_thinking.value_or(true));
}

}  // namespace handoff
