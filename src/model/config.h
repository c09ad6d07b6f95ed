// The configuration of a Llama-family decoder (Llama, Mistral, Qwen2; SmolLM and TinyLlama are
// Llama) as the forward pass needs it, and what follows from it: head sizes, the RoPE
// frequencies with rope_scaling applied as transformers does, and the checks every loader runs.
// Reading it from a file (config.json, GGUF metadata) is formats/' job; nothing here opens one.
// Legend: D model dim, F FFN dim, H/Hkv heads, Dh head dim, V vocab.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tpro {

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3"
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
};

struct LlamaConfig {
  std::string architecture = "LlamaForCausalLM";
  std::string model_type = "llama";
  int64_t vocab_size = 0;    // V
  int64_t n_embd = 0;        // D, hidden_size
  int64_t n_ff = 0;          // F, intermediate_size
  int64_t n_layer = 0;
  int64_t n_head = 0;        // H
  int64_t n_head_kv = 0;     // Hkv (GQA when < H)
  int64_t head_dim = 0;      // Dh (hidden_size / heads unless given)
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  int64_t max_position = 2048;
  int64_t sliding_window = 0;  // Mistral; 0 = none
  bool tie_word_embeddings = false;
  bool attn_qkv_bias = false;  // Qwen2; Llama attention_bias
  bool attn_o_bias = false;    // Llama attention_bias only
  bool mlp_bias = false;
  bool qk_norm = false;        // Qwen3: RMSNorm over each head of q and k before RoPE
  int64_t bos_token_id = -1, eos_token_id = -1;
  std::string torch_dtype = "float32";

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  // RoPE inverse frequencies (Dh/2), rope_scaling applied as transformers does.
  std::vector<float> rope_inv_freq() const;
};

// Checks the values a forward pass divides by or exponentiates (rms_norm_eps > 0, rope_theta > 0,
// rope-scaling factors > 0, all finite) and the head arithmetic; throws Error naming origin and
// the key. Both loaders (config.json and GGUF metadata) call it, so a NaN or zero epsilon is a
// load error rather than a NaN loss.
void validate_config(const LlamaConfig& c, const std::string& origin);

// Fails when `layer_indices` (from the weight files' tensor names) holds a layer at or beyond
// n_layer: a config that says 2 layers on a 4-layer file would otherwise train 2 silently.
void check_layers_present(const LlamaConfig& c, const std::vector<int64_t>& layer_indices, const std::string& origin,
                          const char* key);

}  // namespace tpro
