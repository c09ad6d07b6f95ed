// LoRA adapters as GGUF files for llama.cpp's --lora, the layout convert_lora_to_gguf.py
// writes: general.type=adapter, adapter.type=lora, adapter.lora.alpha (f32; llama.cpp scales
// by alpha/r, so rsLoRA's α/√r is written as α·√r), general.architecture, and per projection
// blk.N.<attn_q|...|ffn_down>.weight.lora_a (ne [in, r], PEFT's A) and .lora_b (ne [r, out],
// PEFT's B) whose rows are permuted like the base's for attn_q/attn_k of the llama arch. A phi3
// base's adapters are over its fused attn_qkv and ffn_up (gate_up_proj), as convert_lora_to_gguf.py names them.
// tpro also stores the shapes and heads (<arch>.* keys) and its exact LoRA settings (tpro.*),
// which llama.cpp ignores, so a file converts back to PEFT without the base model.
#pragma once
#include <string>

#include "io/gguf.h"
#include "model/lora.h"

namespace tpro {

struct GgufAdapterMeta {
  std::string base_model;  // tpro.base_model (PEFT base_model_name_or_path); may be empty
};

// Writes lw as F32 tensors (or F16/BF16) for a base of configuration `base`.
void save_adapter_gguf(const fs::path& file, const LoraWeights& lw, const LlamaConfig& base,
                       const std::string& base_model, GgmlType type = GgmlType::F32);

// Reads a GGUF LoRA adapter for a base of configuration `base`, checking general.type,
// adapter.type, the architecture and every tensor's name, pairing and shape ("(hint: maybe
// wrong base model?)" as llama.cpp says). Files from other tools (no tpro.* keys) load with
// alpha = adapter.lora.alpha and no rsLoRA, which scales the same. Moments and grads zeroed.
LoraWeights load_adapter_gguf(const fs::path& file, const LlamaConfig& base, GgufAdapterMeta* meta = nullptr);

// The base configuration a tpro-written adapter records (shapes and heads; vocabulary and
// norms unknown). Throws, naming the missing key, for adapters that lack it.
LlamaConfig gguf_adapter_base_config(const GgufFile& f);

}  // namespace tpro
