#pragma once
// The smallest model the tests train and serve: one layer, d=32, the char tokenizer's 100-token vocabulary.
#include "model/config.h"

namespace handoff::testing {

inline ModelConfig tiny_model_config() {
  ModelConfig c;
  c.vocab_size = 100;
  c.hidden_size = 32;
  c.intermediate_size = 64;
  c.num_hidden_layers = 1;
  c.num_attention_heads = 2;
  c.num_key_value_heads = 2;
  c.max_position_embeddings = 128;
  return c;
}

}  // namespace handoff::testing
