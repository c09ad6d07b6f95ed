// Loading a Hugging Face Llama-family folder into Model views; see hf_model.h.
#include "formats/hf_model.h"

#include "core/error.h"
#include "core/log.h"
#include "formats/hf_config.h"
#include "io/safetensors.h"

namespace tpro {

namespace {

WeightMatrix matrix_view(const TensorSource& src, const std::string& name, int64_t rows, int64_t cols) {
  TensorView t = src.get(name, {rows, cols});
  WeightMatrix w;
  w.rows = rows;
  w.cols = cols;
  w.data = t.data;
  switch (t.dtype) {
    case DType::F32: w.type = WType::F32; break;
    case DType::BF16: w.type = WType::BF16; break;
    case DType::F16: w.type = WType::F16; break;
    default:
      fail(src.file_of(name).string(), ": tensor ", name, " has dtype ", dtype_name(t.dtype),
           " (hint: tpro loads F32, BF16 and F16 weights)");
  }
  return w;
}

std::vector<float> vector_f32(const TensorSource& src, const std::string& name, int64_t n) {
  TensorView t = src.get(name, {n});
  if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16)
    fail(src.file_of(name).string(), ": tensor ", name, " has dtype ", dtype_name(t.dtype), ", expected a float type");
  std::vector<float> v(static_cast<size_t>(n));
  to_f32(v.data(), t.data, t.dtype, size_t(n));
  return v;
}

std::vector<float> optional_vector(const TensorSource& src, const std::string& name, int64_t n, bool expected) {
  if (!expected) {
    if (src.has(name)) log_warn(src.file_of(name).string(), ": ignoring unexpected tensor ", name);
    return {};
  }
  return vector_f32(src, name, n);
}

}  // namespace

Model load_hf_model(const fs::path& dir) {
  Model m;
  m.cfg = load_hf_config(dir);
  m.source = dir.string();
  auto tensors = std::make_shared<TensorSource>(TensorSource::open_dir(dir));
  m.owned.push_back(tensors);  // the views below point into its memory maps
  const TensorSource& src = *tensors;
  if (m.cfg.multimodal_checkpoint) {  // newer transformers: model.language_model.*, older: language_model.model.*
    if (!src.has(m.cfg.hf_prefix + "embed_tokens.weight") && src.has("language_model.model.embed_tokens.weight"))
      m.cfg.hf_prefix = "language_model.model.";
    log_info(src.describe(), ": training the language model of this ", "Gemma3ForConditionalGeneration checkpoint (",
             m.cfg.hf_prefix, "*); its vision tower is not loaded");
  }
  const LlamaConfig& c = m.cfg;
  const std::string& hp = c.hf_prefix;
  std::vector<int64_t> layers;
  for (const std::string& name : src.names()) layers.push_back(layer_of(name, hp + "layers."));
  check_layers_present(c, layers, (dir / "config.json").string() + " and " + src.describe(), "num_hidden_layers");
  const int64_t D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  m.embed = matrix_view(src, hp + "embed_tokens.weight", c.vocab_size, D);
  if (c.tie_word_embeddings) {
    m.lm_head = m.embed;
  } else {
    m.lm_head = matrix_view(src, "lm_head.weight", c.vocab_size, D);
  }
  m.norm = vector_f32(src, hp + "norm.weight", D);
  m.layers.resize(size_t(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = cat(hp, "layers.", l, ".");
    LayerWeights& L = m.layers[size_t(l)];
    L.ln1 = vector_f32(src, p + "input_layernorm.weight", D);
    if (c.sandwich_norms) {  // Gemma: post_attention_layernorm is on the attention's output
      L.ln_post_attn = vector_f32(src, p + "post_attention_layernorm.weight", D);
      L.ln2 = vector_f32(src, p + "pre_feedforward_layernorm.weight", D);
      L.ln_post_ffn = vector_f32(src, p + "post_feedforward_layernorm.weight", D);
    } else {
      L.ln2 = vector_f32(src, p + "post_attention_layernorm.weight", D);
    }
    if (c.fused_proj) {  // Phi-3: q|k|v and gate|up rows in one matrix each
      L.wqkv = matrix_view(src, p + "self_attn.qkv_proj.weight", Q + 2 * KV, D);
      L.wgate_up = matrix_view(src, p + "mlp.gate_up_proj.weight", 2 * F, D);
    } else {
      L.wq = matrix_view(src, p + "self_attn.q_proj.weight", Q, D);
      L.wk = matrix_view(src, p + "self_attn.k_proj.weight", KV, D);
      L.wv = matrix_view(src, p + "self_attn.v_proj.weight", KV, D);
      L.wgate = matrix_view(src, p + "mlp.gate_proj.weight", F, D);
      L.wup = matrix_view(src, p + "mlp.up_proj.weight", F, D);
    }
    L.wo = matrix_view(src, p + "self_attn.o_proj.weight", D, Q);
    L.bq = optional_vector(src, p + "self_attn.q_proj.bias", Q, c.attn_qkv_bias);
    L.bk = optional_vector(src, p + "self_attn.k_proj.bias", KV, c.attn_qkv_bias);
    L.bv = optional_vector(src, p + "self_attn.v_proj.bias", KV, c.attn_qkv_bias);
    L.bo = optional_vector(src, p + "self_attn.o_proj.bias", D, c.attn_o_bias);
    if (c.qk_norm) {
      L.q_norm = vector_f32(src, p + "self_attn.q_norm.weight", c.head_dim);
      L.k_norm = vector_f32(src, p + "self_attn.k_norm.weight", c.head_dim);
    }
    L.wdown = matrix_view(src, p + "mlp.down_proj.weight", D, F);
    L.bgate = optional_vector(src, p + "mlp.gate_proj.bias", F, c.mlp_bias);
    L.bup = optional_vector(src, p + "mlp.up_proj.bias", F, c.mlp_bias);
    L.bdown = optional_vector(src, p + "mlp.down_proj.bias", D, c.mlp_bias);
  }
  if (c.norm_plus_one) add_to_norms(m, 1.0f);  // Gemma's files hold w of x·(1 + w)
  m.inv_freq = c.rope_inv_freq();
  m.inv_freq_local = c.rope_inv_freq_local();
  return m;
}

}  // namespace tpro
