// Writes a Model to disk: a Hugging Face folder (config.json + model.safetensors) or a GGUF
// file llama.cpp loads (<arch>.* metadata, tensor names, attn_q/attn_k rows permuted for the
// llama arch as convert_hf_to_gguf.py does, rope_freqs when the frequencies are not plain; phi3's
// fused tensors and LongRoPE factors; YaRN and dynamic NTK, which GGUF cannot say, are refused).
// Any WType converts matrix by matrix; merging is model/merge.h's, the tokenizer the caller's
// (GGUF keys in metadata). Also: random models as Hugging Face folders, for tests and the demo.
#pragma once
#include <optional>
#include <string>
#include <vector>

#include "core/file.h"
#include "io/gguf.h"
#include "model/model.h"

namespace tpro {

struct GgufModelOptions {
  std::optional<WType> weights;     // projections; nullopt keeps each one's type (not NF4)
  std::optional<WType> embeddings;  // token_embd and output; nullopt keeps their type
  std::string name;                 // general.name; empty = none
  std::vector<GgufKV> metadata;     // further entries (e.g. tokenizer.*), written last
};

// Throws when a type has no GGUF form (NF4) or a matrix's columns do not fit its blocks.
void save_model_gguf(const fs::path& file, const Model& m, const GgufModelOptions& o);

// Every tensor in dtype (F32, BF16 or F16); config.json's torch_dtype says which. Throws when
// the model's RoPE frequencies cannot be written as config.json rope_scaling.
void save_model_hf(const fs::path& dir, const Model& m, DType dtype);

// Writes a model with random weights (normal, std; norms 1) as a Hugging Face folder
// (config.json + model.safetensors). dtype F32, BF16 or F16.
void write_random_model(const fs::path& dir, const LlamaConfig& cfg, uint64_t seed, DType dtype, float std = 0.02f);

// The bytes of w stored as `to` (a copy when the type already matches; else through f32).
std::vector<uint8_t> convert_matrix(const WeightMatrix& w, WType to);

}  // namespace tpro
