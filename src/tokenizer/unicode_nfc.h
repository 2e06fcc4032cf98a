#pragma once
// Unicode NFC normalization (UAX #15: canonical decomposition, canonical ordering, canonical composition),
// the normalizer of Qwen2's tokenizer.json. Tables come from gen_unicode_nfc.py.
#include <string>
#include <string_view>

namespace handoff {

// `text` in NFC. Invalid UTF-8 bytes are kept as they are (each one ends a composition run).
std::string unicode_nfc(std::string_view text);

}  // namespace handoff
