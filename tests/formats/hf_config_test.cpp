// config.json: the supported architectures, their implied options, and clear refusals.
#include <gtest/gtest.h>

#include <cmath>

#include "common/test_util.h"
#include "core/error.h"
#include "formats/hf_config.h"

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
  rs.insert(rs.size() - 1, R"(,"rope_scaling":{"type":"yarn","factor":4})");
  EXPECT_ERROR_HAS(parse(rs), "unsupported rope_scaling type \"yarn\"");
}

// Found while fuzzing: a number beyond double is nlohmann's out_of_range, not parse_error.
TEST(HfConfig, NumberBeyondDoubleIsAnError) {
  EXPECT_ERROR_HAS(parse("{\"rope_theta\": 1e400}"),
                   "m/config.json: not valid JSON: [json.exception.out_of_range.406]");
}
