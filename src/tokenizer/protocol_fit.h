#pragma once
// A protocol (protocol/protocol.h) meets a model's tokenizer: can the device write its markers, and the chat
// template's thinking switch.
#include "protocol/protocol.h"
#include "tokenizer/tokenizer.h"

namespace handoff {

// Throws Error naming the protocol and the field when `tok` cannot write what the protocol asks of the
// device: no <handoff> token for a protocol that hands off with it, or a phrase or answer marker that does
// not survive encode → decode.
void check_protocol_fits(const Protocol& p, const Tokenizer& tok);
// Sets the tokenizer's thinking switch when the protocol names one (before the tokenizer is shared).
void apply_protocol(const Protocol& p, Tokenizer& tok);

}  // namespace handoff
