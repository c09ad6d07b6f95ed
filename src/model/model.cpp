// Loading a Hugging Face Llama-family folder (or, through gguf_model.h, a GGUF file) into
// Model views, and writing random models.
#include "model/model.h"

#include <cctype>
#include <random>

#include "core/error.h"
#include "core/log.h"
#include "model/gguf_model.h"

namespace tpro {

std::string layer_prefix(int64_t layer) { return cat("model.layers.", layer, "."); }

int64_t layer_of(const std::string& name, std::string_view prefix) {
  if (name.compare(0, prefix.size(), prefix) != 0) return -1;
  int64_t l = 0;
  size_t i = prefix.size();
  if (i >= name.size() || !std::isdigit(static_cast<unsigned char>(name[i]))) return -1;
  for (; i < name.size() && std::isdigit(static_cast<unsigned char>(name[i])); ++i) {
    if (l > (int64_t(1) << 40)) return l;  // absurd index: large enough to fail the check
    l = l * 10 + (name[i] - '0');
  }
  return l;
}

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

Model load_model(const fs::path& dir) {
  if (is_gguf_file(dir) || dir.extension() == ".gguf") return load_gguf_model(dir);
  Model m;
  m.cfg = load_hf_config(dir);
  m.source = dir.string();
  m.tensors = std::make_shared<TensorSource>(TensorSource::open_dir(dir));
  const TensorSource& src = *m.tensors;
  const LlamaConfig& c = m.cfg;
  std::vector<int64_t> layers;
  for (const std::string& name : src.names()) layers.push_back(layer_of(name, "model.layers."));
  check_layers_present(c, layers, (dir / "config.json").string() + " and " + src.describe(), "num_hidden_layers");
  const int64_t D = c.n_embd, F = c.n_ff, Q = c.q_dim(), KV = c.kv_dim();
  m.embed = matrix_view(src, "model.embed_tokens.weight", c.vocab_size, D);
  if (c.tie_word_embeddings) {
    m.lm_head = m.embed;
  } else {
    m.lm_head = matrix_view(src, "lm_head.weight", c.vocab_size, D);
  }
  m.norm = vector_f32(src, "model.norm.weight", D);
  m.layers.resize(size_t(c.n_layer));
  for (int64_t l = 0; l < c.n_layer; ++l) {
    const std::string p = layer_prefix(l);
    LayerWeights& L = m.layers[size_t(l)];
    L.ln1 = vector_f32(src, p + "input_layernorm.weight", D);
    L.ln2 = vector_f32(src, p + "post_attention_layernorm.weight", D);
    L.wq = matrix_view(src, p + "self_attn.q_proj.weight", Q, D);
    L.wk = matrix_view(src, p + "self_attn.k_proj.weight", KV, D);
    L.wv = matrix_view(src, p + "self_attn.v_proj.weight", KV, D);
    L.wo = matrix_view(src, p + "self_attn.o_proj.weight", D, Q);
    L.bq = optional_vector(src, p + "self_attn.q_proj.bias", Q, c.attn_qkv_bias);
    L.bk = optional_vector(src, p + "self_attn.k_proj.bias", KV, c.attn_qkv_bias);
    L.bv = optional_vector(src, p + "self_attn.v_proj.bias", KV, c.attn_qkv_bias);
    L.bo = optional_vector(src, p + "self_attn.o_proj.bias", D, c.attn_o_bias);
    L.wgate = matrix_view(src, p + "mlp.gate_proj.weight", F, D);
    L.wup = matrix_view(src, p + "mlp.up_proj.weight", F, D);
    L.wdown = matrix_view(src, p + "mlp.down_proj.weight", D, F);
    L.bgate = optional_vector(src, p + "mlp.gate_proj.bias", F, c.mlp_bias);
    L.bup = optional_vector(src, p + "mlp.up_proj.bias", F, c.mlp_bias);
    L.bdown = optional_vector(src, p + "mlp.down_proj.bias", D, c.mlp_bias);
  }
  m.inv_freq = c.rope_inv_freq();
  return m;
}

int64_t Model::n_params() const {
  const LlamaConfig& c = cfg;
  int64_t per_layer = 2 * c.n_embd + c.n_embd * (2 * c.q_dim() + 2 * c.kv_dim()) + 3 * c.n_embd * c.n_ff;
  return c.vocab_size * c.n_embd * (c.tie_word_embeddings ? 1 : 2) + c.n_embd + c.n_layer * per_layer;
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
    for (auto& x : v) x = ones ? 1.0f : nd(rng);
    std::vector<uint8_t> bytes(size_t(n) * dtype_size(dtype));
    from_f32(bytes.data(), dtype, v.data(), size_t(n));
    w.add(name, dtype, std::move(shape), bytes.data());
  };
  const int64_t D = cfg.n_embd, F = cfg.n_ff, Q = cfg.q_dim(), KV = cfg.kv_dim();
  add("model.embed_tokens.weight", {cfg.vocab_size, D});
  for (int64_t l = 0; l < cfg.n_layer; ++l) {
    const std::string p = layer_prefix(l);
    add(p + "input_layernorm.weight", {D}, true);
    add(p + "self_attn.q_proj.weight", {Q, D});
    add(p + "self_attn.k_proj.weight", {KV, D});
    add(p + "self_attn.v_proj.weight", {KV, D});
    add(p + "self_attn.o_proj.weight", {D, Q});
    if (cfg.attn_qkv_bias) {
      add(p + "self_attn.q_proj.bias", {Q});
      add(p + "self_attn.k_proj.bias", {KV});
      add(p + "self_attn.v_proj.bias", {KV});
    }
    if (cfg.attn_o_bias) add(p + "self_attn.o_proj.bias", {D});
    add(p + "post_attention_layernorm.weight", {D}, true);
    add(p + "mlp.gate_proj.weight", {F, D});
    add(p + "mlp.up_proj.weight", {F, D});
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
