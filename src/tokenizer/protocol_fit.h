#pragma once
// A protocol (protocol/protocol.h) meets a model's tokenizer: can the device write its markers, and the chat
// template's thinking switch.
#include "protocol/protocol.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

// Throws Error naming the protocol and the field when `tok` cannot write what the protocol asks of the
// device: no <handoff> token for a protocol that hands off with it, or a phrase or answer marker that does
// not survive encode → decode. `needs_handoff` false: the token is not required (a method that never calls
// the cloud).
void check_protocol_fits(const Protocol& p, const Tokenizer& tok, bool needs_handoff = true);
// Sets the tokenizer's thinking switch to the protocol's (unset: the template's default, thinking on), before
// the tokenizer is shared.
void apply_protocol(const Protocol& p, Tokenizer& tok);

}  // namespace handoff
