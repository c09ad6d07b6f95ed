// PEFT compatibility of what tpro writes: make_lora's initialisation (A Kaiming-uniform a=√5,
// B zero), adapter_config.json holding exactly the classic keys, an overwrite interrupted
// between the two files refused by name, and the refusals of broken pickled and bias adapters.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <nlohmann/json.hpp>
#include <set>

#include "formats/peft_adapter.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "model/model_test_util.h"

using namespace tpro;
using tpro::test::error_of;
using tpro::test::small_config;
using tpro::test::temp_dir;
using ::testing::HasSubstr;

namespace {
LoraWeights lora_on(const LlamaConfig& mc, int64_t r, const std::string& targets, uint64_t seed = 3) {
  LoraConfig lc;
  lc.r = r;
  lc.alpha = 2.0 * double(r);
  lc.targets = parse_targets(targets);
  Rng rng(seed);
  return make_lora(mc, lc, rng);
}
}  // namespace

TEST(LoraInit, AIsKaimingUniformAndBIsZero) {
  const LlamaConfig mc = small_config();  // in = 64 (D, Q) and 128 (F, for down_proj)
  const LoraWeights lw = lora_on(mc, 16, "all");
  ASSERT_EQ(lw.slots.size(), size_t(2 * 7));  // the seven projections of a Llama (no fused ones)
  for (const LoraSlot& s : lw.slots) {
    SCOPED_TRACE(std::string(proj_name(s.proj)) + " layer " + std::to_string(s.layer));
    const float* B = lw.params.data() + s.b;
    for (int64_t i = 0; i < s.out * lw.cfg.r; ++i) ASSERT_EQ(B[i], 0.0f) << i;
    // torch.nn.init.kaiming_uniform_(a=√5) on (r, in): gain √(2/(1+5)), bound gain·√(3/in) = 1/√in.
    const double bound = 1.0 / std::sqrt(double(s.in));
    const float* A = lw.params.data() + s.a;
    const int64_t n = lw.cfg.r * s.in;
    double sum = 0, sq = 0, max_abs = 0;
    for (int64_t i = 0; i < n; ++i) {
      ASSERT_LE(std::abs(double(A[i])), bound) << i;
      sum += A[i], sq += double(A[i]) * A[i], max_abs = std::max(max_abs, std::abs(double(A[i])));
    }
    // U(±b) has mean 0 and variance b²/3. n ≥ 1024 gives the variance a relative sd of ≤ 3%,
    // so 12% is ~4σ; the mean's sd is b/√(3n) ≤ 0.018b.
    EXPECT_NEAR(sum / double(n), 0.0, 0.08 * bound);
    EXPECT_NEAR(sq / double(n), bound * bound / 3.0, 0.12 * bound * bound / 3.0);
    EXPECT_GT(max_abs, 0.95 * bound);  // fills the range: not a narrower init
  }
  // Every slot draws its own values.
  const LoraSlot& q0 = *lw.find(0, Proj::Q);
  const LoraSlot& q1 = *lw.find(1, Proj::Q);
  EXPECT_NE(lw.params[q0.a], lw.params[q1.a]);
  for (const auto* buf : {&lw.grads, &lw.state[0].f32, &lw.state[1].f32})
    for (float x : *buf) ASSERT_EQ(x, 0.0f);
}

TEST(PeftAdapter, ConfigHasExactlyTheClassicKeys) {
  LoraConfig lc;
  lc.r = 8;
  lc.alpha = 16.0;
  lc.dropout = 0.05;
  lc.rslora = true;
  lc.targets = parse_targets("v,q,down");  // written in tpro's order, whatever the spec's
  Rng rng(1);
  const LoraWeights lw = make_lora(small_config(), lc, rng);
  const fs::path d = temp_dir("peft");
  save_adapter(d, lw, "some-org/base-7b");
  const auto j = nlohmann::json::parse(read_file(d / "adapter_config.json"));
  std::set<std::string> keys;
  for (auto it = j.begin(); it != j.end(); ++it) keys.insert(it.key());
  EXPECT_EQ(keys, (std::set<std::string>{"base_model_name_or_path", "bias", "fan_in_fan_out", "inference_mode",
                                         "lora_alpha", "lora_dropout", "peft_type", "r", "target_modules",
                                         "task_type", "use_rslora"}));
  EXPECT_EQ(j["peft_type"], "LORA");
  EXPECT_EQ(j["task_type"], "CAUSAL_LM");
  ASSERT_TRUE(j["r"].is_number_integer());  // PEFT's LoraConfig.r is an int
  EXPECT_EQ(j["r"].get<int64_t>(), 8);
  EXPECT_EQ(j["lora_alpha"].get<double>(), 16.0);
  EXPECT_EQ(j["lora_dropout"].get<double>(), 0.05);
  EXPECT_EQ(j["target_modules"], (nlohmann::json{"q_proj", "v_proj", "down_proj"}));
  EXPECT_EQ(j["use_rslora"], true);
  EXPECT_EQ(j["bias"], "none");
  EXPECT_EQ(j["base_model_name_or_path"], "some-org/base-7b");
  EXPECT_EQ(j["fan_in_fan_out"], false);
  EXPECT_EQ(j["inference_mode"], true);
  // The tensors next to it are PEFT-named, f32, with the shapes PEFT gives A (r, in) and B (out, r).
  SafeTensorsFile f(d / "adapter_model.safetensors");
  EXPECT_EQ(f.names().size(), 2u * 3u * 2u);
  EXPECT_EQ(f.metadata().at("format"), "pt");
  const TensorInfo& down_b = f.info("base_model.model.model.layers.1.mlp.down_proj.lora_B.weight");
  EXPECT_EQ(down_b.shape, (std::vector<int64_t>{64, 8}));
  EXPECT_EQ(down_b.dtype, DType::F32);
}

