// Model -> Hugging Face folder or GGUF file; see model_writer.h. Both writers collect every
// tensor in memory before the atomic write (the output model's size), one matrix converted
// at a time through quantize_matrix (any WType in, the requested type out).
#include "formats/model_writer.h"

#include <cstring>
#include <random>

#include "core/error.h"
#include "formats/gguf_model.h"
#include "formats/hf_config.h"
#include "io/gguf_writer.h"
#include "io/safetensors.h"
#include "model/base_weights.h"
#include "quant/quantized_matrix.h"

namespace tpro {

namespace {

WType wtype_of(DType t) {
  switch (t) {
    case DType::F32: return WType::F32;
    case DType::BF16: return WType::BF16;
    case DType::F16: return WType::F16;
    default: fail("cannot write model weights as ", dtype_name(t), " (hint: use f32, bf16 or f16)");
  }
}

GgmlType ggml_of(WType t, const std::string& what) {
  const int id = wtype_to_ggml(t);
  if (id < 0) fail("cannot write ", what, " as ", wtype_name(t), " in GGUF (hint: choose f16, bf16, f32 or q8_0)");
  return GgmlType(id);
}

// llama.cpp's general.file_type (LlamaFileType) of the main weight type.
uint32_t file_type_of(WType t) {
  switch (t) {
    case WType::F32: return 0;
    case WType::F16: return 1;
    case WType::Q4_0: return 2;
    case WType::Q8_0: return 7;
    case WType::Q4_K: return 15;
    case WType::Q6_K: return 18;
    case WType::BF16: return 32;
    case WType::NF4: break;
  }
  return 0;
}

class GgufModelWriter {
 public:
  GgufModelWriter(const Model& m, const GgufModelOptions& o) : m_(m), o_(o), arch_(gguf_arch(m.cfg)) {}

  void metadata();
  void tensors();
  void write(const fs::path& file) const { w_.write(file); }

 private:
  void put_matrix(const std::string& name, const WeightMatrix& w, std::optional<WType> to, int64_t qk_heads = 0);
  void put_vector(const std::string& name, const std::vector<float>& v, int64_t qk_heads = 0);
  void check_representable() const;
  void layer(int64_t l);
  void rope_freqs();

