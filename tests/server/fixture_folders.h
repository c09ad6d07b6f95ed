// Test fixture for the server: a temporary folder with models/tiny (a 2-layer Llama with random
// weights and the byte-level tokenizer, as `tpro demo` makes) and the same model as
// models/tiny.gguf (vocabulary embedded), data/ (the demo sample text and a short text for
// perplexity) and an empty loras/. Shared by the server unit tests and the
// browser tests' fixture tool.
#pragma once
#include <string>

#include "core/embedded.h"
#include "core/file.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/model.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/tokenizer.h"
#include "train/byte_level_model.h"

namespace tpro::test {

inline LlamaConfig tiny_serve_config() {
  LlamaConfig c = byte_level_llama(64, 128, 2, 4, 2);
  c.max_position = 256;  // the perplexity tests check the max_length bound against it
  return c;
}

inline void write_serve_fixture(const fs::path& root) {
  const fs::path model = root / "models" / "tiny";
  write_byte_level_model(model, tiny_serve_config(), 99);
  GgufModelOptions gguf;
  gguf.metadata = gguf_vocab_from_hf(model, tiny_serve_config().vocab_size);
  save_model_gguf(root / "models" / "tiny.gguf", load_model(model), gguf);
  fs::create_directories(root / "data");
  fs::create_directories(root / "loras");
  write_file_atomic(root / "data" / "sample.txt", embedded_file("assets/demo/sample.txt"));
  write_file_atomic(root / "data" / "short.txt",
                    "The lighthouse keeper climbed the stairs every evening to light the lamp.\n");
}

}  // namespace tpro::test
