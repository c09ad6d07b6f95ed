// Load-time sanity of a model's numbers: a config.json or GGUF metadata whose epsilon, RoPE
// base or scaling factor would make the loss NaN, head counts that do not divide, and a layer
// count that disagrees with the weights are load errors naming the key, not a NaN run or a
// silently shorter model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "formats/load.h"
#include "formats/model_writer.h"
#include "model/model.h"
#include "model/model_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;
using nlohmann::json;

namespace {

// A small HF folder whose config.json is then edited by `edit`.
fs::path hf_with(const std::string& name, const std::function<void(json&)>& edit) {
  const fs::path d = temp_dir(name);
  write_random_model(d, small_config(), 1, DType::F32);
  json j = json::parse(read_file(d / "config.json"));
  edit(j);
  write_file_atomic(d / "config.json", j.dump());
  return d;
}

TEST(ConfigSanity, HfValuesThatWouldMakeTheLossNaN) {
  EXPECT_ERROR_HAS(load_model(hf_with("theta", [](json& j) { j["rope_theta"] = 0; })),
                   "rope_theta must be a positive finite number, got 0");
  EXPECT_ERROR_HAS(load_model(hf_with("eps", [](json& j) { j["rms_norm_eps"] = -1; })),
                   "rms_norm_eps must be a positive finite number, got -1");
  EXPECT_ERROR_HAS(
      load_model(hf_with("factor", [](json& j) { j["rope_scaling"] = {{"rope_type", "linear"}, {"factor", 0}}; })),
      "rope_scaling.factor must be a positive finite number, got 0");
  const auto llama3 = [](json& j) {
    j["rope_scaling"] = {{"rope_type", "llama3"}, {"factor", 8}, {"low_freq_factor", 4}, {"high_freq_factor", 4}};
  };
  EXPECT_ERROR_HAS(load_model(hf_with("llama3", llama3)),
                   "rope_scaling.high_freq_factor 4 must exceed low_freq_factor 4");
  EXPECT_ERROR_HAS(load_model(hf_with("heads", [](json& j) { j["num_key_value_heads"] = 3; })),
                   "num_attention_heads 4 is not a multiple of num_key_value_heads 3");
}

TEST(ConfigSanity, HfLayerCountMustMatchTheWeights) {
  const fs::path d = hf_with("layers", [](json& j) { j["num_hidden_layers"] = 1; });
  EXPECT_ERROR_HAS(load_model(d),
                   "the weights hold layer 1 but num_hidden_layers is 1 (hint: the config and the weights disagree; "
                   "set num_hidden_layers to 2");
  // More layers than the weights hold was already an error (a missing tensor).
  const fs::path more = hf_with("more_layers", [](json& j) { j["num_hidden_layers"] = 3; });
  EXPECT_ERROR_HAS(load_model(more), "model.layers.2.");
}

TEST(ConfigSanity, GgufNaNEpsilonAndLayerCount) {
  const fs::path d = temp_dir("gguf");
  write_random_model(d / "hf", small_config(), 1, DType::F32);
  save_model_gguf(d / "base.gguf", load_model(d / "hf"), {});
  ASSERT_NO_THROW(load_model(d / "base.gguf"));

  rewrite_gguf(d / "base.gguf", d / "nan_eps.gguf",
               {[](GgufWriter& w) { w.set("llama.attention.layer_norm_rms_epsilon", std::numeric_limits<float>::quiet_NaN()); },
                nullptr});
  const std::string e = error_of([&] { load_model(d / "nan_eps.gguf"); });
  EXPECT_THAT(e, HasSubstr("llama.attention.layer_norm_rms_epsilon"));
  EXPECT_THAT(e, HasSubstr("rms_norm_eps must be a positive finite number, got nan"));

  rewrite_gguf(d / "base.gguf", d / "theta.gguf", {[](GgufWriter& w) { w.set("llama.rope.freq_base", 0.0f); }, nullptr});
  EXPECT_ERROR_HAS(load_model(d / "theta.gguf"), "rope_theta must be a positive finite number, got 0");

  rewrite_gguf(d / "base.gguf", d / "blocks.gguf", {[](GgufWriter& w) { w.set("llama.block_count", uint32_t(1)); }, nullptr});
  EXPECT_ERROR_HAS(load_model(d / "blocks.gguf"), "the weights hold layer 1 but llama.block_count is 1");
}

}  // namespace
