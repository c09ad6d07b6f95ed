// config.json: the supported architectures, their implied options, and clear refusals.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "core/error.h"
#include "formats/hf_config.h"
#include "model/lora.h"

using namespace tpro;

namespace {
void parse(const std::string& json) { parse_hf_config(json, "m/config.json"); }
const char* kLlama = R"({"architectures":["LlamaForCausalLM"],"hidden_size":64,"intermediate_size":128,
  "num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,"rms_norm_eps":1e-5,
  "rope_theta":500000.0,"tie_word_embeddings":true,"eos_token_id":[7,8]})";
}  // namespace

TEST(HfConfig, Llama) {
  auto c = parse_hf_config(kLlama, "x");
  EXPECT_EQ(c.head_dim, 16);
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_TRUE(c.tie_word_embeddings);
  EXPECT_FALSE(c.attn_qkv_bias);
  EXPECT_EQ(c.eos_token_id, 7);
  auto back = parse_hf_config(hf_config_json(c), "y");
  EXPECT_EQ(back.n_ff, 128);
  EXPECT_EQ(back.rope_theta, 500000.0);
}

TEST(HfConfig, Qwen2HasQkvBias) {
  std::string j = kLlama;
  j.replace(j.find("LlamaForCausalLM"), 16, "Qwen2ForCausalLM");
  auto c = parse_hf_config(j, "x");
  EXPECT_TRUE(c.attn_qkv_bias);
  EXPECT_FALSE(c.attn_o_bias);
}

// Qwen3: per-head q/k norms, head_dim 128 unless given (Qwen3Config's default, not
// hidden / heads), written back so transformers reads the same head size.
TEST(HfConfig, Qwen3HasQkNormsAndItsOwnHeadDim) {
  std::string j = kLlama;
  j.replace(j.find("LlamaForCausalLM"), 16, "Qwen3ForCausalLM");
  auto c = parse_hf_config(j, "x");
  EXPECT_TRUE(c.qk_norm);
  EXPECT_FALSE(c.attn_qkv_bias);
  EXPECT_EQ(c.head_dim, 128);
  c.head_dim = 16;
  const std::string back = hf_config_json(c);
  EXPECT_NE(back.find("\"head_dim\": 16"), std::string::npos) << back;
  EXPECT_EQ(parse_hf_config(back, "y").head_dim, 16);
  std::string sw = j;
  sw.insert(sw.size() - 1, R"(,"use_sliding_window":true,"sliding_window":4096)");
  EXPECT_ERROR_HAS(parse(sw), "m/config.json: use_sliding_window is true; tpro trains Qwen3 with full attention");
  EXPECT_FALSE(parse_hf_config(kLlama, "x").qk_norm);
}

TEST(HfConfig, MistralLoadsWithItsSlidingWindow) {
  std::string j = kLlama;
  j.replace(j.find("LlamaForCausalLM"), 16, "MistralForCausalLM");
  j.insert(j.size() - 1, R"(,"model_type":"mistral","sliding_window":4096,"head_dim":32)");
  auto c = parse_hf_config(j, "x");
  EXPECT_EQ(c.architecture, "MistralForCausalLM");
  EXPECT_EQ(c.model_type, "mistral");
  EXPECT_EQ(c.sliding_window, 4096);
  EXPECT_EQ(c.head_dim, 32);  // explicit head_dim wins over hidden_size / heads = 16
  EXPECT_EQ(c.n_head_kv, 2);
  EXPECT_FALSE(c.attn_qkv_bias);
  EXPECT_EQ(c.eos_token_id, 7);
  // A null sliding_window (Mistral v0.2+) means full attention.
  j.replace(j.find("4096"), 4, "null");
  EXPECT_EQ(parse_hf_config(j, "x").sliding_window, 0);
  // Llama has no sliding window even when the key is present.
  std::string l = kLlama;
  l.insert(l.size() - 1, R"(,"sliding_window":4096)");
  EXPECT_EQ(parse_hf_config(l, "x").sliding_window, 0);
}

TEST(HfConfig, Llama3RopeScaling) {
  std::string j = kLlama;
  j.insert(j.size() - 1, R"(,"rope_scaling":{"rope_type":"llama3","factor":8.0,"low_freq_factor":1.0,
    "high_freq_factor":4.0,"original_max_position_embeddings":8192})");
  auto c = parse_hf_config(j, "x");
  auto inv = c.rope_inv_freq();
  // Highest frequency (wavelength 2π) is kept; the lowest (wavelength > 8192) is divided by 8.
  EXPECT_FLOAT_EQ(inv[0], 1.0f);
  const float base_last = 1.0f / std::pow(500000.0f, 14.0f / 16.0f);
  EXPECT_NEAR(inv[7], base_last / 8.0f, 1e-12);
}

