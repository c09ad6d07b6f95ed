// Test fixture for the server: a temporary folder with models/tiny (a 2-layer Llama with random
// weights and the byte-level tokenizer, as `tpro demo` makes), data/ (the demo sample text and
// a short text for perplexity) and an empty loras/. Shared by the server unit tests and the
// browser tests' fixture tool.
#pragma once
#include <string>

#include "core/embedded.h"
#include "core/file.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace tpro::testing {

inline LlamaConfig tiny_serve_config() {
  LlamaConfig c;
  c.vocab_size = 259;  // 256 bytes + <|bos|> <|eos|> <|pad|>
  c.n_embd = 64;
  c.n_ff = 128;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.head_dim = 16;
  c.max_position = 256;
  c.tie_word_embeddings = true;
  c.bos_token_id = kByteLevelBosId;
  c.eos_token_id = kByteLevelEosId;
  return c;
}

inline void write_serve_fixture(const fs::path& root) {
  const fs::path model = root / "models" / "tiny";
  write_random_model(model, tiny_serve_config(), 99, DType::F32, 0.3f);
  write_file_atomic(model / "tokenizer.json", byte_level_tokenizer_json());
  write_file_atomic(model / "tokenizer_config.json", byte_level_tokenizer_config_json());
  fs::create_directories(root / "data");
  fs::create_directories(root / "loras");
  write_file_atomic(root / "data" / "sample.txt", embedded_file("assets/demo/sample.txt"));
  write_file_atomic(root / "data" / "short.txt",
                    "The lighthouse keeper climbed the stairs every evening to light the lamp.\n");
}

}  // namespace tpro::testing
