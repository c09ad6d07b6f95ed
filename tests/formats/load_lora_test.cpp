// load_lora: one entry point for --lora that takes a PEFT folder or a GGUF LoRA file by what
// the path is, loads the same weights from both forms of one adapter, and refuses anything
// else with a message naming both accepted forms.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/gguf_adapter.h"
#include "formats/load.h"
#include "formats/model_writer.h"
#include "formats/peft_adapter.h"
#include "model/model_test_util.h"

using namespace tpro;
using namespace tpro::test;
using ::testing::HasSubstr;

namespace {

const char* kForms =
    "a PEFT adapter folder (adapter_config.json + adapter_model.safetensors or adapter_model.bin) or a GGUF LoRA file";

// q and v adapted with non-zero A and B, saved as a PEFT folder and as a GGUF file.
struct TwoForms {
  fs::path dir = temp_dir("load_lora");
  LlamaConfig cfg = small_config();
  LoraWeights lw;
  TwoForms() {
    LoraConfig lc;
    lc.r = 4;
    lc.alpha = 8;
    lc.targets = parse_targets("q,v");
    Rng rng(3);
    lw = make_lora(cfg, lc, rng);
    for (auto& p : lw.params) p = float(rng.uniform(-0.2, 0.2));
    save_adapter(dir / "peft", lw, "base");
    save_adapter_gguf(dir / "lora.gguf", lw, cfg, "base");
  }
};

}  // namespace

TEST(LoadLora, TakesAPeftFolderOrAGgufFileByWhatThePathIs) {
  const TwoForms f;
  EXPECT_EQ(lora_format(f.dir / "peft"), LoraFormat::Peft);
  EXPECT_EQ(lora_format(f.dir / "lora.gguf"), LoraFormat::Gguf);
  // A GGUF file under any name is still one (the magic decides, not the extension).
  fs::copy_file(f.dir / "lora.gguf", f.dir / "adapter.bin");
  EXPECT_EQ(lora_format(f.dir / "adapter.bin"), LoraFormat::Gguf);
  const LoraWeights peft = load_lora(f.dir / "peft", f.cfg), gguf = load_lora(f.dir / "adapter.bin", f.cfg);
  EXPECT_EQ(peft.params, f.lw.params);
  EXPECT_EQ(gguf.params, f.lw.params);  // F32 both ways, the Q rows unpermuted back
  EXPECT_EQ(gguf.cfg.targets, f.lw.cfg.targets);
  EXPECT_EQ(gguf.cfg.scale(), peft.cfg.scale());
}

TEST(LoadLora, AnythingElseNamesBothForms) {
  const TwoForms f;
  const std::string hint = std::string("(hint: a LoRA adapter is ") + kForms;
  const std::string missing = error_of([&] { load_lora(f.dir / "nope", f.cfg); });
  EXPECT_THAT(missing, HasSubstr((f.dir / "nope").string() + ": not found " + hint + ")"));
  fs::create_directories(f.dir / "empty");
  EXPECT_ERROR_HAS(load_lora(f.dir / "empty", f.cfg),
                   (f.dir / "empty" / "adapter_config.json").string() + ": not found, so " +
                       (f.dir / "empty").string() + " is not a PEFT adapter folder " + hint + ")");
  write_file_atomic(f.dir / "notes.txt", "not an adapter");
  EXPECT_ERROR_HAS(load_lora(f.dir / "notes.txt", f.cfg),
                   (f.dir / "notes.txt").string() + ": not a GGUF file (it does not start with the GGUF magic) "
                   "and not a folder " + hint + ")");
  // One of a PEFT folder's files: the hint says to pass the folder.
  EXPECT_ERROR_HAS(load_lora(f.dir / "peft" / "adapter_model.safetensors", f.cfg),
                   hint + "; pass the folder that holds this file)");
  // A GGUF that is a model, not an adapter: the GGUF loader's own refusal.
  write_random_model(f.dir / "hf", f.cfg, 1, DType::F32);
  save_model_gguf(f.dir / "model.gguf", load_model(f.dir / "hf"), {});
  EXPECT_ERROR_HAS(load_lora(f.dir / "model.gguf", f.cfg),
                   "general.type is 'model', expected 'adapter' (hint: this is a model; pass it as --model)");
}

// Qwen3 and Gemma adapters in llama.cpp's form (their archs: q/k rows not permuted) load back
// to the same weights and the same logits as their PEFT folders.
class LoadLoraFamilies : public ::testing::TestWithParam<std::pair<const char*, const char*>> {};

TEST_P(LoadLoraFamilies, AdapterRoundTripsThroughGguf) {
  const auto [fixture, arch] = GetParam();
  const fs::path golden = fs::path(TPRO_FIXTURES) / "golden" / fixture;
  const Model m = load_model(golden);
  const LoraWeights peft = load_lora(golden, m);
  const fs::path f = temp_dir(std::string("load_lora_") + arch) / "lora.gguf";
  save_adapter_gguf(f, peft, m.cfg, arch);
  EXPECT_EQ(GgufFile(f).get_string("general.architecture"), arch);
  EXPECT_EQ(gguf_adapter_base_config(GgufFile(f)).architecture, m.cfg.architecture);  // convert without the base
  const LoraWeights back = load_lora(f, m);
  EXPECT_EQ(back.params, peft.params);
  const auto toks = sample_tokens(m.cfg.vocab_size);
  EXPECT_EQ(logits_of(m, &back, toks), logits_of(m, &peft, toks));
  EXPECT_NE(logits_of(m, &back, toks), logits_of(m, nullptr, toks));
}
INSTANTIATE_TEST_SUITE_P(Archs, LoadLoraFamilies,
                         ::testing::Values(std::pair{"qwen3_qk_norm", "qwen3"}, std::pair{"gemma2_softcap", "gemma2"},
                                           std::pair{"gemma3_local_rope", "gemma3"}),
                         [](const auto& info) { return std::string(info.param.second); });
