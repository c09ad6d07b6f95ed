// DoRA adapters as PEFT writes and reads them: use_dora in adapter_config.json (only when true,
// so plain adapters keep the classic keys), one lora_magnitude_vector (out) per module under
// PEFT's saved name (also its ".default" / ".weight" in-memory spellings on load), and the
// refusals: a magnitude without use_dora, a missing or misshapen one, a GGUF export (llama.cpp
// cannot carry DoRA), and adapters made for a base that PiSSA/OLoRA/LoftQ rewrote.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "formats/gguf_adapter.h"
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
LoraWeights dora_lora(const LlamaConfig& mc) {
  LoraConfig lc;
  lc.r = 4;
  lc.alpha = 8;
  lc.dora = true;
  lc.targets = parse_targets("q_proj,down_proj");
  Rng rng(5);
  LoraWeights lw = make_lora(mc, lc, rng);
  for (size_t i = 0; i < lw.params.size(); ++i) lw.params[i] = 0.01f * float(i % 97) - 0.3f;
  return lw;
}

// Rewrites adapter_model.safetensors of dir, letting edit change the tensor map.
void rewrite_tensors(const fs::path& dir, const std::function<void(std::map<std::string, std::vector<float>>&,
                                                                      std::map<std::string, std::vector<int64_t>>&)>& edit) {
  std::map<std::string, std::vector<float>> values;
  std::map<std::string, std::vector<int64_t>> shapes;
  {
    SafeTensorsFile f(dir / "adapter_model.safetensors");
    for (const auto& n : f.names()) {
      const TensorView t = f.view(n);
      values[n].assign(t.f32(), t.f32() + t.numel());
      shapes[n] = t.shape;
    }
  }
  edit(values, shapes);
  SafeTensorsWriter w;
  for (const auto& [n, v] : values) w.add_f32(n, shapes[n], v.data());
  w.write(dir / "adapter_model.safetensors");
}
}  // namespace

TEST(PeftDora, SavesMagnitudesUnderPeftNamesAndLoadsThemBack) {
  const LlamaConfig mc = small_config();
  const LoraWeights lw = dora_lora(mc);
  EXPECT_EQ(lw.n_params(), lora_param_count(mc, lw.cfg));
  const fs::path dir = temp_dir("dora");
  save_adapter(dir, lw, "base");
  const auto cfg = nlohmann::json::parse(read_file(dir / "adapter_config.json"));
  EXPECT_EQ(cfg.at("use_dora"), true);
  SafeTensorsFile f(dir / "adapter_model.safetensors");
  const TensorView m = f.view("base_model.model.model.layers.1.mlp.down_proj.lora_magnitude_vector");
  EXPECT_EQ(m.shape, std::vector<int64_t>{mc.n_embd});
  const LoraSlot& s = *lw.find(1, Proj::Down);
  EXPECT_EQ(m.f32()[3], lw.params[s.m + 3]);
  EXPECT_EQ(f.names().size(), 3u * lw.slots.size());

  const LoraWeights back = load_adapter(dir, mc);
  EXPECT_TRUE(back.cfg.dora);
  EXPECT_EQ(back.params, lw.params);

  // A plain adapter keeps the classic keys: no use_dora at all.
  LoraWeights plain = lw;
  plain.cfg.dora = false;
  Rng rng(1);
  plain = make_lora(mc, plain.cfg, rng);
  const fs::path pd = temp_dir("plain");
  save_adapter(pd, plain, "base");
  EXPECT_FALSE(nlohmann::json::parse(read_file(pd / "adapter_config.json")).contains("use_dora"));
}

TEST(PeftDora, AcceptsPeftsInMemorySpellings) {
  const LlamaConfig mc = small_config();
  const LoraWeights lw = dora_lora(mc);
  const fs::path dir = temp_dir("spellings");
  save_adapter(dir, lw, "base");
  rewrite_tensors(dir, [](auto& values, auto& shapes) {
    const std::string n = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";
    values[n + ".default.weight"] = values[n], shapes[n + ".default.weight"] = shapes[n];
    values.erase(n), shapes.erase(n);
  });
  EXPECT_EQ(load_adapter(dir, mc).params, lw.params);
}

TEST(PeftDora, RefusalsNameTheProblem) {
  const LlamaConfig mc = small_config();
  const LoraWeights lw = dora_lora(mc);
  const std::string mag = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";
  {
    const fs::path dir = temp_dir("missing");
    save_adapter(dir, lw, "base");
    rewrite_tensors(dir, [&](auto& values, auto& shapes) { values.erase(mag), shapes.erase(mag); });
    EXPECT_THAT(error_of([&] { load_adapter(dir, mc); }),
                HasSubstr("adapter_model.safetensors: missing tensor " + mag + " (adapter_config.json says use_dora"));
  }
  {
    const fs::path dir = temp_dir("shape");
    save_adapter(dir, lw, "base");
    rewrite_tensors(dir, [&](auto& values, auto& shapes) {
      values[mag].resize(5);
      shapes[mag] = {5};
    });
    EXPECT_THAT(error_of([&] { load_adapter(dir, mc); }),
                HasSubstr("tensor " + mag + " has shape (5,), expected (64,)"));
  }
  {
    const fs::path dir = temp_dir("no_use_dora");
    save_adapter(dir, lw, "base");
    auto cfg = nlohmann::json::parse(read_file(dir / "adapter_config.json"));
    cfg.erase("use_dora");
    write_file_atomic(dir / "adapter_config.json", cfg.dump());
    EXPECT_THAT(error_of([&] { load_adapter(dir, mc); }),
                HasSubstr("is a DoRA magnitude but adapter_config.json does not say use_dora: true"));
  }
  {
    const fs::path dir = temp_dir("pissa");
    save_adapter(dir, lw, "base");
    auto cfg = nlohmann::json::parse(read_file(dir / "adapter_config.json"));
    cfg["init_lora_weights"] = "pissa_niter_4";
    write_file_atomic(dir / "adapter_config.json", cfg.dump());
    EXPECT_THAT(error_of([&] { load_adapter(dir, mc); }),
                HasSubstr("init_lora_weights is \"pissa_niter_4\": the adapter fits the base model pissa rewrote"));
    cfg["init_lora_weights"] = "gaussian";  // changes only the start of A: the base is untouched
    write_file_atomic(dir / "adapter_config.json", cfg.dump());
    EXPECT_TRUE(load_adapter(dir, mc).cfg.dora);
  }
  const fs::path gguf = temp_dir("gguf") / "adapter.gguf";
  EXPECT_THAT(error_of([&] { save_adapter_gguf(gguf, lw, mc, "base", GgmlType::F32); }),
              HasSubstr("it is a DoRA adapter, and llama.cpp's LoRA adapters carry only the A and B matrices"));
  EXPECT_FALSE(fs::exists(gguf));
}
