// Llama-family models in llama.cpp's GGUF layout: <arch>.* metadata onto LlamaConfig, token_embd/
// output/blk.N.* tensors onto Model views, kept in the file's types (F32, F16, BF16, Q8_0, Q4_0,
// Q4_K, Q6_K) and memory map; llama's attn_q/attn_k rows, which the converter permutes for its
// interleaved RoPE, move back into owned copies (whole rows, so quantized too), so a GGUF model
// computes like the HF weights. phi3: fused attn_qkv, ffn_up = gate_up, partial rotary, LongRoPE.
// Reference: llama.cpp convert_hf_to_gguf.py (LlamaModel.permute, Phi3MiniModel), gguf-py constants.py.
#pragma once
#include <string>

#include "io/gguf.h"
#include "model/lora.h"
#include "model/model.h"

namespace tpro {

// general.architecture of a config: "llama" (Llama, Mistral, SmolLM, TinyLlama), "qwen2",
// "qwen3", "gemma2", "gemma3" or "phi3".
// The query_pre_attn_scalar llama.cpp uses for a Gemma model: hidden / heads for the 27B
// models (46 or 62 layers), else the head size (GGUF has no key for it).
double gguf_gemma_query_scalar(const LlamaConfig& c, int64_t head_dim);
std::string gguf_arch(const LlamaConfig& c);
// Whether llama.cpp stores this architecture's attn_q/attn_k rows permuted (llama: yes).
bool gguf_permutes_qk(const std::string& arch);
// "attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down", and for the
// fused projections "attn_qkv" and "ffn_up" (phi3's ffn_up holds gate_up: 2F rows, gate first).
const char* gguf_proj_name(Proj p);
// "blk.3.attn_q.weight"
std::string gguf_weight_name(int64_t layer, Proj p);

// The model configuration from GGUF metadata. vocab_size, tie_word_embeddings and the bias
// flags come from the tensors, so load_gguf_model fills them. Throws on an unsupported
// architecture, a general.type other than model, missing keys or inconsistent heads.
LlamaConfig gguf_model_config(const GgufFile& f);

// Loads a GGUF model; errors name the file, the tensor, and expected vs found shape/type.
Model load_gguf_model(const fs::path& path);

}  // namespace tpro