  const Model& m_;
  const GgufModelOptions& o_;
  std::string arch_;
  GgufWriter w_;
};

// What llama.cpp's GGUF has no key for is refused rather than written as another model: YaRN
// and dynamic NTK as transformers computes them, fused projections and partial rotary outside
// phi3, and Llama 3 scaling in phi3 (whose llama.cpp arch has no rope_freqs tensor).
void GgufModelWriter::check_representable() const {
  const LlamaConfig& c = m_.cfg;
  const std::string& t = c.rope_scaling.type;
  const char* hint = " (hint: merge to a Hugging Face folder with --out <dir> instead; tpro and transformers load it)";
  if (t == "yarn" || t == "dynamic")
    fail("cannot write a GGUF of this ", c.architecture, ": llama.cpp's GGUF has no form of transformers' ",
         t == "yarn" ? "YaRN" : "dynamic NTK", " RoPE scaling that computes the same frequencies", hint);
  const bool phi3 = arch_ == "phi3";
  if (!phi3 && (c.fused_proj || (c.rotary_dim > 0 && c.rotary_dim != c.head_dim) || t == "longrope"))
    fail("cannot write a ", arch_, " GGUF of this ", c.architecture, ": fused projections, partial rotary and ",
         "LongRoPE are written for phi3 only", hint);
  if (phi3 && !c.fused_proj)
    fail("cannot write a phi3 GGUF of this model: its projections are not fused (llama.cpp's phi3 reads attn_qkv ",
         "and ffn_up holding gate and up)", hint);
  if (phi3 && t == "llama3")
    fail("cannot write a phi3 GGUF of this model: llama.cpp's phi3 has no rope_freqs tensor for its llama3 RoPE ",
         "scaling", hint);
}

void GgufModelWriter::metadata() {
  const LlamaConfig& c = m_.cfg;
  check_representable();
  const std::string a = arch_ + ".";
  w_.set("general.architecture", arch_);
  w_.set("general.type", "model");
  if (!o_.name.empty()) w_.set("general.name", o_.name);
  if (o_.weights) w_.set("general.file_type", file_type_of(*o_.weights));
  w_.set(a + "context_length", uint32_t(c.max_position));
  w_.set(a + "embedding_length", uint32_t(c.n_embd));
  w_.set(a + "block_count", uint32_t(c.n_layer));
  w_.set(a + "feed_forward_length", uint32_t(c.n_ff));
  w_.set(a + "rope.dimension_count", uint32_t(c.rot_dim()));
  w_.set(a + "attention.head_count", uint32_t(c.n_head));
  w_.set(a + "attention.head_count_kv", uint32_t(c.n_head_kv));
  if (c.head_dim * c.n_head != c.n_embd) {
    w_.set(a + "attention.key_length", uint32_t(c.head_dim));
    w_.set(a + "attention.value_length", uint32_t(c.head_dim));
  }
  w_.set(a + "attention.layer_norm_rms_epsilon", float(c.rms_norm_eps));
  w_.set(a + "rope.freq_base", float(c.rope_theta));
  w_.set(a + "vocab_size", uint32_t(c.vocab_size));
  if (c.rope_scaling.type == "linear") {
    w_.set(a + "rope.scaling.type", "linear");
    w_.set(a + "rope.scaling.factor", float(c.rope_scaling.factor));
  }
  if (arch_ == "phi3") {  // as convert_hf_to_gguf.py's Phi3MiniModel; LongRoPE's factors are tensors
    const RopeScaling& rs = c.rope_scaling;
    w_.set(a + "rope.scaling.original_context_length",
           uint32_t(rs.type == "longrope" ? rs.original_max_position : c.max_position));
    if (rs.type == "longrope") w_.set(a + "rope.scaling.attn_factor", c.rope_mscale());
    w_.set(a + "attention.sliding_window", uint32_t(c.sliding_window));
  }
  if (c.is_gemma() && gguf_gemma_query_scalar(c, c.head_dim) != (c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar
                                                                                              : double(c.head_dim)))
    fail("cannot write a ", arch_, " GGUF of this model: its query_pre_attn_scalar ", c.query_pre_attn_scalar,
         " is not the ", gguf_gemma_query_scalar(c, c.head_dim), " llama.cpp derives for it (GGUF has no key for it; ",
         "hint: write a Hugging Face folder instead)");
  if (c.is_gemma()) {
    LlamaConfig derived = c;
    set_gemma_family(derived, c.embed_scale_inside ? 3 : 2);
    if (derived.layer_sliding != c.layer_sliding)
      fail("cannot write a ", arch_, " GGUF of this model: its sliding-window layers are not the pattern llama.cpp ",
           "derives for ", arch_, " (every ", c.embed_scale_inside ? "sixth" : "second", " layer global; GGUF has no ",
           "key for it; hint: write a Hugging Face folder instead)");
  }
  if (c.is_gemma()) {  // llama.cpp derives the layer pattern and the local RoPE base from the arch
    w_.set(a + "attention.sliding_window", uint32_t(c.sliding_window));
    if (c.attn_softcap > 0) w_.set(a + "attn_logit_softcapping", float(c.attn_softcap));
    if (c.final_softcap > 0) w_.set(a + "final_logit_softcapping", float(c.final_softcap));
    if (c.rope_local_theta > 0) w_.set(a + "rope.freq_base_swa", float(c.rope_local_theta));
  }
  for (const GgufKV& kv : o_.metadata) w_.set(kv.key, kv.value);
}

void GgufModelWriter::put_matrix(const std::string& name, const WeightMatrix& w, std::optional<WType> to,
                             int64_t qk_heads) {
  const WType type = to.value_or(w.type);
  std::vector<uint8_t> bytes = convert_matrix(w, type);
  if (qk_heads > 0) {
    std::vector<uint8_t> permuted(bytes.size());
    permute_qk_rows(bytes.data(), permuted.data(), w.rows, wtype_row_bytes(type, w.cols), qk_heads);
    bytes.swap(permuted);
  }
  w_.add_tensor(name, ggml_of(type, name), {w.cols, w.rows}, std::move(bytes));
}

void GgufModelWriter::put_vector(const std::string& name, const std::vector<float>& v, int64_t qk_heads) {
  if (v.empty()) return;
  std::vector<uint8_t> bytes(v.size() * sizeof(float));
  if (qk_heads > 0) {
    permute_qk_rows(v.data(), bytes.data(), int64_t(v.size()), sizeof(float), qk_heads);
  } else {
    std::memcpy(bytes.data(), v.data(), bytes.size());
  }
  w_.add_tensor(name, GgmlType::F32, {int64_t(v.size())}, std::move(bytes));
}

void GgufModelWriter::layer(int64_t l) {
  const LayerWeights& L = m_.layers[size_t(l)];
  const bool perm = gguf_permutes_qk(arch_);
  const int64_t hq = perm ? m_.cfg.n_head : 0, hk = perm ? m_.cfg.n_head_kv : 0;
  const std::string p = cat("blk.", l, ".");
  put_vector(p + "attn_norm.weight", L.ln1);
  if (m_.cfg.fused_proj) {
    put_matrix(gguf_weight_name(l, Proj::QKV), L.wqkv, o_.weights);
  } else {
    put_matrix(gguf_weight_name(l, Proj::Q), L.wq, o_.weights, hq);
    put_matrix(gguf_weight_name(l, Proj::K), L.wk, o_.weights, hk);
    put_matrix(gguf_weight_name(l, Proj::V), L.wv, o_.weights);
  }
  put_matrix(gguf_weight_name(l, Proj::O), L.wo, o_.weights);
  put_vector(p + "attn_q.bias", L.bq, hq);
  put_vector(p + "attn_k.bias", L.bk, hk);
  put_vector(p + "attn_v.bias", L.bv);
  put_vector(p + "attn_output.bias", L.bo);
  put_vector(p + "attn_q_norm.weight", L.q_norm);
  put_vector(p + "attn_k_norm.weight", L.k_norm);
  put_vector(p + "post_attention_norm.weight", L.ln_post_attn);  // Gemma (llama.cpp's names)
  put_vector(p + "ffn_norm.weight", L.ln2);
  put_vector(p + "post_ffw_norm.weight", L.ln_post_ffn);
  if (m_.cfg.fused_proj) {  // ffn_up holds gate_up_proj as it is (gate rows, then up rows)
    put_matrix(gguf_weight_name(l, Proj::GateUp), L.wgate_up, o_.weights);
  } else {
    put_matrix(gguf_weight_name(l, Proj::Gate), L.wgate, o_.weights);
    put_matrix(gguf_weight_name(l, Proj::Up), L.wup, o_.weights);
  }
  put_matrix(gguf_weight_name(l, Proj::Down), L.wdown, o_.weights);
  put_vector(p + "ffn_gate.bias", L.bgate);
  put_vector(p + "ffn_up.bias", L.bup);
  put_vector(p + "ffn_down.bias", L.bdown);
}

// llama.cpp divides frequency i by rope_freqs[i]: written when the model's frequencies differ
// from the config's plain (or linearly scaled) ones, e.g. Llama 3.1 rope scaling.
// phi3 instead carries LongRoPE's short and long factors, which rope_inv_freq applies per batch.
void GgufModelWriter::rope_freqs() {
  const RopeScaling& rs = m_.cfg.rope_scaling;
  if (arch_ == "phi3") {
    if (m_.inv_freq != m_.cfg.rope_inv_freq())
      fail("cannot write a phi3 GGUF of this model: its RoPE frequencies are not its config's (llama.cpp's phi3 has ",
           "no rope_freqs tensor; hint: write the model it was loaded from)");
    if (rs.type == "longrope") {
      put_vector("rope_factors_long.weight", std::vector<float>(rs.long_factor.begin(), rs.long_factor.end()));
      put_vector("rope_factors_short.weight", std::vector<float>(rs.short_factor.begin(), rs.short_factor.end()));
    }
    return;
  }
  LlamaConfig plain = m_.cfg;
  if (plain.rope_scaling.type != "linear") plain.rope_scaling = {};
  const std::vector<float> base = plain.rope_inv_freq();
  if (base == m_.inv_freq) return;
  std::vector<float> factors(base.size());
  for (size_t i = 0; i < base.size(); ++i) factors[i] = base[i] / m_.inv_freq[i];
  put_vector("rope_freqs.weight", factors);
}

void GgufModelWriter::tensors() {
  put_matrix("token_embd.weight", m_.embed, o_.embeddings);
  put_vector("output_norm.weight", m_.norm);
  if (!m_.cfg.tie_word_embeddings) put_matrix("output.weight", m_.lm_head, o_.embeddings);
  rope_freqs();
  for (int64_t l = 0; l < m_.cfg.n_layer; ++l) layer(l);
}

void add_vector(SafeTensorsWriter& w, const std::string& name, const std::vector<float>& v, DType dtype) {
  if (v.empty()) return;
  std::vector<uint8_t> bytes(v.size() * dtype_size(dtype));
  from_f32(bytes.data(), dtype, v.data(), v.size());
  w.add(name, dtype, {int64_t(v.size())}, bytes.data());
}

void add_matrix(SafeTensorsWriter& w, const std::string& name, const WeightMatrix& m, DType dtype) {
  const std::vector<uint8_t> bytes = convert_matrix(m, wtype_of(dtype));
  w.add(name, dtype, {m.rows, m.cols}, bytes.data());
}

// A norm weight as the HF file holds it: Gemma's files hold w of x·(1 + w), tpro 1 + w.
std::vector<float> file_norm(const std::vector<float>& v, const LlamaConfig& c) {
  std::vector<float> out = v;
  if (c.norm_plus_one)
    for (float& x : out) x -= 1.0f;
  return out;
}

void add_layer(SafeTensorsWriter& w, const LayerWeights& L, int64_t l, DType dt, const LlamaConfig& c) {
  const std::string p = layer_prefix(l);
  add_vector(w, p + "input_layernorm.weight", file_norm(L.ln1, c), dt);
  if (c.sandwich_norms) {
    add_vector(w, p + "post_attention_layernorm.weight", file_norm(L.ln_post_attn, c), dt);
    add_vector(w, p + "pre_feedforward_layernorm.weight", file_norm(L.ln2, c), dt);
    add_vector(w, p + "post_feedforward_layernorm.weight", file_norm(L.ln_post_ffn, c), dt);
  } else {
    add_vector(w, p + "post_attention_layernorm.weight", file_norm(L.ln2, c), dt);
  }
  add_vector(w, p + "self_attn.q_norm.weight", file_norm(L.q_norm, c), dt);
  add_vector(w, p + "self_attn.k_norm.weight", file_norm(L.k_norm, c), dt);
  const std::vector<float>* biases[7] = {&L.bq, &L.bk, &L.bv, &L.bo, &L.bgate, &L.bup, &L.bdown};
  for (int i = 0; i < kNumProj; ++i) {
    const WeightMatrix& m = proj_weight(L, Proj(i));
    if (!m.data) continue;  // the fused or the separate projections, whichever the model has
    const std::string module = p + proj_module(Proj(i));
    add_matrix(w, module + ".weight", m, dt);
    if (i < 7) add_vector(w, module + ".bias", *biases[i], dt);
  }
}

}  // namespace

std::vector<uint8_t> convert_matrix(const WeightMatrix& w, WType to) {
  if (w.type == to && to != WType::NF4) {
    const auto* p = static_cast<const uint8_t*>(w.data);
    return std::vector<uint8_t>(p, p + size_t(w.rows) * wtype_row_bytes(w.type, w.cols));
  }
  QuantizedMatrix q = quantize_matrix(w, to);
  return q.data();
}

void save_model_gguf(const fs::path& file, const Model& m, const GgufModelOptions& o) {
  GgufModelWriter w(m, o);
  w.metadata();
  w.tensors();
  w.write(file);
}

void save_model_hf(const fs::path& dir, const Model& m, DType dtype) {
  LlamaConfig c = m.cfg;
  if (m.inv_freq != c.rope_inv_freq() || m.inv_freq_local != c.rope_inv_freq_local()) {
    fail("cannot write ", dir.string(), "/config.json: the model's RoPE frequencies (e.g. a GGUF rope_freqs tensor) ",
         "have no config.json form (hint: write a GGUF instead)");
  }
  c.torch_dtype = dtype == DType::BF16 ? "bfloat16" : dtype == DType::F16 ? "float16" : "float32";
  SafeTensorsWriter w;
  add_matrix(w, "model.embed_tokens.weight", m.embed, dtype);
  if (!c.tie_word_embeddings) add_matrix(w, "lm_head.weight", m.lm_head, dtype);
  add_vector(w, "model.norm.weight", file_norm(m.norm, c), dtype);
  for (int64_t l = 0; l < c.n_layer; ++l) add_layer(w, m.layers[size_t(l)], l, dtype, c);
  w.set_metadata("format", "pt");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create ", dir.string(), ": ", ec.message());
  w.write(dir / "model.safetensors");
  write_file_atomic(dir / "config.json", hf_config_json(c));
}

void write_random_model(const fs::path& dir, const LlamaConfig& cfg, uint64_t seed, DType dtype, float std) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail("cannot create ", dir.string(), ": ", ec.message());
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> nd(0.0f, std);
  SafeTensorsWriter w;
  auto add = [&](const std::string& name, std::vector<int64_t> shape, bool ones = false) {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    std::vector<float> v(static_cast<size_t>(n));
    for (auto& x : v) x = ones ? (cfg.norm_plus_one ? 0.0f : 1.0f) : nd(rng);  // a norm of factor 1
    std::vector<uint8_t> bytes(size_t(n) * dtype_size(dtype));
    from_f32(bytes.data(), dtype, v.data(), size_t(n));
    w.add(name, dtype, std::move(shape), bytes.data());
  };
  const int64_t D = cfg.n_embd, F = cfg.n_ff, Q = cfg.q_dim(), KV = cfg.kv_dim();
  add("model.embed_tokens.weight", {cfg.vocab_size, D});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = layer_prefix(l);
    add(p + "input_layernorm.weight", {D}, true);
    if (cfg.fused_proj) {
      add(p + "self_attn.qkv_proj.weight", {Q + 2 * KV, D});
    } else {
      add(p + "self_attn.q_proj.weight", {Q, D});
      add(p + "self_attn.k_proj.weight", {KV, D});
      add(p + "self_attn.v_proj.weight", {KV, D});
    }
    add(p + "self_attn.o_proj.weight", {D, Q});
    if (cfg.attn_qkv_bias) {
      add(p + "self_attn.q_proj.bias", {Q});
      add(p + "self_attn.k_proj.bias", {KV});
      add(p + "self_attn.v_proj.bias", {KV});
    }
    if (cfg.attn_o_bias) add(p + "self_attn.o_proj.bias", {D});
    if (cfg.qk_norm) {
      add(p + "self_attn.q_norm.weight", {cfg.head_dim}, true);
      add(p + "self_attn.k_norm.weight", {cfg.head_dim}, true);
    }
    add(p + "post_attention_layernorm.weight", {D}, true);
    if (cfg.sandwich_norms) {
      add(p + "pre_feedforward_layernorm.weight", {D}, true);
      add(p + "post_feedforward_layernorm.weight", {D}, true);
    }
    if (cfg.fused_proj) {
      add(p + "mlp.gate_up_proj.weight", {2 * F, D});
    } else {
      add(p + "mlp.gate_proj.weight", {F, D});
      add(p + "mlp.up_proj.weight", {F, D});
    }
    add(p + "mlp.down_proj.weight", {D, F});
  }
  add("model.norm.weight", {D}, true);
  if (!cfg.tie_word_embeddings) add("lm_head.weight", {cfg.vocab_size, D});
  w.set_metadata("format", "pt");
  w.write(dir / "model.safetensors");
  LlamaConfig c = cfg;
  c.torch_dtype = dtype == DType::BF16 ? "bfloat16" : dtype == DType::F16 ? "float16" : "float32";
  write_file_atomic(dir / "config.json", hf_config_json(c));
}

}  // namespace tpro
