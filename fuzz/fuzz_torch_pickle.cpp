// Fuzzes torch.save archives (adapter_model.bin): the stored-entries zip reader, the restricted
// unpickler and the storage checks of TorchFile, every tensor read through; an archive that
// opens is then loaded as a PEFT folder's adapter_model.bin against the tiny model's config (r
// 2 on q_proj and v_proj) and run forward. Expected outcome for bad input: tpro::Error.
#include <cstddef>
#include <cstdint>

#include "fuzz_model_util.h"
#include "formats/peft_adapter.h"
#include "io/torch_pickle.h"

using namespace tpro;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const Model& base = fuzz::tiny_model();
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    const TorchFile f = TorchFile::from_bytes(bytes, "adapter_model.bin");
    double sum = 0;
    for (const auto& name : f.names()) {
      const TensorView t = f.view(name);
      if (t.numel() == 0) continue;  // an empty tensor has no bytes (to_f32 would memcpy from null)
      std::vector<float> v(size_t(t.numel()));
      to_f32(v.data(), t.data, t.dtype, v.size());
      for (float x : v) sum += double(x);
    }
    (void)sum;
  } catch (const Error& e) {
    fuzz::expected(e);
    return 0;
  }
  const fs::path dir = fuzz::fresh_dir("adapter_bin");
  fuzz::put_file(dir / "adapter_config.json",
                 R"({"peft_type": "LORA", "r": 2, "lora_alpha": 4, "target_modules": ["q_proj", "v_proj"]})");
  fuzz::put_file(dir / "adapter_model.bin", bytes);
  try {
    fuzz::forward_with(base, load_adapter(dir, base));
  } catch (const Error& e) {
    fuzz::expected(e);
  }
  return 0;
}
