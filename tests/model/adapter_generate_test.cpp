// PEFT adapter round trip and refusals; KV-cache generation against the training forward;
// sampling rules.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

#include "common/backend_util.h"
#include "core/error.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "model/generate.h"
#include "model/step.h"
#include "common/test_util.h"
#include "model/model_test_util.h"

using namespace tpro;
using tpro::test::error_of;

namespace {
const fs::path kCase = fs::path(TPRO_FIXTURES) / "golden" / "llama_gqa_tied";

using tpro::test::logits_of;

fs::path temp_dir(const std::string& n) {
  fs::path d = fs::temp_directory_path() / ("tpro_model_" + n);
  fs::remove_all(d);
  return d;
}
}  // namespace

TEST(Adapter, SaveLoadGivesIdenticalLogits) {
  Model m = load_model(kCase);
  LoraWeights lw = load_adapter(kCase, m);
  std::vector<int32_t> toks = {1, 5, 9, 33, 2, 96, 0, 14};
  auto before = logits_of(m, &lw, toks);
  auto d = temp_dir("roundtrip");
  save_adapter(d, lw, "base");
  LoraWeights back = load_adapter(d, m);
  EXPECT_EQ(back.params, lw.params);
  EXPECT_EQ(logits_of(m, &back, toks), before);
  auto cfg = parse_adapter_config(read_file(d / "adapter_config.json"), "x");
  EXPECT_EQ(cfg.r, 4);
  EXPECT_EQ(cfg.target_modules.size(), 7u);
  // An adapter changes the output (B is non-zero in the fixture).
  EXPECT_NE(logits_of(m, nullptr, toks), before);
}

TEST(Adapter, RefusesMismatches) {
  Model m = load_model(kCase);
  Model other = load_model(fs::path(TPRO_FIXTURES) / "golden" / "qwen2_bias");
  EXPECT_ERROR_HAS(load_adapter(kCase, other),
                   "layers.0.mlp.down_proj.lora_A.weight has shape (4, 72), expected (4, 40)");
  auto d = temp_dir("bad");
  EXPECT_ERROR_HAS(load_adapter(d, m), "adapter_config.json: not found");
  fs::create_directories(d);
  fs::copy_file(kCase / "adapter_model.safetensors", d / "adapter_model.safetensors");
  write_file_atomic(d / "adapter_config.json", R"({"peft_type":"LORA","r":4,"lora_alpha":8,"target_modules":["q_proj"]})");
  EXPECT_ERROR_HAS(load_adapter(d, m), "which adapter_config.json does not list");
  write_file_atomic(d / "adapter_config.json", R"({"peft_type":"LORA","r":4,"target_modules":["c_attn"]})");
  EXPECT_ERROR_HAS(load_adapter(d, m), "target module \"c_attn\" is not a Llama projection");
  write_file_atomic(d / "adapter_config.json", R"({"peft_type":"IA3","r":4,"target_modules":["q_proj"]})");
  EXPECT_ERROR_HAS(load_adapter(d, m), "peft_type is IA3");
  // A layer the model does not have.
  SafeTensorsWriter w;
  std::vector<float> a(4 * 32, 0.0f);
  w.add_f32(peft_tensor_name(7, "self_attn.q_proj", true), {4, 32}, a.data());
  w.write(d / "adapter_model.safetensors");
  write_file_atomic(d / "adapter_config.json", R"({"peft_type":"LORA","r":4,"target_modules":["q_proj"]})");
  EXPECT_ERROR_HAS(load_adapter(d, m), "is for layer 7 but the model has 2 layers");
  // Missing B.
  SafeTensorsWriter w2;
  for (int l = 0; l < 2; ++l) w2.add_f32(peft_tensor_name(l, "self_attn.q_proj", true), {4, 32}, a.data());
  w2.write(d / "adapter_model.safetensors");
  EXPECT_ERROR_HAS(load_adapter(d, m), "missing tensor base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
}

class GenerateWithCache : public ::testing::TestWithParam<const char*> {};

// Generation runs the training step's decoder layer with a KV cache: the same logits at every
// position, across prompt chunks, for each family's layer (Qwen3's q/k norms feed the cache).
TEST_P(GenerateWithCache, CachedLogitsMatchTrainingForward) {
  const fs::path dir = fs::path(TPRO_FIXTURES) / "golden" / GetParam();
  Model m = load_model(dir);
  LoraWeights lw = load_adapter(dir, m);
  std::mt19937 rng(5);
  std::vector<int32_t> toks(150);
  for (auto& t : toks) t = int32_t(rng() % 97);
  auto full = logits_of(m, &lw, toks);
  const int64_t V = m.cfg.vocab_size;
  Generator g(test::cpu(), m, &lw, 200);
  const float* l = g.feed(toks.data(), 130);  // crosses two prompt chunks
  for (int64_t j = 0; j < V; ++j) ASSERT_NEAR(l[j], full[size_t(129 * V + j)], 1e-4) << j;
  for (int64_t t = 130; t < 150; ++t) {
    l = g.feed(&toks[size_t(t)], 1);
    for (int64_t j = 0; j < V; ++j) ASSERT_NEAR(l[j], full[size_t(t * V + j)], 1e-4) << t << "," << j;
  }
  EXPECT_ERROR_HAS(g.feed(toks.data(), 100), "exceeds the generation window of 200");
}

INSTANTIATE_TEST_SUITE_P(Families, GenerateWithCache, ::testing::Values("llama_gqa_tied", "qwen3_qk_norm", "gemma2_softcap",
                                                                    "gemma3_local_rope"));

TEST(Generate, SamplingRules) {
  std::vector<float> logits = {1.0f, 3.0f, 2.0f, -1.0f};
  Rng rng(1);
  SamplingParams sp;
  EXPECT_EQ(sample_token(logits.data(), 4, sp, {}, rng), 1);  // greedy
  sp.repetition_penalty = 4.0;                                 // 3/4 < 2: token 2 wins
  auto l2 = logits;
  EXPECT_EQ(sample_token(l2.data(), 4, sp, {1}, rng), 2);
  sp.repetition_penalty = 1.0;
  sp.temperature = 1.0;
  sp.top_k = 1;
  for (int i = 0; i < 20; ++i) {
    auto l = logits;
    EXPECT_EQ(sample_token(l.data(), 4, sp, {}, rng), 1);
  }
  sp.top_k = 0;
  sp.top_p = 0.5;  // p(1) = 0.66 alone reaches 0.5
  for (int i = 0; i < 20; ++i) {
    auto l = logits;
    EXPECT_EQ(sample_token(l.data(), 4, sp, {}, rng), 1);
  }
  sp.top_p = 1.0;
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 4000; ++i) {
    auto l = logits;
    counts[sample_token(l.data(), 4, sp, {}, rng)]++;
  }
  // softmax(1,3,2,-1) = 0.090, 0.665, 0.245, 0.012
  EXPECT_NEAR(counts[1] / 4000.0, 0.665, 0.03);
  EXPECT_NEAR(counts[2] / 4000.0, 0.245, 0.03);
}
