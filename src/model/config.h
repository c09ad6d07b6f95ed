// The configuration of a Llama-family decoder (Llama, Mistral, Qwen2, Qwen3, Gemma 2, Gemma 3;
// SmolLM and TinyLlama are Llama) as the forward pass needs it, and what follows from it: head sizes, the RoPE
// frequencies with rope_scaling applied as transformers does, and the checks every loader runs.
// Reading it from a file (config.json, GGUF metadata) is formats/' job; nothing here opens one.
// Legend: D model dim, F FFN dim, H/Hkv heads, Dh head dim, V vocab.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace tpro {

struct RopeScaling {
  std::string type;  // "" (none), "linear", "llama3", "yarn", "dynamic" (NTK), "longrope"
  double factor = 1.0, low_freq_factor = 1.0, high_freq_factor = 4.0;
  int64_t original_max_position = 8192;
  // YaRN: the ramp between beta_fast and beta_slow rotations, mscale / mscale_all_dim
  double beta_fast = 32.0, beta_slow = 1.0, mscale = 0.0, mscale_all_dim = 0.0;
  bool truncate = true;
  double attention_factor = 0.0;  // YaRN / LongRoPE: cos and sin times this; 0 = derived as transformers does
  std::vector<double> short_factor, long_factor;  // LongRoPE: one per rotary frequency
};

// The MLP's gate activation: SwiGLU (Llama, Qwen) or GeGLU with gelu's tanh form (Gemma).
enum class MlpAct { silu, gelu_tanh };

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
  bool qk_norm = false;        // Qwen3, Gemma 3: RMSNorm over each head of q and k before RoPE
  bool fused_proj = false;     // Phi-3: q, k, v in one qkv_proj and gate, up in one gate_up_proj
  int64_t rotary_dim = 0;      // Phi: head_dim · partial_rotary_factor dims rotate; 0 = head_dim
  // Gemma 2 / 3
  MlpAct mlp_act = MlpAct::silu;
  bool sandwich_norms = false;  // RMSNorm on the attention and MLP outputs too (4 norms per block)
  bool norm_plus_one = false;   // files hold RMSNorm weights w, the model multiplies by 1 + w (held as 1 + w)
  double embed_scale = 0.0;     // embeddings times sqrt(D) rounded to torch_dtype; 0 = none
  bool embed_scale_inside = false;  // Gemma 3 scales inside the embedding module: NEFTune's noise comes after
  double query_pre_attn_scalar = 0.0;  // attention scores scaled by its -1/2 power; 0 = head_dim
  double attn_softcap = 0.0;    // scores -> cap·tanh(scores/cap); 0 = none
  double final_softcap = 0.0;   // logits likewise
  std::vector<uint8_t> layer_sliding;  // per layer 1 = sliding window; empty = every layer (Mistral, Qwen2)
  double rope_local_theta = 0.0;       // Gemma 3: RoPE base of the sliding layers (unscaled); 0 = rope_theta
  // Where the decoder's tensors live in the HF checkpoint: "model." (…embed_tokens, …layers.N,
  // …norm); a Gemma3ForConditionalGeneration checkpoint holds them under "model.language_model."
  // (or "language_model.model." in older files), which PEFT's adapter keys follow too.
  std::string hf_prefix = "model.";
  bool multimodal_checkpoint = false;  // the text part of a vision-language checkpoint
  int64_t bos_token_id = -1, eos_token_id = -1;
  std::string torch_dtype = "float32";

  int64_t q_dim() const { return n_head * head_dim; }
  int64_t kv_dim() const { return n_head_kv * head_dim; }
  int64_t rot_dim() const { return rotary_dim > 0 ? rotary_dim : head_dim; }
  // RoPE inverse frequencies (rot_dim/2), rope_scaling applied as transformers does. seq_len:
  // the positions a batch uses (max position + 1); only dynamic NTK and LongRoPE depend on it.
  std::vector<float> rope_inv_freq(int64_t seq_len = 0) const;
  bool rope_depends_on_length() const { return rope_scaling.type == "dynamic" || rope_scaling.type == "longrope"; }
  // The factor cos and sin are multiplied by (YaRN, LongRoPE attention factor); 1 otherwise.
  float rope_mscale() const;
  // Gemma 3's sliding layers: rope_local_theta, no scaling; empty when all layers share one table.
  std::vector<float> rope_inv_freq_local() const;
  bool is_gemma() const { return sandwich_norms; }
  // The sliding window of layer l (0 = full attention) and whether it uses the local RoPE table.
  int64_t window_of(int64_t l) const {
    return layer_sliding.empty() || (size_t(l) < layer_sliding.size() && layer_sliding[size_t(l)]) ? sliding_window : 0;
  }
  bool local_rope(int64_t l) const { return rope_local_theta > 0.0 && window_of(l) > 0; }
  // The attention scores' scale: 1/sqrt(query_pre_attn_scalar or head_dim).
  float attn_scale() const;
};

// Gemma 2 (version 2) and Gemma 3 (3): GeGLU, four norms per block holding 1 + w, the sliding
// pattern (every other layer from layer 0; five of six), and for 3 the q/k norms and the
// embedding scale inside the embedding module. Loaders set the numbers they read after this.
void set_gemma_family(LlamaConfig& c, int version);

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
