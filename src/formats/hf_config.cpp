// config.json parsing and writing; see hf_config.h.
#include "formats/hf_config.h"

#include <nlohmann/json.hpp>

#include <cmath>

#include "core/dtype.h"
#include "core/error.h"

namespace tpro {

using nlohmann::json;

namespace {
const char* kSupported =
    "LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM, Qwen3ForCausalLM, Gemma2ForCausalLM, Gemma3ForCausalLM, "
    "Phi3ForCausalLM";

int64_t get_int(const json& j, const char* key, const std::string& origin, bool required, int64_t def = 0) {
  if (!j.contains(key) || j[key].is_null()) {
    if (required) fail(origin, ": missing \"", key, "\"");
    return def;
  }
  if (!j[key].is_number_integer()) fail(origin, ": \"", key, "\" must be an integer, got ", j[key].dump());
  int64_t v = j[key].get<int64_t>();
  if (required && v <= 0) fail(origin, ": \"", key, "\" must be positive, got ", v);
  return v;
}

double get_num(const json& j, const char* key, const std::string& origin, double def) {
  if (!j.contains(key) || j[key].is_null()) return def;
  if (!j[key].is_number()) fail(origin, ": \"", key, "\" must be a number, got ", j[key].dump());
  return j[key].get<double>();
}

bool get_bool(const json& j, const char* key, bool def) {
  return j.contains(key) && j[key].is_boolean() ? j[key].get<bool>() : def;
}

int64_t first_id(const json& j, const char* key) {  // eos_token_id may be a list
  if (!j.contains(key)) return -1;
  if (j[key].is_number_integer()) return j[key].get<int64_t>();
  if (j[key].is_array() && !j[key].empty() && j[key][0].is_number_integer()) return j[key][0].get<int64_t>();
  return -1;
}

bool is_gemma(const std::string& arch) { return arch == "Gemma2ForCausalLM" || arch == "Gemma3ForCausalLM"; }

// A soft-cap: the config's number, 0 for an explicit null, the family default when absent.
double softcap_of(const json& j, const char* key, const std::string& origin, double def) {
  if (!j.contains(key)) return def;
  if (j[key].is_null()) return 0.0;
  if (!j[key].is_number()) fail(origin, ": \"", key, "\" must be a number or null, got ", j[key].dump());
  return j[key].get<double>();
}

// sqrt(hidden_size) in the checkpoint's dtype, as transformers multiplies Gemma's embeddings.
double gemma_embed_scale(int64_t D, const std::string& torch_dtype) {
  const float s = float(std::sqrt(double(D)));
  if (torch_dtype == "bfloat16") return double(bf16_to_f32(f32_to_bf16(s)));
  if (torch_dtype == "float16") {
    uint16_t h;
    from_f32(&h, DType::F16, &s, 1);
    return double(f16_to_f32(h));
  }
  return double(s);
}

// Gemma 2 / 3 specifics (the family's layout comes from set_gemma_family).
void read_gemma(const json& j, const std::string& origin, LlamaConfig& c) {
  const int version = c.architecture == "Gemma3ForCausalLM" ? 3 : 2;
  set_gemma_family(c, version);
  const std::string act = j.value("hidden_activation", j.value("hidden_act", std::string("gelu_pytorch_tanh")));
  if (act != "gelu_pytorch_tanh" && act != "gelu_tanh")
    fail(origin, ": unsupported hidden_activation \"", act, "\" (tpro implements Gemma's GeGLU with gelu_pytorch_tanh)");
  if (get_bool(j, "use_bidirectional_attention", false))
    fail(origin, ": use_bidirectional_attention is true (an embedding model, not a causal LM; tpro trains causal LMs)");
  c.query_pre_attn_scalar = get_num(j, "query_pre_attn_scalar", origin, 256.0);
  c.attn_softcap = softcap_of(j, "attn_logit_softcapping", origin, version == 2 ? 50.0 : 0.0);
  c.final_softcap = softcap_of(j, "final_logit_softcapping", origin, version == 2 ? 30.0 : 0.0);
  c.sliding_window = get_int(j, "sliding_window", origin, false, 4096);
  if (version == 3) {
    c.rope_local_theta = get_num(j, "rope_local_base_freq", origin, 10000.0);
    const int64_t pattern = get_int(j, "sliding_window_pattern", origin, false, 6);
    if (pattern <= 0) fail(origin, ": sliding_window_pattern must be positive, got ", pattern);
    for (int64_t l = 0; l < c.n_layer; ++l) c.layer_sliding[size_t(l)] = (l + 1) % pattern != 0;
  }
  if (j.contains("layer_types") && j["layer_types"].is_array()) {  // newer configs spell the pattern out
    const json& lt = j["layer_types"];
    if (int64_t(lt.size()) != c.n_layer)
      fail(origin, ": layer_types lists ", lt.size(), " layers but num_hidden_layers is ", c.n_layer);
    for (size_t l = 0; l < lt.size(); ++l) {
      const std::string t = lt[l].is_string() ? lt[l].get<std::string>() : lt[l].dump();
      if (t != "sliding_attention" && t != "full_attention")
        fail(origin, ": layer_types[", l, "] is \"", t, "\" (expected sliding_attention or full_attention)");
      c.layer_sliding[l] = t == "sliding_attention";
    }
  }
  c.embed_scale = gemma_embed_scale(c.n_embd, c.torch_dtype);
}
}  // namespace

LlamaConfig parse_hf_config(const std::string& text, const std::string& origin) {
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {  // parse_error, or out_of_range for "1e400"
    fail(origin, ": not valid JSON: ", e.what());
  }
  if (!j.is_object()) fail(origin, ": not a JSON object");
  LlamaConfig c;
  if (!j.contains("architectures") || !j["architectures"].is_array() || j["architectures"].empty())
    fail(origin, ": missing \"architectures\" (hint: tpro supports ", kSupported, ")");
  c.architecture = j["architectures"][0].get<std::string>();
  if (c.architecture == "Gemma3ForConditionalGeneration") {  // its language model alone, from text_config
    if (!j.contains("text_config") || !j["text_config"].is_object())
      fail(origin, ": Gemma3ForConditionalGeneration without a \"text_config\" object (hint: tpro trains the text ",
           "part of such a checkpoint and needs its text_config)");
    json t = j["text_config"];
    t["architectures"] = {"Gemma3ForCausalLM"};
    if (!t.contains("torch_dtype") && j.contains("torch_dtype")) t["torch_dtype"] = j["torch_dtype"];
    if (!t.contains("model_type")) t["model_type"] = "gemma3_text";
    if (j.contains("tie_word_embeddings") && !t.contains("tie_word_embeddings"))
      t["tie_word_embeddings"] = j["tie_word_embeddings"];
    for (const char* k : {"bos_token_id", "eos_token_id"})
      if (j.contains(k) && !t.contains(k)) t[k] = j[k];
    LlamaConfig text = parse_hf_config(t.dump(), origin + " (text_config)");
    text.multimodal_checkpoint = true;
    text.hf_prefix = "model.language_model.";  // the loader checks the tensors' spelling
    return text;
  }
  if (c.architecture != "LlamaForCausalLM" && c.architecture != "MistralForCausalLM" &&
      c.architecture != "Qwen2ForCausalLM" && c.architecture != "Qwen3ForCausalLM" && !is_gemma(c.architecture) &&
      c.architecture != "Phi3ForCausalLM")
    fail(origin, ": unsupported architecture ", c.architecture, " (hint: tpro supports ", kSupported,
         "; mixture-of-experts, vision and state-space models are not supported)");
  c.model_type = j.value("model_type", std::string("llama"));
  if (!is_gemma(c.architecture)) {
    const std::string act = j.value("hidden_act", std::string("silu"));
    if (act != "silu") fail(origin, ": unsupported hidden_act \"", act, "\" (tpro implements SwiGLU with silu)");
  }

  c.vocab_size = get_int(j, "vocab_size", origin, true);
  c.n_embd = get_int(j, "hidden_size", origin, true);
  c.n_ff = get_int(j, "intermediate_size", origin, true);
  c.n_layer = get_int(j, "num_hidden_layers", origin, true);
  c.n_head = get_int(j, "num_attention_heads", origin, true);
  c.n_head_kv = get_int(j, "num_key_value_heads", origin, false, c.n_head);
  // Qwen3Config's head_dim defaults to 128 whatever hidden_size / heads is, Gemma's to 256.
  c.head_dim = get_int(j, "head_dim", origin, false,
                       c.architecture == "Qwen3ForCausalLM" ? 128 : is_gemma(c.architecture) ? 256 : 0);
  if (c.head_dim == 0) {
    if (c.n_embd % c.n_head) fail(origin, ": hidden_size ", c.n_embd, " is not divisible by num_attention_heads ", c.n_head);
    c.head_dim = c.n_embd / c.n_head;
  }
  c.rms_norm_eps = get_num(j, "rms_norm_eps", origin, 1e-6);
  c.rope_theta = get_num(j, "rope_theta", origin, 10000.0);
  c.max_position = get_int(j, "max_position_embeddings", origin, false, 2048);
  c.tie_word_embeddings = get_bool(j, "tie_word_embeddings", is_gemma(c.architecture));  // Gemma configs default to tied
  c.bos_token_id = first_id(j, "bos_token_id");
  c.eos_token_id = first_id(j, "eos_token_id");
  if (j.contains("torch_dtype") && j["torch_dtype"].is_string()) c.torch_dtype = j["torch_dtype"];

  if (is_gemma(c.architecture)) {
    read_gemma(j, origin, c);
  } else if (c.architecture == "Qwen3ForCausalLM") {
    c.qk_norm = true;
    c.attn_qkv_bias = c.attn_o_bias = get_bool(j, "attention_bias", false);
    if (get_bool(j, "use_sliding_window", false))
      fail(origin, ": use_sliding_window is true; tpro trains Qwen3 with full attention in every layer only ",
           "(hint: set use_sliding_window to false, as every released Qwen3 checkpoint has it)");
  } else if (c.architecture == "Phi3ForCausalLM") {  // Phi-3, Phi-3.5, Phi-4-mini
    c.fused_proj = true;
    if (get_bool(j, "attention_bias", false))
      fail(origin, ": attention_bias is true; tpro trains Phi-3 models without projection biases");
    c.sliding_window = get_int(j, "sliding_window", origin, false, 0);
    const double prf = get_num(j, "partial_rotary_factor", origin, 1.0);
    if (!(prf > 0.0 && prf <= 1.0)) fail(origin, ": partial_rotary_factor must be in (0, 1], got ", prf);
    c.rotary_dim = int64_t(double(c.head_dim) * prf);  // transformers: int(head_dim * factor)
  } else if (c.architecture == "Qwen2ForCausalLM") {
    c.attn_qkv_bias = true;
    if (get_bool(j, "use_sliding_window", false)) c.sliding_window = get_int(j, "sliding_window", origin, false, 0);
  } else {
    c.attn_qkv_bias = c.attn_o_bias = get_bool(j, "attention_bias", false);
    c.mlp_bias = get_bool(j, "mlp_bias", false);
    if (c.architecture == "MistralForCausalLM") c.sliding_window = get_int(j, "sliding_window", origin, false, 0);
  }
  if (j.contains("rope_scaling") && j["rope_scaling"].is_object()) {
    const json& rs = j["rope_scaling"];
    std::string type = rs.value("rope_type", rs.value("type", std::string()));
    if (type == "su") type = "longrope";  // early Phi-3 configs
    if (type == "default" || type.empty()) {
      type.clear();
    } else if (type != "linear" && type != "llama3" && type != "yarn" && type != "dynamic" && type != "longrope") {
      fail(origin, ": unsupported rope_scaling type \"", type,
           "\" (hint: tpro supports linear, llama3, yarn, dynamic and longrope)");
    }
    RopeScaling& r = c.rope_scaling;
    r.type = type;
    r.factor = get_num(rs, "factor", origin, 1.0);
    r.low_freq_factor = get_num(rs, "low_freq_factor", origin, 1.0);
    r.high_freq_factor = get_num(rs, "high_freq_factor", origin, 4.0);
    r.original_max_position = get_int(rs, "original_max_position_embeddings", origin, false, 8192);
    r.attention_factor = get_num(rs, "attention_factor", origin, 0.0);
    if (type == "yarn") {
      r.beta_fast = get_num(rs, "beta_fast", origin, 32.0);
      r.beta_slow = get_num(rs, "beta_slow", origin, 1.0);
      r.mscale = get_num(rs, "mscale", origin, 0.0);
      r.mscale_all_dim = get_num(rs, "mscale_all_dim", origin, 0.0);
      r.truncate = get_bool(rs, "truncate", true);
      // As transformers: an original_max_position_embeddings makes the factor max_position / it.
      if (rs.contains("original_max_position_embeddings")) {
        r.factor = double(c.max_position) / double(r.original_max_position);
      } else {
        r.original_max_position = c.max_position;
      }
    } else if (type == "longrope") {
      auto factors = [&](const char* key) {
        if (!rs.contains(key) || !rs[key].is_array()) fail(origin, ": rope_scaling.", key, " must be a list of numbers");
        std::vector<double> v;
        for (const json& x : rs[key]) {
          if (!x.is_number()) fail(origin, ": rope_scaling.", key, " holds ", x.dump(), ", expected numbers");
          v.push_back(x.get<double>());
        }
        return v;
      };
      r.short_factor = factors("short_factor");
      r.long_factor = factors("long_factor");
      // Phi-3 keeps the pretrained context as a top-level original_max_position_embeddings.
      r.original_max_position = get_int(j, "original_max_position_embeddings", origin, false, c.max_position);
    }
  }
  validate_config(c, origin);
  return c;
}

LlamaConfig load_hf_config(const fs::path& dir) {
  const fs::path p = dir / "config.json";
  if (!fs::exists(p)) fail(p.string(), ": not found (hint: --model must be a Hugging Face model folder or a .gguf file)");
  return parse_hf_config(read_file(p), p.string());
}

std::string hf_config_json(const LlamaConfig& c) {
  json j;
  j["architectures"] = {c.architecture};
  j["model_type"] = c.model_type;
  j["vocab_size"] = c.vocab_size;
  j["hidden_size"] = c.n_embd;
  j["intermediate_size"] = c.n_ff;
  j["num_hidden_layers"] = c.n_layer;
  j["num_attention_heads"] = c.n_head;
  j["num_key_value_heads"] = c.n_head_kv;
  if (c.head_dim != c.n_embd / c.n_head || c.qk_norm || c.is_gemma()) j["head_dim"] = c.head_dim;
  j["hidden_act"] = c.mlp_act == MlpAct::gelu_tanh ? "gelu_pytorch_tanh" : "silu";
  if (c.is_gemma()) {
    j["hidden_activation"] = "gelu_pytorch_tanh";
    j["query_pre_attn_scalar"] = c.query_pre_attn_scalar > 0 ? c.query_pre_attn_scalar : double(c.head_dim);
    j["attn_logit_softcapping"] = c.attn_softcap > 0 ? json(c.attn_softcap) : json(nullptr);
    j["final_logit_softcapping"] = c.final_softcap > 0 ? json(c.final_softcap) : json(nullptr);
    j["sliding_window"] = c.sliding_window;
    json types = json::array();
    for (int64_t l = 0; l < c.n_layer; ++l) types.push_back(c.window_of(l) > 0 ? "sliding_attention" : "full_attention");
    j["layer_types"] = types;
    if (c.rope_local_theta > 0) j["rope_local_base_freq"] = c.rope_local_theta;
  }
  j["rms_norm_eps"] = c.rms_norm_eps;
  j["rope_theta"] = c.rope_theta;
  j["max_position_embeddings"] = c.max_position;
  j["tie_word_embeddings"] = c.tie_word_embeddings;
  if (c.architecture != "Qwen2ForCausalLM") j["attention_bias"] = c.attn_qkv_bias;
  if (c.bos_token_id >= 0) j["bos_token_id"] = c.bos_token_id;
  if (c.eos_token_id >= 0) j["eos_token_id"] = c.eos_token_id;
  j["torch_dtype"] = c.torch_dtype;
  if (c.rotary_dim > 0 && c.rotary_dim != c.head_dim) j["partial_rotary_factor"] = double(c.rotary_dim) / double(c.head_dim);
  if (c.fused_proj) j["sliding_window"] = c.sliding_window > 0 ? json(c.sliding_window) : json(nullptr);
  const RopeScaling& r = c.rope_scaling;
  if (r.type == "longrope") {
    j["rope_scaling"] = {{"type", "longrope"}, {"short_factor", r.short_factor}, {"long_factor", r.long_factor}};
    if (r.attention_factor > 0) j["rope_scaling"]["attention_factor"] = r.attention_factor;
    j["original_max_position_embeddings"] = r.original_max_position;
  } else if (r.type == "yarn") {
    j["rope_scaling"] = {{"rope_type", "yarn"}, {"factor", r.factor}, {"beta_fast", r.beta_fast},
                         {"beta_slow", r.beta_slow}, {"truncate", r.truncate}};
    if (r.original_max_position != c.max_position)  // read back as factor = max_position / it
      j["rope_scaling"]["original_max_position_embeddings"] = r.original_max_position;
    if (r.mscale > 0) j["rope_scaling"]["mscale"] = r.mscale;
    if (r.mscale_all_dim > 0) j["rope_scaling"]["mscale_all_dim"] = r.mscale_all_dim;
    if (r.attention_factor > 0) j["rope_scaling"]["attention_factor"] = r.attention_factor;
  } else if (!c.rope_scaling.type.empty()) {
    j["rope_scaling"] = {{"rope_type", c.rope_scaling.type}, {"factor", c.rope_scaling.factor}};
    if (c.rope_scaling.type == "llama3") {
      j["rope_scaling"]["low_freq_factor"] = c.rope_scaling.low_freq_factor;
      j["rope_scaling"]["high_freq_factor"] = c.rope_scaling.high_freq_factor;
      j["rope_scaling"]["original_max_position_embeddings"] = c.rope_scaling.original_max_position;
    }
  }
  return j.dump(2) + "\n";
}

}  // namespace tpro