TEST(HfConfig, Refusals) {
  std::string j = kLlama;
  j.replace(j.find("LlamaForCausalLM"), 16, "GPTNeoXForCausalLM");
  EXPECT_ERROR_HAS(parse(j), "unsupported architecture GPTNeoXForCausalLM");
  EXPECT_ERROR_HAS(parse("{"), "m/config.json: not valid JSON");
  std::string noh = kLlama;
  noh.replace(noh.find("\"hidden_size\":64,"), 17, "");
  EXPECT_ERROR_HAS(parse(noh), "missing \"hidden_size\"");
  std::string badkv = kLlama;
  badkv.replace(badkv.find("\"num_key_value_heads\":2"), 23, "\"num_key_value_heads\":3");
  EXPECT_ERROR_HAS(parse(badkv), "not a multiple of num_key_value_heads 3");
  std::string act = kLlama;
  act.insert(act.size() - 1, R"(,"hidden_act":"gelu")");
  EXPECT_ERROR_HAS(parse(act), "unsupported hidden_act \"gelu\"");
  std::string rs = kLlama;
  rs.insert(rs.size() - 1, R"(,"rope_scaling":{"type":"ntk-by-parts","factor":4})");
  EXPECT_ERROR_HAS(parse(rs), "unsupported rope_scaling type \"ntk-by-parts\"");
}

// Found while fuzzing: a number beyond double is nlohmann's out_of_range, not parse_error.
TEST(HfConfig, NumberBeyondDoubleIsAnError) {
  EXPECT_ERROR_HAS(parse("{\"rope_theta\": 1e400}"),
                   "m/config.json: not valid JSON: [json.exception.out_of_range.406]");
}

namespace {
// gemma-2-2b's config.json shape (smaller numbers), as the Hub has it: no tie_word_embeddings,
// hidden_activation, soft-caps, query_pre_attn_scalar, sliding_window; bf16.
const char* kGemma2 = R"({"architectures":["Gemma2ForCausalLM"],"model_type":"gemma2","hidden_size":2304,
  "intermediate_size":64,"num_hidden_layers":4,"num_attention_heads":8,"num_key_value_heads":4,"head_dim":256,
  "vocab_size":100,"rms_norm_eps":1e-6,"rope_theta":10000.0,"hidden_act":"gelu_pytorch_tanh",
  "hidden_activation":"gelu_pytorch_tanh","query_pre_attn_scalar":256,"attn_logit_softcapping":50.0,
  "final_logit_softcapping":30.0,"sliding_window":4096,"torch_dtype":"bfloat16"})";
}  // namespace

// Gemma 2: GeGLU, sandwich norms held as 1 + w, tied head by default, soft-caps, every other
// layer sliding from layer 0, embeddings scaled by sqrt(hidden) rounded to the checkpoint's dtype.
TEST(HfConfig, Gemma2) {
  const LlamaConfig c = parse_hf_config(kGemma2, "x");
  EXPECT_EQ(c.mlp_act, MlpAct::gelu_tanh);
  EXPECT_TRUE(c.sandwich_norms && c.norm_plus_one && c.tie_word_embeddings);
  EXPECT_FALSE(c.qk_norm);
  EXPECT_EQ(c.attn_softcap, 50.0);
  EXPECT_EQ(c.final_softcap, 30.0);
  EXPECT_FLOAT_EQ(c.attn_scale(), 1.0f / 16.0f);
  EXPECT_EQ(c.window_of(0), 4096);
  EXPECT_EQ(c.window_of(1), 0);
  EXPECT_EQ(c.window_of(2), 4096);
  EXPECT_EQ(c.embed_scale, 48.0);  // sqrt(2304) = 48 exactly
  std::string odd = kGemma2;       // sqrt(3584) = 59.866 is 59.75 in bf16 (transformers multiplies by that)
  odd.replace(odd.find("2304"), 4, "3584");
  EXPECT_EQ(parse_hf_config(odd, "x").embed_scale, 59.75);
  odd.replace(odd.find("bfloat16"), 8, "float32");
  EXPECT_FLOAT_EQ(float(parse_hf_config(odd, "x").embed_scale), std::sqrt(3584.0f));
  // An explicit null soft-cap is none; an absent one is Gemma 2's default.
  std::string nocap = kGemma2;
  nocap.replace(nocap.find("50.0"), 4, "null");
  EXPECT_EQ(parse_hf_config(nocap, "x").attn_softcap, 0.0);
  // Written back, it reads the same.
  const LlamaConfig back = parse_hf_config(hf_config_json(c), "y");
  EXPECT_EQ(back.architecture, "Gemma2ForCausalLM");
  EXPECT_EQ(back.layer_sliding, c.layer_sliding);
  EXPECT_EQ(back.attn_softcap, 50.0);
  EXPECT_EQ(back.query_pre_attn_scalar, 256.0);
  EXPECT_EQ(back.head_dim, 256);
  std::string relu = kGemma2;
  const std::string act = "\"hidden_activation\":\"gelu_pytorch_tanh\"";
  relu.replace(relu.find(act), act.size(), "\"hidden_activation\":\"relu\"");
  EXPECT_ERROR_HAS(parse(relu), "m/config.json: unsupported hidden_activation \"relu\"");
}