TEST(PeftAdapter, OverwriteInterruptedBetweenTheFilesIsRefused) {
  const LlamaConfig mc = small_config();
  const fs::path d = temp_dir("old"), newer = temp_dir("new");
  save_adapter(d, lora_on(mc, 4, "q-v"), "base");
  const LoraWeights r8 = lora_on(mc, 8, "q-k-v", 5);
  save_adapter(newer, r8, "base");
  // What a crash after the tensors' rename leaves: the new tensors, the old config.
  fs::copy_file(newer / "adapter_model.safetensors", d / "adapter_model.safetensors",
                fs::copy_options::overwrite_existing);
  EXPECT_ERROR_HAS(load_adapter(d, mc),
                   "adapter_model.safetensors was saved with rank 8 on q_proj,k_proj,v_proj but "
                   "adapter_config.json says rank 4 on q_proj,v_proj (hint: the two files come from "
                   "different saves");
  // A completed overwrite with another rank loads as the new adapter.
  save_adapter(d, r8, "base");
  const LoraWeights back = load_adapter(d, mc);
  EXPECT_EQ(back.cfg.r, 8);
  EXPECT_EQ(back.params, r8.params);
  // Hand-editing lora_alpha (not part of the layout) is still allowed.
  std::string cfg = read_file(d / "adapter_config.json");
  cfg.replace(cfg.find("\"lora_alpha\": 16.0"), 18, "\"lora_alpha\": 4.0");
  write_file_atomic(d / "adapter_config.json", cfg);
  EXPECT_EQ(load_adapter(d, mc).cfg.alpha, 4.0);
}

TEST(PeftAdapter, RefusesBrokenPickleAndBiasAdapters) {
  const LlamaConfig mc = small_config();
  const fs::path d = temp_dir("pickle");
  write_file_atomic(d / "adapter_config.json", R"({"peft_type":"LORA","r":4,"target_modules":["q_proj"]})");
  // adapter_model.bin is read (peft_bin_test.cpp); a broken one is io/torch_pickle's refusal.
  write_file_atomic(d / "adapter_model.bin", "PK\x03\x04");
  EXPECT_ERROR_HAS(load_adapter(d, mc), "adapter_model.bin: not a zip archive (4 bytes, shorter than its end record)");
  fs::remove(d / "adapter_model.bin");
  EXPECT_ERROR_HAS(load_adapter(d, mc), "adapter_model.safetensors: not found (nor adapter_model.bin; hint: a PEFT "
                                        "adapter folder holds adapter_config.json and adapter_model.safetensors or "
                                        "adapter_model.bin)");
  save_adapter(d, lora_on(mc, 4, "q_proj"), "base");
  for (const char* bias : {"all", "lora_only"}) {
    write_file_atomic(d / "adapter_config.json",
                      cat(R"({"peft_type":"LORA","r":4,"target_modules":["q_proj"],"bias":")", bias, "\"}"));
    EXPECT_ERROR_HAS(load_adapter(d, mc),
                     cat("adapter_config.json: bias \"", bias, "\" adapters are not supported (hint: bias must be "
                         "none)"));
  }
  write_file_atomic(d / "adapter_config.json", R"({"peft_type":"LORA","r":4,"target_modules":["q_proj"],"bias":"none"})");
  EXPECT_EQ(load_adapter(d, mc).cfg.r, 4);
}

// Found while fuzzing (fuzz/fuzz_peft_adapter): a number beyond double escaped as nlohmann's out_of_range.
TEST(PeftAdapter, ConfigNumberBeyondDoubleIsAnError) {
  const std::string e = error_of([] { parse_adapter_config(R"({"r": 8, "lora_alpha": 1e400})", "a/adapter_config.json"); });
  EXPECT_THAT(e, HasSubstr("a/adapter_config.json: not valid JSON: [json.exception.out_of_range.406] number overflow"));
}

// Found by fuzz/fuzz_peft_adapter: keys of another type escaped as nlohmann's type_error.
TEST(PeftAdapter, ConfigKeysOfAnotherTypeAreErrors) {
  const auto error = [](const std::string& text) {
    return error_of([&] { parse_adapter_config(text, "a/adapter_config.json"); });
  };
  EXPECT_THAT(error(R"({"peft_type": true, "r": 8, "target_modules": ["q_proj"]})"),
              HasSubstr("a/adapter_config.json: peft_type is true, tpro reads LORA adapters"));
  EXPECT_THAT(error(R"({"r": 8, "fan_in_fan_out": true, "target_modules": ["q_proj"]})"),
              HasSubstr("fan_in_fan_out adapters (GPT-2 Conv1D) are not supported"));
  const AdapterConfig c = parse_adapter_config(R"({"r": 8, "fan_in_fan_out": "no", "target_modules": ["q_proj"]})", "a");
  EXPECT_EQ(c.target_modules, std::vector<std::string>{"q_proj"});
}
