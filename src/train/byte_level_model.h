// Small Llama-architecture models with random weights and the byte-level tokenizer, written as
// a Hugging Face folder: what `tpro demo` trains, and what tests, browser fixtures and
// benchmarks build their models from (no download needed anywhere).
#pragma once
#include <cstdint>

#include "core/dtype.h"
#include "core/file.h"
#include "model/config.h"

namespace tpro {

// A Llama config sized by hand; head_dim = n_embd / n_head, BOS/EOS of the byte-level
// tokenizer, tied embeddings. vocab must be at least 259 (256 bytes + 3 specials).
LlamaConfig byte_level_llama(int64_t n_embd, int64_t n_ff, int64_t n_layer, int64_t n_head, int64_t n_head_kv,
                             int64_t vocab = 259);

// config.json + model.safetensors (normal(0, std) weights, norms 1) + tokenizer.json +
// tokenizer_config.json of the byte-level tokenizer.
void write_byte_level_model(const fs::path& dir, const LlamaConfig& cfg, uint64_t seed, float std = 0.3f,
                            DType dtype = DType::F32);

}  // namespace tpro