// Gemma 3 (text): q/k norms, five sliding layers in six (or layer_types), the local RoPE base,
// no soft-caps by default; the multimodal checkpoint and embedding variants are refused clearly.
TEST(HfConfig, Gemma3) {
  std::string j = kGemma2;
  j.replace(j.find("Gemma2ForCausalLM"), 17, "Gemma3ForCausalLM");
  for (const std::string cap : {"\"attn_logit_softcapping\":50.0,", "\"final_logit_softcapping\":30.0,"})
    j.replace(j.find(cap), cap.size(), "");
  j.replace(j.find("\"num_hidden_layers\":4"), 21, "\"num_hidden_layers\":7");
  j.insert(j.size() - 1, R"(,"rope_local_base_freq":10000.0,"rope_theta":1000000.0,
    "rope_scaling":{"rope_type":"linear","factor":8.0})");
  const LlamaConfig c = parse_hf_config(j, "x");
  EXPECT_TRUE(c.qk_norm && c.sandwich_norms && c.embed_scale_inside);
  EXPECT_EQ(c.attn_softcap, 0.0);
  EXPECT_EQ(c.final_softcap, 0.0);
  for (int64_t l = 0; l < 7; ++l) EXPECT_EQ(c.window_of(l) > 0, l != 5) << l;
  EXPECT_TRUE(c.local_rope(0));
  EXPECT_FALSE(c.local_rope(5));
  // the sliding layers' table: base 10000, unscaled; the global one: 1e6 and divided by 8
  EXPECT_FLOAT_EQ(c.rope_inv_freq_local()[1], 1.0f / std::pow(10000.0f, 2.0f / 256.0f));
  EXPECT_FLOAT_EQ(c.rope_inv_freq()[1], 1.0f / std::pow(1e6f, 2.0f / 256.0f) / 8.0f);
  std::string typed = j;
  typed.insert(typed.size() - 1, R"(,"layer_types":["full_attention","sliding_attention","full_attention",
    "full_attention","full_attention","full_attention","sliding_attention"])");
  const LlamaConfig t = parse_hf_config(typed, "x");
  EXPECT_EQ(t.layer_sliding, (std::vector<uint8_t>{0, 1, 0, 0, 0, 0, 1}));
  EXPECT_EQ(parse_hf_config(hf_config_json(t), "y").layer_sliding, t.layer_sliding);
  std::string wrong = j;
  wrong.insert(wrong.size() - 1, R"(,"layer_types":["full_attention"])");
  EXPECT_ERROR_HAS(parse(wrong), "layer_types lists 1 layers but num_hidden_layers is 7");
  std::string emb = j;
  emb.insert(emb.size() - 1, R"(,"use_bidirectional_attention":true)");
  EXPECT_ERROR_HAS(parse(emb), "use_bidirectional_attention is true");
  std::string moe = kLlama;
  moe.replace(moe.find("LlamaForCausalLM"), 16, "MixtralForCausalLM");
  EXPECT_ERROR_HAS(parse(moe), "unsupported architecture MixtralForCausalLM (hint: tpro supports LlamaForCausalLM");
}

