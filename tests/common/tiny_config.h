// The one tiny Llama that tests build random models from: 2 layers, 4 query heads sharing 2
// KV heads (GQA), head_dim = n_embd / 4, 256 positions and a tied head; vocabulary 256 (bytes
// as token ids). A test that needs another shape passes n_embd / n_ff / vocab or changes a
// field, and says why. Byte-level models with the tokenizer use train/byte_level_model.h.
#pragma once
#include <cstdint>

#include "model/config.h"

namespace tpro::test {

inline LlamaConfig tiny_config(int64_t n_embd = 64, int64_t n_ff = 128, int64_t vocab = 256) {
  LlamaConfig c;
  c.vocab_size = vocab;
  c.n_embd = n_embd;
  c.n_ff = n_ff;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = n_embd / 4;
  c.max_position = 256;
  c.tie_word_embeddings = true;
  return c;
}

}  // namespace tpro::test
