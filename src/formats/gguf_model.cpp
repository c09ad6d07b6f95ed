// GGUF model loading; see gguf_model.h. The file stays mapped for the model's lifetime (held
// in Model::owned); every tensor is checked for presence, shape and a computable type before
// a view is made, and tensors the loader does not know are reported, not silently used.
#include "formats/gguf_model.h"

#include <cmath>
#include <set>

#include "core/error.h"
#include "core/tensor.h"
#include "core/log.h"

namespace tpro {

namespace {

// llama.cpp's names; Phi-3's fused gate_up_proj is its ffn_up (2F rows) in a phi3 file.
constexpr const char* kProjNames[kNumProj] = {"attn_q",   "attn_k",   "attn_v",   "attn_output", "ffn_gate",
                                              "ffn_up",   "ffn_down", "attn_qkv", "ffn_up"};
constexpr const char* kSupportedArchs = "llama, qwen2, qwen3, gemma2, gemma3, phi3";

int64_t positive(const GgufFile& f, const std::string& key) {
  const int64_t v = f.get_int(key);
  if (v <= 0) fail("GGUF ", f.path().string(), ": metadata '", key, "' must be positive, got ", v);
  return v;
}

void read_rope_scaling(const GgufFile& f, const std::string& arch, LlamaConfig& c) {
  const std::string type = f.get_or<std::string>(arch + ".rope.scaling.type", "");
  if (type == "linear") {
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = f.get_f32(arch + ".rope.scaling.factor");
  } else if (type.empty() && f.has(arch + ".rope.scale_linear")) {  // older converters
    c.rope_scaling.type = "linear";
    c.rope_scaling.factor = f.get_f32(arch + ".rope.scale_linear");
  } else if (!type.empty() && type != "none") {
    fail("GGUF ", f.path().string(), ": ", arch, ".rope.scaling.type '", type,
         "' is not supported (hint: tpro implements linear scaling and llama3 rope_freqs)");
  }
  if (c.rope_scaling.type == "linear" && !(c.rope_scaling.factor > 0)) {
    fail("GGUF ", f.path().string(), ": rope scaling factor must be positive, got ", c.rope_scaling.factor);
  }
}

// Gemma 2 / 3 as llama.cpp reads them: soft-caps and window from the metadata; the layer pattern
// (2 / 6), the local RoPE base (10000 unless rope.freq_base_swa) and the score scale from the
// architecture. llama.cpp scales scores by 1/sqrt(head size), except for the 27B models
// (46 / 62 layers), whose query_pre_attn_scalar is hidden size / heads. Runs after read_heads.
void read_gemma(const GgufFile& f, const std::string& arch, LlamaConfig& c) {
  const int version = arch == "gemma3" ? 3 : 2;
  set_gemma_family(c, version);
  c.attn_softcap = f.get_or<float>(arch + ".attn_logit_softcapping", 0.0f);
  c.final_softcap = f.get_or<float>(arch + ".final_logit_softcapping", 0.0f);
  c.sliding_window = f.has(arch + ".attention.sliding_window") ? positive(f, arch + ".attention.sliding_window") : 4096;
  if (version == 3) c.rope_local_theta = f.get_or<float>(arch + ".rope.freq_base_swa", 10000.0f);
  c.query_pre_attn_scalar = gguf_gemma_query_scalar(c, c.head_dim);
  c.embed_scale = double(float(std::sqrt(double(c.n_embd))));  // llama.cpp scales in f32
}

void read_heads(const GgufFile& f, const std::string& arch, LlamaConfig& c) {
  const std::string where = cat("GGUF ", f.path().string(), ": ");
  c.n_head = positive(f, arch + ".attention.head_count");
  c.n_head_kv = f.has(arch + ".attention.head_count_kv") ? positive(f, arch + ".attention.head_count_kv") : c.n_head;
  if (c.n_head % c.n_head_kv) fail(where, c.n_head, " attention heads are not a multiple of ", c.n_head_kv, " KV heads");
  if (f.has(arch + ".attention.key_length")) {
    c.head_dim = positive(f, arch + ".attention.key_length");
  } else {
    if (c.n_embd % c.n_head) fail(where, "embedding_length ", c.n_embd, " is not divisible by ", c.n_head, " heads");
    c.head_dim = c.n_embd / c.n_head;
  }
  if (f.has(arch + ".attention.value_length") && f.get_int(arch + ".attention.value_length") != c.head_dim) {
    fail(where, "value_length ", f.get_int(arch + ".attention.value_length"), " differs from key_length ", c.head_dim,
         " (tpro needs equal Q/K/V head sizes)");
  }
  if (arch != "phi3" && f.has(arch + ".rope.dimension_count") && f.get_int(arch + ".rope.dimension_count") != c.head_dim) {
    fail(where, "rope.dimension_count ", f.get_int(arch + ".rope.dimension_count"), " differs from the head size ",
         c.head_dim, " (hint: partial rotary embeddings are not supported)");
  }
  if (c.head_dim % 2) fail(where, "head size ", c.head_dim, " must be even for RoPE");
}

// A (rows, cols) weight: ne must be exactly [cols, rows] and the type computable.
WeightMatrix matrix(const GgufFile& f, const std::string& name, int64_t rows, int64_t cols) {
  const GgufTensor& t = f.supported_tensor(name);
  const std::vector<int64_t> want = {cols, rows};
  if (t.ne != want) {
    fail("GGUF ", f.path().string(), ": tensor '", name, "' has ne ", shape_str(t.ne), ", expected ", shape_str(want),
         " (in ", cols, ", out ", rows, " from the metadata; hint: the metadata and the tensors disagree, or the ",
         "file is for another model)");
  }
  WeightMatrix w;
  TPRO_CHECK(wtype_from_ggml(uint32_t(t.type), &w.type), "supported ggml type without a WType");
  w.rows = rows;
  w.cols = cols;
  w.data = t.data;
  return w;
}

std::vector<float> vector_f32(const GgufFile& f, const std::string& name, int64_t n) {
  const GgufTensor& t = f.tensor(name);
  if (t.ne != std::vector<int64_t>{n}) {
    fail("GGUF ", f.path().string(), ": tensor '", name, "' has ne ", shape_str(t.ne), ", expected (", n, ")");
  }
  DType dt;
  switch (t.type) {
    case GgmlType::F32: dt = DType::F32; break;
    case GgmlType::F16: dt = DType::F16; break;
    case GgmlType::BF16: dt = DType::BF16; break;
    default:
      fail("GGUF ", f.path().string(), ": tensor '", name, "' has type ", ggml_type_name(t.type),
           ", expected F32, F16 or BF16 for a vector");
  }
  std::vector<float> v(static_cast<size_t>(n));
  to_f32(v.data(), t.data, dt, size_t(n));
  return v;
}

// Phi-3 as convert_hf_to_gguf.py (Phi3MiniModel) writes it: fused attn_qkv (q, k, v rows) and
// ffn_up holding gate_up_proj unchanged (gate rows, then up rows: llama.cpp's swiglu applies
// silu to the first half); rope.dimension_count = the rotary dims (partial rotary); LongRoPE as
// rope_factors_short/long.weight (one per rotary frequency, dividing it, as short_factor and
// long_factor do) with rope.scaling.original_context_length and the cos/sin factor
// rope.scaling.attn_factor (llama.cpp: 1 when absent); attention.sliding_window (0 = none).
// llama.cpp ignores the window (its PR 13676), transformers applies it, and so does tpro.
void read_longrope(const GgufFile& f, const std::string& arch, LlamaConfig& c);
void read_phi3(const GgufFile& f, const std::string& arch, LlamaConfig& c) {
  const std::string where = cat("GGUF ", f.path().string(), ": ");
  c.fused_proj = true;
  c.rotary_dim = c.head_dim;
  if (f.has(arch + ".rope.dimension_count")) {
    const int64_t n = f.get_int(arch + ".rope.dimension_count");
    if (n <= 0 || n > c.head_dim || n % 2)
      fail(where, arch, ".rope.dimension_count is ", n, ", expected an even number of rotary dims in 2..", c.head_dim,
           " (the head size)");
    c.rotary_dim = n;
  }
  if (f.has(arch + ".attention.sliding_window")) {
    c.sliding_window = f.get_int(arch + ".attention.sliding_window");
    if (c.sliding_window < 0) fail(where, arch, ".attention.sliding_window must be >= 0, got ", c.sliding_window);
  }
  for (const char* t : {"blk.0.attn_qkv.bias", "blk.0.attn_q.bias", "blk.0.attn_output.bias", "blk.0.ffn_up.bias",
                        "blk.0.ffn_down.bias"})
    if (f.find_tensor(t)) fail(where, "tensor '", t, "': tpro loads Phi-3 models without projection biases");
  if (!f.find_tensor("blk.0.attn_qkv.weight"))
    fail(where, "a phi3 model needs the fused blk.N.attn_qkv.weight", f.find_tensor("blk.0.attn_q.weight")
         ? " (this file holds separate attn_q/attn_k/attn_v, which tpro does not load for phi3" : " (none found",
         "; hint: convert the Hugging Face folder with llama.cpp's convert_hf_to_gguf.py or tpro merge --gguf)");
  read_longrope(f, arch, c);
}

void read_longrope(const GgufFile& f, const std::string& arch, LlamaConfig& c) {
  const std::string where = cat("GGUF ", f.path().string(), ": ");
  const GgufTensor* lng = f.find_tensor("rope_factors_long.weight");
  const GgufTensor* sht = f.find_tensor("rope_factors_short.weight");
  RopeScaling& rs = c.rope_scaling;
  const float attn_factor = f.get_or<float>(arch + ".rope.scaling.attn_factor", 1.0f);
  if (!lng && !sht) {
    if (attn_factor != 1.0f)
      fail(where, arch, ".rope.scaling.attn_factor is ", attn_factor, " without LongRoPE factors (hint: tpro reads it ",
           "with rope_factors_long.weight and rope_factors_short.weight only)");
    return;
  }
  if (!lng || !sht)
    fail(where, "LongRoPE needs both rope_factors_long.weight and rope_factors_short.weight, the file has only ",
         lng ? "the long" : "the short", " factors (hint: the file is truncated or was not written by a converter)");
  if (!rs.type.empty())
    fail(where, arch, ".rope.scaling.type '", rs.type, "' together with LongRoPE factors (hint: a phi3 model has one ",
         "or the other)");
  const int64_t half = c.rot_dim() / 2;
  rs.type = "longrope";
  for (const auto& [name, out] : {std::pair{"rope_factors_long.weight", &rs.long_factor},
                                  std::pair{"rope_factors_short.weight", &rs.short_factor}}) {
    const std::vector<float> v = vector_f32(f, name, half);
    for (size_t i = 0; i < v.size(); ++i) {
      if (!(v[i] > 0) || !std::isfinite(v[i]))
        fail(where, name, "[", i, "] is ", v[i], ", expected a positive factor (frequencies are divided by it)");
      out->push_back(double(v[i]));
    }
  }
  rs.original_max_position = f.has(arch + ".rope.scaling.original_context_length")
                                 ? positive(f, arch + ".rope.scaling.original_context_length")
                                 : c.max_position;  // llama.cpp's default too
  if (!(attn_factor > 0) || !std::isfinite(attn_factor))
    fail(where, arch, ".rope.scaling.attn_factor must be a positive number, got ", attn_factor);
  rs.attention_factor = double(attn_factor);
}

// attn_q / attn_k of the llama architecture: rows back from llama.cpp's RoPE order.
WeightMatrix unpermuted(Model& m, const WeightMatrix& w, int64_t n_head) {
  const size_t row_bytes = wtype_row_bytes(w.type, w.cols);
  auto buf = std::make_shared<std::vector<uint8_t>>(size_t(w.rows) * row_bytes);
  unpermute_qk_rows(w.data, buf->data(), w.rows, row_bytes, n_head);
  m.owned.push_back(std::shared_ptr<void>(buf, buf->data()));  // get() == the data: see base_weights.cpp
  WeightMatrix out = w;
  out.data = buf->data();
  return out;
}

std::vector<float> unpermuted(std::vector<float> b, int64_t n_head) {
  if (b.empty()) return b;
  std::vector<float> out(b.size());
  unpermute_qk_rows(b.data(), out.data(), int64_t(b.size()), sizeof(float), n_head);
  return out;
}

struct Names {
  std::set<std::string> used;
  const std::string& operator()(const std::string& n) { return *used.insert(n).first; }
};

std::vector<float> optional_vector(const GgufFile& f, Names& names, const std::string& name, int64_t n, bool present) {
  return present ? vector_f32(f, names(name), n) : std::vector<float>{};
}

void load_layer(Model& m, const GgufFile& f, Names& nm, int64_t l, bool permuted) {
  const LlamaConfig& c = m.cfg;
  const int64_t D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  const std::string p = cat("blk.", l, ".");
  LayerWeights& L = m.layers[size_t(l)];
  L.ln1 = vector_f32(f, nm(p + "attn_norm.weight"), D);
  L.ln2 = vector_f32(f, nm(p + "ffn_norm.weight"), D);
  if (c.sandwich_norms) {  // Gemma; llama.cpp's files hold these norms as 1 + w, as tpro does
    L.ln_post_attn = vector_f32(f, nm(p + "post_attention_norm.weight"), D);
    L.ln_post_ffn = vector_f32(f, nm(p + "post_ffw_norm.weight"), D);
  }
  if (c.fused_proj) {  // phi3: ffn_up holds gate_up_proj (2F rows), see read_phi3
    L.wqkv = matrix(f, nm(p + "attn_qkv.weight"), Q + 2 * KV, D);
    L.wgate_up = matrix(f, nm(p + "ffn_up.weight"), 2 * F, D);
  } else {
    L.wq = matrix(f, nm(p + "attn_q.weight"), Q, D);
    L.wk = matrix(f, nm(p + "attn_k.weight"), KV, D);
    L.wv = matrix(f, nm(p + "attn_v.weight"), KV, D);
    L.wgate = matrix(f, nm(p + "ffn_gate.weight"), F, D);
    L.wup = matrix(f, nm(p + "ffn_up.weight"), F, D);
  }
  L.wo = matrix(f, nm(p + "attn_output.weight"), D, Q);
  L.wdown = matrix(f, nm(p + "ffn_down.weight"), D, F);
  L.bq = optional_vector(f, nm, p + "attn_q.bias", Q, c.attn_qkv_bias);
  L.bk = optional_vector(f, nm, p + "attn_k.bias", KV, c.attn_qkv_bias);
  L.bv = optional_vector(f, nm, p + "attn_v.bias", KV, c.attn_qkv_bias);
  L.bo = optional_vector(f, nm, p + "attn_output.bias", D, c.attn_o_bias);
  if (c.qk_norm) {
    L.q_norm = vector_f32(f, nm(p + "attn_q_norm.weight"), c.head_dim);
    L.k_norm = vector_f32(f, nm(p + "attn_k_norm.weight"), c.head_dim);
  }
  L.bgate = optional_vector(f, nm, p + "ffn_gate.bias", F, c.mlp_bias);
  L.bup = optional_vector(f, nm, p + "ffn_up.bias", F, c.mlp_bias);
  L.bdown = optional_vector(f, nm, p + "ffn_down.bias", D, c.mlp_bias);
  if (permuted) {
    L.wq = unpermuted(m, L.wq, c.n_head);
    L.wk = unpermuted(m, L.wk, c.n_head_kv);
    L.bq = unpermuted(std::move(L.bq), c.n_head);
    L.bk = unpermuted(std::move(L.bk), c.n_head_kv);
  }
}

// Vocabulary size, tied head and biases are properties of the tensors, not the metadata.
void config_from_tensors(const GgufFile& f, const std::string& arch, LlamaConfig& c) {
  const GgufTensor& emb = f.tensor("token_embd.weight");
  if (emb.ne.size() != 2 || emb.ne[0] != c.n_embd) {
    fail("GGUF ", f.path().string(), ": tensor 'token_embd.weight' has ne ", shape_str(emb.ne), ", expected (",
         c.n_embd, ", vocab)");
  }
  c.vocab_size = emb.ne[1];
  if (f.has(arch + ".vocab_size") && f.get_int(arch + ".vocab_size") != c.vocab_size) {
    fail("GGUF ", f.path().string(), ": ", arch, ".vocab_size is ", f.get_int(arch + ".vocab_size"),
         " but token_embd.weight has ", c.vocab_size, " rows");
  }
  c.tie_word_embeddings = !f.find_tensor("output.weight");
  c.attn_qkv_bias = f.find_tensor("blk.0.attn_q.bias") != nullptr;
  c.attn_o_bias = f.find_tensor("blk.0.attn_output.bias") != nullptr;
  c.mlp_bias = f.find_tensor("blk.0.ffn_up.bias") != nullptr;
  if (c.is_gemma() && (c.attn_qkv_bias || c.attn_o_bias || c.mlp_bias))
    fail("GGUF ", f.path().string(), ": a ", arch, " model has no biases (hint: the file is not a Gemma model)");
  if (arch == "qwen2" && (!c.attn_qkv_bias || c.attn_o_bias || c.mlp_bias)) {
    fail("GGUF ", f.path().string(), ": a qwen2 model has attn_q/k/v biases and no others (hint: the file is not a ",
         "Qwen2 model)");
  }
  const GgmlType t = emb.type;
  c.torch_dtype = t == GgmlType::BF16 ? "bfloat16" : t == GgmlType::F32 ? "float32" : "float16";
  // block_count sizes per-layer allocations: the file must hold that many layers (a lying
  // count of billions was an out-of-memory, found by fuzz/fuzz_gguf).
  const std::string last = cat("blk.", c.n_layer - 1, ".attn_norm.weight");
  if (!f.find_tensor(last)) {
    fail("GGUF ", f.path().string(), ": ", arch, ".block_count is ", c.n_layer, " but there is no tensor '", last,
         "' (hint: the file is truncated or its metadata is wrong)");
  }
}

// llama.cpp divides each RoPE frequency by rope_freqs[i] (Llama 3.1 scaling, stored as data).
void apply_rope_freqs(Model& m, const GgufFile& f, Names& nm) {
  if (!f.find_tensor("rope_freqs.weight")) return;
  const std::vector<float> factors = vector_f32(f, nm("rope_freqs.weight"), m.cfg.head_dim / 2);
  for (size_t i = 0; i < factors.size(); ++i) {
    if (!(factors[i] > 0) || !std::isfinite(factors[i])) {
      fail("GGUF ", f.path().string(), ": rope_freqs.weight[", i, "] is ", factors[i], ", expected a positive factor");
    }
    m.inv_freq[i] /= factors[i];
  }
}

}  // namespace

double gguf_gemma_query_scalar(const LlamaConfig& c, int64_t head_dim) {
  const bool is_27b = c.n_layer == (c.embed_scale_inside ? 62 : 46);
  return is_27b ? double(c.n_embd) / double(c.n_head) : double(head_dim);
}

std::string gguf_arch(const LlamaConfig& c) {
  if (c.architecture == "Qwen2ForCausalLM") return "qwen2";
  if (c.architecture == "Qwen3ForCausalLM") return "qwen3";
  if (c.architecture == "Gemma2ForCausalLM") return "gemma2";
  if (c.architecture == "Gemma3ForCausalLM") return "gemma3";
  if (c.architecture == "Phi3ForCausalLM") return "phi3";
  return "llama";
}
bool gguf_permutes_qk(const std::string& arch) { return arch == "llama"; }
const char* gguf_proj_name(Proj p) { return kProjNames[int(p)]; }
std::string gguf_weight_name(int64_t layer, Proj p) { return cat("blk.", layer, ".", kProjNames[int(p)], ".weight"); }

LlamaConfig gguf_model_config(const GgufFile& f) {
  const std::string where = cat("GGUF ", f.path().string(), ": ");
  const std::string type = f.get_or<std::string>("general.type", "model");
  if (type == "adapter") fail(where, "this is a LoRA adapter (general.type = adapter), not a model (hint: pass it as --lora)");
  if (type != "model") fail(where, "general.type is '", type, "', expected 'model'");
  const std::string arch = f.get_string("general.architecture");
  if (arch != "llama" && arch != "qwen2" && arch != "qwen3" && arch != "gemma2" && arch != "gemma3" && arch != "phi3") {
    fail(where, "general.architecture '", arch, "' is not supported (tpro loads ", kSupportedArchs,
         " GGUF models; hint: for other models use the Hugging Face folder if its architecture is supported)");
  }
  LlamaConfig c;
  c.architecture = arch == "qwen2"    ? "Qwen2ForCausalLM"
                   : arch == "qwen3"  ? "Qwen3ForCausalLM"
                   : arch == "gemma2" ? "Gemma2ForCausalLM"
                   : arch == "gemma3" ? "Gemma3ForCausalLM"
                   : arch == "phi3"   ? "Phi3ForCausalLM"
                                      : "LlamaForCausalLM";
  c.qk_norm = arch == "qwen3";
  c.model_type = arch == "gemma3" ? "gemma3_text" : arch;
  c.n_embd = positive(f, arch + ".embedding_length");
  c.n_ff = positive(f, arch + ".feed_forward_length");
  c.n_layer = positive(f, arch + ".block_count");
  c.max_position = positive(f, arch + ".context_length");
  read_heads(f, arch, c);
  if (arch == "gemma2" || arch == "gemma3") read_gemma(f, arch, c);
  c.rms_norm_eps = f.get_f32(arch + ".attention.layer_norm_rms_epsilon");
  c.rope_theta = f.get_or<float>(arch + ".rope.freq_base", 10000.0f);
  read_rope_scaling(f, arch, c);
  if (arch == "phi3") read_phi3(f, arch, c);
  if (f.has("tokenizer.ggml.bos_token_id")) c.bos_token_id = f.get_int("tokenizer.ggml.bos_token_id");
  if (f.has("tokenizer.ggml.eos_token_id")) c.eos_token_id = f.get_int("tokenizer.ggml.eos_token_id");
  config_from_tensors(f, arch, c);
  validate_config(c, cat("GGUF ", f.path().string(), " (", arch, ".attention.layer_norm_rms_epsilon, ", arch,
                         ".rope.freq_base, ", arch, ".rope.scaling.factor)"));
  std::vector<int64_t> layers;
  for (const GgufTensor& t : f.tensors()) layers.push_back(layer_of(t.name, "blk."));
  check_layers_present(c, layers, cat("GGUF ", f.path().string()), (arch + ".block_count").c_str());
  return c;
}

Model load_gguf_model(const fs::path& path) {
  auto file = std::make_shared<GgufFile>(path);
  const GgufFile& f = *file;
  Model m;
  m.cfg = gguf_model_config(f);
  m.source = path.string();
  m.owned.push_back(file);
  const LlamaConfig& c = m.cfg;
  Names nm;
  m.embed = matrix(f, nm("token_embd.weight"), c.vocab_size, c.n_embd);
  m.lm_head = c.tie_word_embeddings ? m.embed : matrix(f, nm("output.weight"), c.vocab_size, c.n_embd);
  m.norm = vector_f32(f, nm("output_norm.weight"), c.n_embd);
  m.layers.resize(size_t(c.n_layer));
  const bool permuted = gguf_permutes_qk(c.model_type);
  for (int64_t l = 0; l < c.n_layer; ++l) load_layer(m, f, nm, l, permuted);
  m.inv_freq = c.rope_inv_freq();
  m.inv_freq_local = c.rope_inv_freq_local();
  if (c.rope_scaling.type == "longrope") {  // read by read_phi3 (rope_inv_freq applies them per batch)
    nm("rope_factors_long.weight");
    nm("rope_factors_short.weight");
  } else if (!c.fused_proj) {  // llama.cpp's phi3 has no rope_freqs tensor
    apply_rope_freqs(m, f, nm);
  }
  for (const GgufTensor& t : f.tensors()) {
    if (!nm.used.count(t.name)) log_warn("GGUF ", path.string(), ": ignoring unexpected tensor '", t.name, "'");
  }
  return m;
}

}  // namespace tpro