// Phi-3 / Phi-3.5 / Phi-4-mini: fused projections, partial rotary, LongRoPE with the top-level
// original_max_position_embeddings and the attention factor of transformers.
TEST(HfConfig, Phi3LongRopeAndPartialRotary) {
  const std::string j = R"({"architectures":["Phi3ForCausalLM"],"model_type":"phi3","hidden_size":64,
    "intermediate_size":96,"num_hidden_layers":2,"num_attention_heads":4,"num_key_value_heads":2,"vocab_size":100,
    "rms_norm_eps":1e-5,"rope_theta":10000.0,"partial_rotary_factor":0.75,"max_position_embeddings":131072,
    "original_max_position_embeddings":4096,"sliding_window":262143,
    "rope_scaling":{"type":"longrope","short_factor":[1,1,1,1,1,1],"long_factor":[2,2,2,3,4,5]}})";
  const LlamaConfig c = parse_hf_config(j, "x");
  EXPECT_TRUE(c.fused_proj);
  EXPECT_EQ(c.rot_dim(), 12);  // int(16 · 0.75)
  EXPECT_EQ(c.rope_scaling.original_max_position, 4096);
  EXPECT_FLOAT_EQ(c.rope_mscale(), float(std::sqrt(1.0 + std::log(32.0) / std::log(4096.0))));
  EXPECT_EQ(c.rope_inv_freq(4096).size(), 6u);
  EXPECT_FLOAT_EQ(c.rope_inv_freq(4096)[5], 1.0f / std::pow(10000.0f, 10.0f / 12.0f));         // short
  EXPECT_FLOAT_EQ(c.rope_inv_freq(4097)[5], 1.0f / (5.0f * std::pow(10000.0f, 10.0f / 12.0f)));  // long
  const LlamaConfig back = parse_hf_config(hf_config_json(c), "y");
  EXPECT_EQ(back.rot_dim(), 12);
  EXPECT_EQ(back.rope_scaling.long_factor, c.rope_scaling.long_factor);
  EXPECT_EQ(back.rope_scaling.original_max_position, 4096);
  std::string bad = j;
  bad.replace(bad.find("[2,2,2,3,4,5]"), 13, "[2,2]");
  EXPECT_ERROR_HAS(parse(bad), "short_factor and long_factor need 6 values each (rotary dims / 2), got 6 and 2");
  // q/k/v on a fused model is the whole qkv_proj, said; a fused name on Llama is an error.
  std::string note;
  std::array<bool, kNumProj> qv{};
  qv[size_t(Proj::Q)] = qv[size_t(Proj::V)] = true;
  const auto t = model_targets(c, qv, &note);
  EXPECT_TRUE(t[size_t(Proj::QKV)]);
  EXPECT_FALSE(t[size_t(Proj::Q)]);
  EXPECT_NE(note.find("the adapter covers the whole fused layer, as PEFT does (q/k/v -> qkv_proj)"), std::string::npos);
  EXPECT_ERROR_HAS(model_targets(parse_hf_config(kLlama, "x"), parse_targets("qkv_proj")),
                   "LoRA target qkv_proj is a fused projection of Phi-3 models");
}

// YaRN and dynamic NTK (Qwen2.5 / Llama descendants), as transformers computes them.
TEST(HfConfig, YarnAndDynamicNtk) {
  std::string y = kLlama;
  y.insert(y.size() - 1, R"(,"max_position_embeddings":131072,
    "rope_scaling":{"rope_type":"yarn","factor":4.0,"original_max_position_embeddings":32768})");
  const LlamaConfig c = parse_hf_config(y, "x");
  EXPECT_EQ(c.rope_scaling.type, "yarn");
  EXPECT_EQ(c.rope_scaling.factor, 4.0);  // 131072 / 32768
  EXPECT_FLOAT_EQ(c.rope_mscale(), float(0.1 * std::log(4.0) + 1.0));
  const auto inv = c.rope_inv_freq(), plain = parse_hf_config(kLlama, "x").rope_inv_freq();
  EXPECT_FLOAT_EQ(inv[0], plain[0]);             // fast dims extrapolate (kept)
  EXPECT_FLOAT_EQ(inv[7], plain[7] / 4.0f);      // slow dims interpolate (÷ factor)
  EXPECT_EQ(parse_hf_config(hf_config_json(c), "y").rope_inv_freq(), inv);
  std::string d = kLlama;
  d.insert(d.size() - 1, R"(,"max_position_embeddings":8,"rope_scaling":{"rope_type":"dynamic","factor":2.0})");
  const LlamaConfig n = parse_hf_config(d, "x");
  EXPECT_EQ(n.rope_inv_freq(8), n.rope_inv_freq());  // within max_position: unchanged
  EXPECT_LT(n.rope_inv_freq(16)[3], n.rope_inv_freq()[3]);  // beyond: a larger base
  std::string u = kLlama;
  u.insert(u.size() - 1, R"(,"rope_scaling":{"rope_type":"mrope","factor":2.0})");
  EXPECT_ERROR_HAS(parse(u), "unsupported rope_scaling type \"mrope\" (hint: tpro supports linear, llama3, yarn");
}
