// Random byte-level model folders; see byte_level_model.h.
#include "train/byte_level_model.h"

#include "core/error.h"
#include "formats/model_writer.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tpro {

LlamaConfig byte_level_llama(int64_t n_embd, int64_t n_ff, int64_t n_layer, int64_t n_head, int64_t n_head_kv,
                             int64_t vocab) {
  if (vocab < 259) fail("a byte-level model needs a vocabulary of at least 259 tokens, got ", vocab);
  LlamaConfig c;
  c.vocab_size = vocab;
  c.n_embd = n_embd;
  c.n_ff = n_ff;
  c.n_layer = n_layer;
  c.n_head = n_head;
  c.n_head_kv = n_head_kv;
  c.head_dim = n_embd / n_head;
  c.max_position = 2048;
  c.tie_word_embeddings = true;
  c.bos_token_id = kByteLevelBosId;
  c.eos_token_id = kByteLevelEosId;
  return c;
}

void write_byte_level_model(const fs::path& dir, const LlamaConfig& cfg, uint64_t seed, float std, DType dtype) {
  write_random_model(dir, cfg, seed, dtype, std);
  write_file_atomic(dir / "tokenizer.json", byte_level_tokenizer_json());
  write_file_atomic(dir / "tokenizer_config.json", byte_level_tokenizer_config_json());
}

}  // namespace tpro
