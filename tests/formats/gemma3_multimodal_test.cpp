// The text part of a Gemma3ForConditionalGeneration checkpoint (Gemma 3 4B/12B/27B are published
// that way): config from text_config, the language model's tensors under model.language_model.
// (or language_model.model. in older files), the vision tower left unloaded; its PEFT adapters
// carry the same prefix so PEFT applies them to the multimodal model.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "core/file.h"
#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/safetensors.h"
#include "model/model_test_util.h"

using namespace tpro;
using tpro::test::logits_of;
using tpro::test::sample_tokens;
using tpro::test::temp_dir;

namespace {
const fs::path kGolden = fs::path(TPRO_FIXTURES) / "golden" / "gemma3_local_rope";

// The golden Gemma 3 text model repackaged as a multimodal checkpoint with `prefix`.
fs::path as_multimodal(const std::string& dir_name, const std::string& prefix) {
  const fs::path d = temp_dir(dir_name);
  SafeTensorsWriter w;
  SafeTensorsFile f(kGolden / "model.safetensors");
  for (const auto& n : f.names()) {
    const TensorView t = f.view(n);
    w.add(n.rfind("model.", 0) == 0 ? prefix + n.substr(6) : n, t.dtype, t.shape, t.data);
  }
  const std::vector<float> patch(12, 0.5f);  // a vision-tower tensor: present, never loaded
  w.add_f32("vision_tower.vision_model.embeddings.patch_embedding.weight", {3, 4}, patch.data());
  w.write(d / "model.safetensors");
  nlohmann::json text = nlohmann::json::parse(read_file(kGolden / "config.json"));
  text.erase("architectures");
  const nlohmann::json cfg = {{"architectures", {"Gemma3ForConditionalGeneration"}},
                              {"model_type", "gemma3"},
                              {"torch_dtype", "float32"},
                              {"text_config", text},
                              {"vision_config", {{"hidden_size", 4}}}};
  write_file_atomic(d / "config.json", cfg.dump(2));
  return d;
}
}  // namespace

TEST(Gemma3Multimodal, TheLanguageModelLoadsAndComputesAsTheTextCheckpoint) {
  const Model text = load_model(kGolden);
  for (const std::string prefix : {"model.language_model.", "language_model.model."}) {
    SCOPED_TRACE(prefix);
    const Model mm = load_model(as_multimodal("gemma3_mm", prefix));
    EXPECT_TRUE(mm.cfg.multimodal_checkpoint);
    EXPECT_EQ(mm.cfg.hf_prefix, prefix);
    EXPECT_EQ(mm.cfg.architecture, "Gemma3ForCausalLM");
    EXPECT_EQ(mm.cfg.layer_sliding, text.cfg.layer_sliding);
    const auto toks = sample_tokens(text.cfg.vocab_size);
    EXPECT_EQ(logits_of(mm, nullptr, toks), logits_of(text, nullptr, toks));

    // PEFT's keys on the multimodal model follow its prefix; tpro reads either spelling.
    const LoraWeights lw = load_adapter(kGolden, mm);  // the text model's adapter (model.layers...)
    EXPECT_EQ(lw.cfg.hf_prefix, prefix);
    const fs::path out = temp_dir("gemma3_mm_adapter") / "a";
    save_adapter(out, lw, "mm");
    SafeTensorsFile saved(out / "adapter_model.safetensors");
    for (const auto& n : saved.names()) EXPECT_EQ(n.rfind("base_model.model." + prefix + "layers.", 0), 0u) << n;
    const LoraWeights back = load_adapter(out, mm);
    EXPECT_EQ(back.params, lw.params);
    EXPECT_EQ(logits_of(mm, &back, toks), logits_of(text, &lw, toks));
  }
  nlohmann::json bad = nlohmann::json::parse(read_file(as_multimodal("gemma3_mm_bad", "model.language_model.") /
                                                       "config.json"));
  bad.erase("text_config");
  const fs::path d = temp_dir("gemma3_mm_notext");
  write_file_atomic(d / "config.json", bad.dump());
  EXPECT_THAT(tpro::test::error_of([&] { load_model(d); }),
              ::testing::HasSubstr("Gemma3ForConditionalGeneration without a \"text_config\" object"));
}
