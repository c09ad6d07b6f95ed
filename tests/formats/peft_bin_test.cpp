// PEFT folders holding adapter_model.bin (torch.save), as text-generation-webui's Training PRO
// and PEFT before 0.4 write them: loaded through load_adapter and load_lora to exactly the
// tensors python3-torch saved (tests/io/gen_torch_fixtures.py), safetensors preferred when a
// folder holds both, and a hostile .bin refused by name.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "formats/load.h"
#include "formats/peft_adapter.h"
#include "io/peft.h"
#include "io/safetensors.h"
#include "io/torch_zip_util.h"
#include "model/model_test_util.h"

using namespace tpro;
using namespace tpro::test;

namespace {

const fs::path kDir = fs::path(TPRO_FIXTURES) / "torch";

// tiny_config(16, 32): q_proj 16 -> 16, v_proj 16 -> 8 (2 KV heads of 4), as the fixtures were made.
LlamaConfig fixture_config() { return tiny_config(16, 32); }

// The f32 values the fixture's safetensors twin holds for (layer, proj), A or B.
std::vector<float> expected(const SafeTensorsFile& st, int64_t layer, Proj p, bool a) {
  const TensorView t = st.view(peft_tensor_name(layer, proj_module(p), a));
  std::vector<float> v(size_t(t.numel()));
  to_f32(v.data(), t.data, t.dtype, v.size());
  return v;
}

fs::path copy_of(const fs::path& from, const std::string& name) {
  const fs::path d = temp_dir(name);
  fs::copy(from, d, fs::copy_options::recursive);
  return d;
}

}  // namespace

TEST(PeftBin, LoadsTrainingProAdapterModelBin) {
  const LlamaConfig cfg = fixture_config();
  for (const char* name : {"peft_f16", "peft_bf16"}) {
    SCOPED_TRACE(name);
    const fs::path dir = kDir / name;
    EXPECT_EQ(lora_format(dir), LoraFormat::Peft);
    const LoraWeights lw = load_lora(dir, cfg);
    EXPECT_EQ(lw.cfg.r, 4);
    EXPECT_EQ(lw.cfg.alpha, 8.0);
    ASSERT_EQ(lw.slots.size(), 4u);  // q and v of 2 layers
    const SafeTensorsFile st(kDir / (std::string(name) + "_expected.safetensors"));
    for (const LoraSlot& s : lw.slots) {
      const std::vector<float> a(lw.params.begin() + std::ptrdiff_t(s.a), lw.params.begin() + std::ptrdiff_t(s.a + 4 * s.in));
      const std::vector<float> b(lw.params.begin() + std::ptrdiff_t(s.b), lw.params.begin() + std::ptrdiff_t(s.b + s.out * 4));
      EXPECT_EQ(a, expected(st, s.layer, s.proj, true)) << proj_name(s.proj) << s.layer;
      EXPECT_EQ(b, expected(st, s.layer, s.proj, false)) << proj_name(s.proj) << s.layer;
    }
  }
}

TEST(PeftBin, SafetensorsWinWhenBothAreThere) {
  // Continuing a Training PRO adapter writes adapter_model.safetensors beside its .bin: the newer file is read.
  const LlamaConfig cfg = fixture_config();
  const fs::path d = copy_of(kDir / "peft_f16", "peft_bin_both");
  LoraWeights lw = load_adapter(d, cfg);
  for (auto& v : lw.params) v += 1.0f;
  save_adapter(d, lw, "tiny");
  ASSERT_TRUE(fs::exists(d / "adapter_model.bin"));
  EXPECT_EQ(load_adapter(d, cfg).params, lw.params);
}

TEST(PeftBin, RefusesHostileAndMismatchedBin) {
  const LlamaConfig cfg = fixture_config();
  const fs::path d = copy_of(kDir / "peft_f16", "peft_bin_bad");
  fs::copy_file(kDir / "os_system.bin", d / "adapter_model.bin", fs::copy_options::overwrite_existing);
  EXPECT_ERROR_HAS(load_lora(d, cfg), "adapter_model.bin: os_system/data.pkl: pickle opcode at byte 169: global "
                                      "posix.system is not allowed");
  // A valid torch.save file whose tensor is not a LoRA weight: the PEFT loader's own message.
  fs::copy_file(kDir / "mixed.bin", d / "adapter_model.bin", fs::copy_options::overwrite_existing);
  EXPECT_ERROR_HAS(load_lora(d, cfg), (d / "adapter_model.bin").string() + ": tensor a is not a PEFT LoRA weight");
  // The rank in adapter_config.json disagrees with the tensors.
  fs::copy_file(kDir / "peft_f16" / "adapter_model.bin", d / "adapter_model.bin", fs::copy_options::overwrite_existing);
  std::string c = read_file(d / "adapter_config.json");
  c.replace(c.find("\"r\": 4"), 6, "\"r\": 8");
  write_file_atomic(d / "adapter_config.json", c);
  EXPECT_ERROR_HAS(load_lora(d, cfg), "has shape (4, 16), expected (8, 16) (r=8 from adapter_config.json");
}
