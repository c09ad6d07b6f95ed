// A Llama-family model's frozen weights as views: embeddings, per-layer attention and MLP
// projections (any WType: bf16 stays bf16, quantized stays quantized), norms and biases as
// f32. Loaded from a Hugging Face folder or a GGUF file by formats/ (formats/load.h), which
// hands the owners of the bytes (memory maps, copies) over type-erased: nothing here reads a file.
// Legend: D model dim, F FFN dim, H/Hkv heads, Dh head dim, V vocab.
#pragma once
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"
#include "model/config.h"
#include "quant/qmatrix.h"

namespace tpro {

struct LayerWeights {
  std::vector<float> ln1;                // (D) input_layernorm
  WeightMatrix wq, wk, wv, wo;           // (H·Dh, D), (Hkv·Dh, D) ×2, (D, H·Dh)
  std::vector<float> bq, bk, bv, bo;     // biases (empty when absent)
  std::vector<float> q_norm, k_norm;     // (Dh) per-head RMSNorm of q and k (Qwen3; empty when absent)
  std::vector<float> ln2;                // (D) before the MLP: post_attention_layernorm (Gemma: pre_feedforward_layernorm)
  // Gemma's sandwich norms on the branch outputs (empty otherwise); like every norm of a
  // norm_plus_one model they hold 1 + w (formats/ adds and removes the 1).
  std::vector<float> ln_post_attn;       // (D) post_attention_layernorm of Gemma
  std::vector<float> ln_post_ffn;        // (D) post_feedforward_layernorm
  WeightMatrix wgate, wup, wdown;        // (F, D), (F, D), (D, F)
  // Phi-3's fused projections (empty otherwise; then wq, wk, wv, wgate, wup are empty instead)
  WeightMatrix wqkv;                     // (H·Dh + 2·Hkv·Dh, D): q rows, k rows, v rows
  WeightMatrix wgate_up;                 // (2F, D): gate rows, then up rows
  std::vector<float> bgate, bup, bdown;  // mlp_bias (empty when absent)
};

struct Model {
  LlamaConfig cfg;
  std::string source;          // folder or file it came from (base_model_name_or_path)
  WeightMatrix embed;          // (V, D)
  WeightMatrix lm_head;        // (V, D); the embedding itself when tied
  std::vector<float> norm;     // (D) final norm
  std::vector<LayerWeights> layers;
  std::vector<float> inv_freq; // (Dh/2) RoPE inverse frequencies, scaling applied
  std::vector<float> inv_freq_local;  // Gemma 3's sliding layers (empty: every layer uses inv_freq)

  // Owners of the bytes the views point into (a loader's memory-mapped files, converted
  // copies), type-erased so that the model knows no file format.
  std::vector<std::shared_ptr<void>> owned;

  int64_t n_params() const;    // base parameters (for reports)
};

// Adds delta to every RMSNorm weight (block norms, q/k norms, final norm): Gemma's files hold w
// where the model multiplies by 1 + w; tpro holds 1 + w (as llama.cpp's GGUF files do).
void add_to_norms(Model& m, float delta);
// The norm vectors of a layer, for the loops that treat them alike.
std::vector<std::vector<float>*> norms_of(LayerWeights& L);

// The HF tensor name of a layer's projection, e.g. "model.layers.3.self_attn.q_proj".
std::string layer_prefix(int64_t layer);
// The layer index of a tensor named "<prefix><index>.…" ("model.layers.", "blk."), or -1.
int64_t layer_of(const std::string& name, std::string_view prefix);

}  // namespace tpro
