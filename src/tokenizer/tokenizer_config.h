#pragma once
// Reading HF's tokenizer_config.json, shared by the BPE and SentencePiece tokenizers.
#include <string>

#include <nlohmann/json.hpp>

namespace handoff {

// The text of a special token named under `key` ("bos_token", "eos_token", …), which HF writes either as a
// string
// ("<|im_end|>") or as an AddedToken object ({"content": "<|im_end|>", …}); "" when absent, null or
// malformed.
std::string special_token_content(const nlohmann::json& config, const char* key);

}  // namespace handoff
